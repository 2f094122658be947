"""A FastAPI route that takes a lease, then writes through SQLAlchemy under its token.

::

    POST /documents                          201 {"id"}: a new, empty document
    POST /documents/{id}/lines  {"line"}     200 {"id", "body", "token"}: one line appended
                                             404 no such document
                                             409 stale_token: a newer lease wrote first
                                             423 busy: another request held the lease too long
    GET  /documents/{id}                     200 {"id", "body", "fence"}

Appending reads the body, adds a line and writes the body back: two requests at
once would lose a line, so each first takes a lease on the document
(`fencing.FencedLock`). The lease alone is not enough. A request held up past
its lease (a long pause, a stalled connection) still writes when it wakes,
after the next holder wrote::

    A: lease, token 7, reads "" ...... held up past its lease ...... writes "a" -> 409
    B:             waits in line ... lease, token 8, reads "", writes "b" -> 200

so the UPDATE carries the lease's token and the row refuses any token lower
than one it accepted, in the same statement (`fencing.sql.fence`): A's write
matches no row, and A answers 409 instead of erasing B's line.

Run it by hand, from the repository root, with a redis-server on port 6379::

    pip install -e './fencing[sql]' fastapi uvicorn aiosqlite
    uvicorn examples.fastapi_sql.app:app --port 8000
    curl -X POST localhost:8000/documents                        # {"id": "<id>"}
    curl -X POST localhost:8000/documents/<id>/lines -H 'content-type: application/json' \\
         -d '{"line": "hello"}'

Settings come from the environment (see `Settings`); DATABASE_URL may name
PostgreSQL instead (`postgresql+psycopg://user@host/db`, with `psycopg`).
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from contextlib import asynccontextmanager
from typing import Annotated, AsyncIterator, Awaitable, Callable

import redis.asyncio as aredis
import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from fencing import FencedLock, LockBusy, LockUnavailable
from fencing.sql import fence

metadata = sa.MetaData()
documents = sa.Table(
    "documents", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("body", sa.Text, nullable=False),
    # The highest token the row accepted (NULL: none yet). BIGINT: a token counter
    # starts at Redis's clock in microseconds, far above 2**31.
    sa.Column("fence", sa.BigInteger, nullable=True),
)


@dataclasses.dataclass(frozen=True)
class Settings:
    redis_url: str = "redis://127.0.0.1:6379/0"
    database_url: str = "sqlite+aiosqlite:///recipe.db"
    lock_prefix: str = "fencing"
    # A request is short, so the lease is not renewed: one that outlives it is exactly
    # the case the token is for.
    lease_ttl_ms: int = 5_000
    # How long a request waits in line for the document before answering 423.
    lock_wait_s: float = 2.0

    @classmethod
    def from_env(cls) -> Settings:
        """REDIS_URL, DATABASE_URL, LOCK_PREFIX, LEASE_TTL_MS, LOCK_WAIT_S."""
        defaults = cls()
        return cls(
            redis_url=os.environ.get("REDIS_URL", defaults.redis_url),
            database_url=os.environ.get("DATABASE_URL", defaults.database_url),
            lock_prefix=os.environ.get("LOCK_PREFIX", defaults.lock_prefix),
            lease_ttl_ms=int(os.environ.get("LEASE_TTL_MS", defaults.lease_ttl_ms)),
            lock_wait_s=float(os.environ.get("LOCK_WAIT_S", defaults.lock_wait_s)),
        )


class NewLine(BaseModel):
    line: str = Field(min_length=1, max_length=1_000)


# -- the write, and how a refused one is told apart from a missing row ------------------

Writer = Callable[[AsyncConnection, str, str, int], Awaitable[bool]]


async def write_body(connection: AsyncConnection, doc_id: str, body: str, token: int) -> bool:
    """UPDATE documents SET body, fence = token WHERE id = doc_id AND fence <= token.

    True if the row took it. Check and write are one statement: a check first
    (`lease.held`, or reading `fence`) then an UPDATE would leave a window for
    exactly the pause the token guards against."""
    result = await connection.execute(
        fence(documents, documents.c.id == doc_id, {"body": body}, token))
    return result.rowcount == 1


def body_writer() -> Writer:
    """The write, as a dependency: the tests hold it up past the lease, and swap in an
    unfenced UPDATE to show what the fence prevents."""
    return write_body


# -- the routes --------------------------------------------------------------------------

def lock_of(request: Request) -> FencedLock:
    lock: FencedLock = request.app.state.lock
    return lock


def engine_of(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


Lock = Annotated[FencedLock, Depends(lock_of)]
Engine = Annotated[AsyncEngine, Depends(engine_of)]
Config = Annotated[Settings, Depends(settings_of)]

router = APIRouter()


@router.post("/documents", status_code=201)
async def create_document(engine: Engine) -> dict[str, str]:
    doc_id = str(uuid.uuid4())
    async with engine.begin() as connection:
        await connection.execute(sa.insert(documents).values(id=doc_id, body=""))
    return {"id": doc_id}


@router.get("/documents/{doc_id}")
async def get_document(doc_id: uuid.UUID, engine: Engine) -> dict[str, object]:
    async with engine.connect() as connection:
        row = (await connection.execute(
            sa.select(documents).where(documents.c.id == str(doc_id)))).one_or_none()
    if row is None:
        raise HTTPException(404, "no such document")
    return {"id": row.id, "body": row.body, "fence": row.fence}


@router.post("/documents/{doc_id}/lines")
async def append_line(doc_id: uuid.UUID, change: NewLine, lock: Lock, engine: Engine,
                      settings: Config, write: Annotated[Writer, Depends(body_writer)]
                      ) -> dict[str, object]:
    key = str(doc_id)
    try:
        async with lock.hold(f"document:{key}", timeout=settings.lock_wait_s) as lease:
            async with engine.connect() as connection:
                body = await connection.scalar(
                    sa.select(documents.c.body).where(documents.c.id == key))
            if body is None:
                raise HTTPException(404, "no such document")
            body += change.line + "\n"
            async with engine.begin() as connection:
                if not await write(connection, key, body, lease.token):
                    # The row exists (read above) and refused the token: a newer lease wrote.
                    current = await connection.scalar(
                        sa.select(documents.c.fence).where(documents.c.id == key))
                    raise HTTPException(409, {"error": "stale_token", "token": lease.token,
                                              "current_token": current})
    except LockBusy:
        raise HTTPException(423, "the document is being changed by another request: retry",
                            headers={"Retry-After": "1"}) from None
    return {"id": key, "body": body, "token": lease.token}


async def lock_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # Redis down or too slow: nobody can take the lease now, so nobody may write.
    return JSONResponse({"detail": "the lock service is unavailable"}, status_code=503,
                        headers={"Retry-After": "1"})


def create_app(settings: Settings | None = None) -> FastAPI:
    """The application; its clients are made at start-up and closed at shutdown."""
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = aredis.Redis.from_url(settings.redis_url, socket_timeout=2,
                                      socket_connect_timeout=2)
        engine = create_async_engine(settings.database_url)
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
        app.state.lock = FencedLock(redis, ttl_ms=settings.lease_ttl_ms,
                                    prefix=settings.lock_prefix)
        app.state.engine = engine
        app.state.settings = settings
        try:
            yield
        finally:
            await app.state.lock.close()
            await redis.aclose()
            await engine.dispose()

    app = FastAPI(title="fencing recipe: FastAPI and SQLAlchemy", lifespan=lifespan)
    app.include_router(router)
    app.add_exception_handler(LockUnavailable, lock_unavailable)
    return app


app = create_app()
