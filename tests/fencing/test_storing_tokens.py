"""The recipes of docs/library/storing-tokens.md, run as the page shows them: MongoDB upserts
under a token (SecantusDB), SQL inserts and upserts under a token and the Alembic migration
that adds the column (SQLite and PostgreSQL). Each is taken from the page's own code block,
so the page cannot drift from what is tested; each beside the unfenced way failing."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Iterator

import pytest
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
from pymongo import MongoClient
from pymongo.errors import DuplicateKeyError

from fencing import sql
from fencing.mongo import fence
from tests.fencing import docs_recipes, postgres

PAGE = "library/storing-tokens.md"


def recipe(name: str, replace: tuple[str, str] | None = None) -> Any:
    return docs_recipes.recipe(PAGE, name, replace)


# -- MongoDB -----------------------------------------------------------------------------

@pytest.fixture
def docs(mongo_url: str, unique_name: str) -> Iterator[Any]:
    client: MongoClient = MongoClient(mongo_url, serverSelectionTimeoutMS=5_000)
    yield client[unique_name]["docs"]
    client.close()


def test_a_fenced_upsert_inserts_updates_and_refuses_a_stale_token(docs: Any) -> None:
    upsert_fenced = recipe("upsert_fenced")
    assert upsert_fenced(docs, "d", {"$set": {"v": "w5"}}, 5) is True          # inserted
    assert docs.find_one({"_id": "d"}) == {"_id": "d", "v": "w5", "fence": 5}
    # What the recipe catches: the stale upsert meets the unique _id.
    with pytest.raises(DuplicateKeyError):
        docs.update_one(*fence({"_id": "d"}, {"$set": {"v": "w3"}}, 3), upsert=True)
    assert upsert_fenced(docs, "d", {"$set": {"v": "w3"}}, 3) is False
    assert upsert_fenced(docs, "d", {"$set": {"v": "w5-again"}}, 5) is True   # a retry
    assert upsert_fenced(docs, "d", {"$set": {"v": "w7"}}, 7) is True
    assert docs.find_one({"_id": "d"}) == {"_id": "d", "v": "w7", "fence": 7}
    # Unfenced, the stale upsert lands.
    docs.update_one({"_id": "d"}, {"$set": {"v": "w3"}}, upsert=True)
    assert docs.find_one({"_id": "d"})["v"] == "w3"


def test_concurrent_upserts_of_a_missing_document_leave_the_highest_tokens_value(
        docs: Any) -> None:
    upsert_fenced = recipe("upsert_fenced")
    for attempt in range(5):
        doc_id = f"d{attempt}"
        tokens = list(range(1, 9))
        applied: dict[int, bool] = {}
        start = threading.Barrier(len(tokens))

        def upsert(token: int) -> None:
            start.wait()
            applied[token] = upsert_fenced(docs, doc_id, {"$set": {"v": f"w{token}"}}, token)

        threads = [threading.Thread(target=upsert, args=(token,)) for token in tokens]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert applied[8] is True and len(applied) == len(tokens)
        assert docs.find_one({"_id": doc_id}) == {"_id": doc_id, "v": "w8", "fence": 8}


# -- SQL ---------------------------------------------------------------------------------

metadata = sa.MetaData()
invoices = sa.Table(
    "invoices", metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("total_cents", sa.Integer, nullable=False),
    sa.Column("fence", sa.BigInteger, nullable=True),
)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    yield from postgres.fresh_engine(request, tmp_path, metadata)


def held(engine: sa.Engine) -> tuple[int, int]:
    with engine.connect() as connection:
        found = connection.execute(sa.select(invoices.c.total_cents, invoices.c.fence)).one()
    return found.total_cents, found.fence


def test_insert_or_update_under_a_token(engine: sa.Engine) -> None:
    insert_or_update_fenced = recipe("insert_or_update_fenced")
    with engine.begin() as connection:
        assert insert_or_update_fenced(connection, invoices, {"id": "i", "total_cents": 5}, 5)
        assert not insert_or_update_fenced(connection, invoices,
                                           {"id": "i", "total_cents": 3}, 3)
        assert insert_or_update_fenced(connection, invoices, {"id": "i", "total_cents": 7}, 7)
    assert held(engine) == (7, 7)
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        connection.execute(sa.insert(invoices).values(id="i", total_cents=3, fence=3))
    with engine.begin() as connection:   # an unfenced update by the stale holder lands
        connection.execute(sa.update(invoices).values(total_cents=3, fence=3))
    assert held(engine) == (3, 3)


def test_upsert_under_a_token_in_one_statement(engine: sa.Engine) -> None:
    dialect = ("from sqlalchemy.dialects.postgresql import insert",
               f"from sqlalchemy.dialects.{engine.dialect.name} import insert")
    upsert_row_fenced = recipe("upsert_row_fenced", replace=dialect)
    with engine.begin() as connection:
        assert upsert_row_fenced(connection, invoices, {"id": "i", "total_cents": 5}, 5)
        assert not upsert_row_fenced(connection, invoices, {"id": "i", "total_cents": 3}, 3)
    assert held(engine) == (5, 5)
    with engine.begin() as connection:
        assert upsert_row_fenced(connection, invoices, {"id": "i", "total_cents": 7}, 7)
    assert held(engine) == (7, 7)


def test_the_alembic_migration_adds_a_column_the_fence_writes(engine: sa.Engine) -> None:
    upgrade, downgrade = recipe("upgrade"), recipe("downgrade")
    before = sa.Table("invoices", sa.MetaData(),
                      sa.Column("id", sa.String(40), primary_key=True),
                      sa.Column("total_cents", sa.Integer, nullable=False))
    metadata.drop_all(engine)
    before.create(engine)
    with engine.begin() as connection:
        connection.execute(sa.insert(before).values(id="i", total_cents=1))
        with Operations.context(MigrationContext.configure(connection)):
            upgrade()
    with engine.begin() as connection:   # the existing row counts as 0
        assert connection.execute(sa.select(invoices.c.fence)).scalar_one() is None
        assert connection.execute(fence_update(2**31 + 1, 2)).rowcount == 1
        assert connection.execute(fence_update(2**31, 1)).rowcount == 0
    assert held(engine) == (2, 2**31 + 1)
    with engine.begin() as connection:
        with Operations.context(MigrationContext.configure(connection)):
            downgrade()
    assert [c["name"] for c in sa.inspect(engine).get_columns("invoices")] == ["id",
                                                                               "total_cents"]


def fence_update(token: int, total_cents: int) -> sa.Update:
    return sql.fence(invoices, invoices.c.id == "i", {"total_cents": total_cents}, token)
