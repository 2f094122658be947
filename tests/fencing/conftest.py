"""A Redis client and a `FencedLock` with a key prefix of the test's own."""

from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest
import redis.asyncio as aredis
from tornado.ioloop import IOLoop

from fencing import FencedLock

LockFactory = Callable[..., FencedLock]


@pytest.fixture
def make_lock(io_loop: IOLoop, redis_url: str, unique_name: str) -> Iterator[LockFactory]:
    """`make_lock(ttl_ms=..., url=...)`: a lock on a fresh client; clients closed at teardown."""
    clients: list[Any] = []
    locks: list[FencedLock] = []

    def make(ttl_ms: int = 5_000, url: str | None = None, **kwargs: Any) -> FencedLock:
        client = aredis.Redis.from_url(url or redis_url, socket_timeout=2.0,
                                       socket_connect_timeout=1.0)
        clients.append(client)
        lock = FencedLock(client, ttl_ms=ttl_ms, prefix=kwargs.pop("prefix", unique_name),
                          **kwargs)
        locks.append(lock)
        return lock

    yield make
    for lock in locks:
        io_loop.run_sync(lock.close)
    for client in clients:
        io_loop.run_sync(client.aclose)


@pytest.fixture
def lock(make_lock: LockFactory) -> FencedLock:
    return make_lock()
