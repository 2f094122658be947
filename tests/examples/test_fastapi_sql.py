"""The FastAPI recipe (examples/fastapi_sql) on a real Redis and a real PostgreSQL.

In-process through the ASGI transport, to hold one request's write up past its
lease: the fenced write is refused with 409 and the newer line stays; the same
timeline with an unfenced UPDATE erases the newer line (asserted every run).
Then under uvicorn in a subprocess on a SQLite file, as its docstring runs it.
Budget: about 8 s, PostgreSQL's start included.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from typing import AsyncIterator, Iterator, Sequence

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection

from devstack import RedisServer, ServerProcess
from examples.fastapi_sql.app import (Settings, Writer, body_writer, create_app, documents,
                                      write_body)
from fencing import FencedLock
from tests.fencing import postgres

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    yield from postgres.running_url()


@pytest.fixture
def settings(redis_url: str, postgres_url: str, unique_name: str) -> Settings:
    # A short lease, and a wait in line long enough to outlast it.
    return Settings(redis_url=redis_url, database_url=postgres_url, lock_prefix=unique_name,
                    lease_ttl_ms=500, lock_wait_s=5.0)


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://recipe") as client:
            yield client


async def new_document(client: httpx.AsyncClient) -> str:
    response = await client.post("/documents")
    assert response.status_code == 201
    doc_id: str = response.json()["id"]
    return doc_id


def held_up_once(write: Writer, held: asyncio.Event, go_on: asyncio.Event) -> Writer:
    """`write`, but its first call stops before the UPDATE until `go_on` (a request held
    up past its lease: a pause, a stalled connection)."""
    calls = 0

    async def writer(connection: AsyncConnection, doc_id: str, body: str, token: int) -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            held.set()
            await go_on.wait()
        return await write(connection, doc_id, body, token)
    return writer


async def write_unfenced(connection: AsyncConnection, doc_id: str, body: str,
                         token: int) -> bool:
    """The control: the same write without the token check."""
    result = await connection.execute(
        sa.update(documents).where(documents.c.id == doc_id).values(body=body))
    return result.rowcount == 1


async def late_write(settings: Settings, write: Writer
                     ) -> tuple[httpx.Response, httpx.Response, dict[str, object]]:
    """A appends, and is held up just before its UPDATE; B waits out A's lease and
    appends; then A's UPDATE goes on. Returns A's answer, B's, and the document."""
    held, go_on = asyncio.Event(), asyncio.Event()
    app = create_app(settings)
    writer = held_up_once(write, held, go_on)  # one for both requests: A calls it first
    app.dependency_overrides[body_writer] = lambda: writer
    async with serving(app) as client:
        doc_id = await new_document(client)
        a = asyncio.ensure_future(client.post(f"/documents/{doc_id}/lines",
                                              json={"line": "from A"}))
        await asyncio.wait_for(held.wait(), 10)
        b = await client.post(f"/documents/{doc_id}/lines", json={"line": "from B"})
        go_on.set()
        a_answer = await asyncio.wait_for(a, 10)
        document = (await client.get(f"/documents/{doc_id}")).json()
    return a_answer, b, document


@pytest.mark.gen_test(timeout=30)
async def test_lines_are_appended_each_under_a_lease(settings: Settings) -> None:
    async with serving(create_app(settings)) as client:
        doc_id = await new_document(client)
        first = await client.post(f"/documents/{doc_id}/lines", json={"line": "one"})
        second = await client.post(f"/documents/{doc_id}/lines", json={"line": "two"})
        document = (await client.get(f"/documents/{doc_id}")).json()
    assert first.status_code == second.status_code == 200
    assert second.json()["token"] > first.json()["token"]
    assert document == {"id": doc_id, "body": "one\ntwo\n", "fence": second.json()["token"]}


@pytest.mark.gen_test(timeout=30)
async def test_a_write_held_up_past_its_lease_is_refused_with_409(settings: Settings) -> None:
    a, b, document = await late_write(settings, write_body)

    assert b.status_code == 200
    assert a.status_code == 409
    detail = a.json()["detail"]
    assert detail["error"] == "stale_token"
    assert detail["current_token"] == b.json()["token"] > detail["token"]
    assert document["body"] == "from B\n"


@pytest.mark.gen_test(timeout=30)
async def test_unfenced_the_late_write_erases_the_newer_line(settings: Settings) -> None:
    a, b, document = await late_write(settings, write_unfenced)

    assert a.status_code == b.status_code == 200
    assert a.json()["token"] < b.json()["token"]
    assert document["body"] == "from A\n"  # B's line is lost


@pytest.mark.gen_test(timeout=30)
async def test_a_document_held_elsewhere_answers_423(settings: Settings) -> None:
    quick = Settings(**{**settings.__dict__, "lock_wait_s": 0.2})
    app = create_app(quick)
    async with serving(app) as client:
        doc_id = await new_document(client)
        lock: FencedLock = app.state.lock  # as another request would take it
        async with lock.hold(f"document:{doc_id}"):
            response = await client.post(f"/documents/{doc_id}/lines", json={"line": "x"})
    assert response.status_code == 423
    assert response.headers["retry-after"] == "1"


@pytest.mark.gen_test(timeout=30)
async def test_bad_input_answers_4xx(settings: Settings) -> None:
    async with serving(create_app(settings)) as client:
        doc_id = await new_document(client)
        missing = "00000000-0000-4000-8000-000000000000"
        answers = [
            await client.post("/documents/not-a-uuid/lines", json={"line": "x"}),
            await client.post(f"/documents/{doc_id}/lines", json={"line": ""}),
            await client.post(f"/documents/{doc_id}/lines", content=b"{"),
            await client.post(f"/documents/{missing}/lines", json={"line": "x"}),
            await client.get(f"/documents/{missing}"),
        ]
    assert [answer.status_code for answer in answers] == [422, 422, 422, 404, 404]


@pytest.mark.gen_test(timeout=30)
async def test_redis_down_answers_503(settings: Settings, make_redis_server: object) -> None:
    server: RedisServer = make_redis_server()  # type: ignore[operator]
    gone = Settings(**{**settings.__dict__, "redis_url": server.url})
    async with serving(create_app(gone)) as client:
        doc_id = await new_document(client)
        server.stop()
        response = await client.post(f"/documents/{doc_id}/lines", json={"line": "x"})
    assert response.status_code == 503


class Uvicorn(ServerProcess):
    """The recipe as its docstring runs it: `uvicorn examples.fastapi_sql.app:app`."""

    name = "uvicorn"

    def __init__(self, env: dict[str, str], log_path: str) -> None:
        super().__init__(log_path=log_path)
        self.env = env

    def command(self) -> Sequence[str]:
        return [sys.executable, "-m", "uvicorn", "examples.fastapi_sql.app:app",
                "--app-dir", ROOT, "--host", self.host, "--port", str(self.port)]

    def environment(self) -> dict[str, str]:
        return {**os.environ, **self.env}


def test_it_runs_under_uvicorn_on_a_sqlite_file(redis_url: str, unique_name: str,
                                                tmp_path: object) -> None:
    env = {"REDIS_URL": redis_url, "LOCK_PREFIX": unique_name,
           "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/recipe.db"}
    with Uvicorn(env, log_path=f"{tmp_path}/uvicorn.log") as server:
        url = f"http://{server.host}:{server.port}"
        with httpx.Client(base_url=url, timeout=10) as http:
            doc_id = http.post("/documents").json()["id"]
            for line in ("one", "two"):
                answer = http.post(f"/documents/{doc_id}/lines", json={"line": line})
                assert answer.status_code == 200
            assert http.get(f"/documents/{doc_id}").json()["body"] == "one\ntwo\n"
