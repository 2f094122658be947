"""`fencing.sql.fence`: the UPDATE it builds, run on SQLite and on a real PostgreSQL.

The concurrent test runs many writers, each on its own connection, against one
row of a PostgreSQL server, and ends with a paused holder's late write: the
unfenced UPDATE lets it overwrite the newest value (every run), the fenced one
refuses it and every other write that came after a higher token's.
"""

from __future__ import annotations

import random
import threading
from typing import Any, Iterator

import pytest
import sqlalchemy as sa

from fencing.sql import fence
from tests.fencing import postgres

metadata = sa.MetaData()
invoices = sa.Table(
    "invoices", metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("total_cents", sa.Integer, nullable=False),
    sa.Column("deleted", sa.Boolean, nullable=False, default=False),
    sa.Column("writes", sa.Integer, nullable=False, default=0),
    sa.Column("fence", sa.BigInteger, nullable=True),
)

WRITERS = 12
WRITES_EACH = 8


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    yield from postgres.running_url()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[sa.Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'fencing.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    made = sa.create_engine(url)
    metadata.drop_all(made)
    metadata.create_all(made)
    yield made
    made.dispose()


def insert(engine: sa.Engine, fence_value: int | None, row_id: str = "inv-1") -> str:
    with engine.begin() as connection:
        connection.execute(sa.insert(invoices).values(
            id=row_id, total_cents=0, deleted=False, writes=0, fence=fence_value))
    return row_id


def row(engine: sa.Engine, row_id: str = "inv-1") -> Any:
    with engine.connect() as connection:
        return connection.execute(sa.select(invoices).where(invoices.c.id == row_id)).one()


def write(engine: sa.Engine, token: int, total_cents: int, row_id: str = "inv-1",
          where: Any = None) -> int:
    statement = fence(invoices, invoices.c.id == row_id if where is None else where,
                      {"total_cents": total_cents}, token)
    with engine.begin() as connection:
        return connection.execute(statement).rowcount


def test_the_statement_adds_the_token_condition_to_the_callers_own() -> None:
    statement = fence(invoices, invoices.c.id == "inv-1", {"total_cents": 5}, 7)
    sql = str(statement.compile(compile_kwargs={"literal_binds": True}))
    assert "invoices.id = 'inv-1'" in sql
    assert "invoices.fence IS NULL OR invoices.fence <= 7" in sql
    assert "fence=7" in sql.replace(" ", "") and "total_cents=5" in sql.replace(" ", "")


def test_a_null_fence_counts_as_zero(engine: sa.Engine) -> None:
    insert(engine, None)
    assert write(engine, 1, 100) == 1
    assert (row(engine).total_cents, row(engine).fence) == (100, 1)


def test_a_lower_token_is_refused_and_an_equal_one_accepted(engine: sa.Engine) -> None:
    insert(engine, 0)
    assert write(engine, 5, 500) == 1
    assert write(engine, 4, 400) == 0
    assert (row(engine).total_cents, row(engine).fence) == (500, 5)
    assert write(engine, 5, 550) == 1          # the same holder retrying
    assert write(engine, 9, 900) == 1
    assert (row(engine).total_cents, row(engine).fence) == (900, 9)


def test_the_callers_own_condition_is_kept(engine: sa.Engine) -> None:
    insert(engine, 0)
    with engine.begin() as connection:
        connection.execute(sa.update(invoices).values(deleted=True))
    live = sa.and_(invoices.c.id == "inv-1", invoices.c.deleted.is_(False))
    assert write(engine, 3, 300, where=live) == 0
    assert row(engine).fence == 0


def test_only_the_named_row_is_written(engine: sa.Engine) -> None:
    insert(engine, 0, "inv-1")
    insert(engine, 0, "inv-2")
    assert write(engine, 2, 200, "inv-2") == 1
    assert (row(engine, "inv-1").total_cents, row(engine, "inv-1").fence) == (0, 0)


def test_a_paused_holders_late_write_is_refused_and_lands_without_the_fence(
        engine: sa.Engine) -> None:
    insert(engine, 0)
    assert write(engine, 34, 3400) == 1        # B, who took the lock after A's lease ran out
    assert write(engine, 33, 3300) == 0        # A wakes up and writes
    assert row(engine).total_cents == 3400
    with engine.begin() as connection:         # the same late write, unfenced
        connection.execute(sa.update(invoices).where(invoices.c.id == "inv-1")
                           .values(total_cents=3300))
    assert row(engine).total_cents == 3300, "without the token check, A's write wins"


@pytest.mark.parametrize("values, token, column, why", [
    ({"total_cents": 1}, "7", "fence", "an int"),
    ({"total_cents": 1}, True, "fence", "an int"),
    ({"fence": 3}, 7, "fence", "sets it to the token"),
    ({"total_cents": 1}, 7, "epoch", "no column"),
])
def test_bad_arguments_are_refused_before_anything_runs(
        values: dict, token: Any, column: str, why: str) -> None:
    with pytest.raises((TypeError, ValueError), match=why):
        fence(invoices, None, values, token, column=column)


def run_writers(engine: sa.Engine, fenced: bool) -> tuple[list[tuple[int, int]], list[int]]:
    """WRITERS threads, each on its own connection, write one row with distinct tokens
    in random order; then a lower token writes last (a paused holder waking up).
    Returns the accepted writes as (position, token) and the refused tokens."""
    tokens = random.sample(range(1, WRITERS * WRITES_EACH + 1), WRITERS * WRITES_EACH)
    accepted: list[tuple[int, int]] = []
    refused: list[int] = []
    record = threading.Lock()
    start = threading.Barrier(WRITERS)

    def one_write(token: int) -> None:
        values = {"total_cents": token * 100, "writes": invoices.c.writes + 1}
        where = invoices.c.id == "inv-1"
        statement = fence(invoices, where, values, token) if fenced else \
            sa.update(invoices).where(where).values(values)
        with engine.begin() as connection:
            result = connection.execute(statement.returning(invoices.c.writes))
            position = result.scalar_one_or_none()
        with record:
            if position is None:
                refused.append(token)
            else:
                accepted.append((position, token))

    def writer(mine: list[int]) -> None:
        start.wait(timeout=30)
        for token in mine:
            one_write(token)

    threads = [threading.Thread(target=writer, args=(tokens[i::WRITERS],))
               for i in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    one_write(0)  # lower than any token the writers had
    return accepted, refused


def test_concurrent_writers_on_postgresql_leave_the_highest_tokens_value(
        postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url, pool_size=WRITERS, max_overflow=0)
    try:
        for fenced in (False, True):
            metadata.drop_all(engine)
            metadata.create_all(engine)
            insert(engine, 0)
            accepted, refused = run_writers(engine, fenced)
            final = row(engine)
            assert final.writes == len(accepted)     # rowcount 1 exactly for each applied
            if not fenced:
                assert not refused
                assert final.total_cents == 0, "unfenced, the late token 0 wins"
                continue
            in_commit_order = [token for _, token in sorted(accepted)]
            assert in_commit_order == sorted(in_commit_order), \
                "an accepted write had a lower token than one accepted before it"
            highest = max(in_commit_order)
            assert highest == WRITERS * WRITES_EACH
            assert (final.total_cents, final.fence) == (highest * 100, highest)
            assert refused and all(token < highest for token in refused)
            assert len(accepted) + len(refused) == WRITERS * WRITES_EACH + 1
    finally:
        engine.dispose()
