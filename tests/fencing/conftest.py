"""A `FencedLock` with a key prefix of the test's own, on each backend in turn.

Every test that takes `lock`, `make_lock` or `lock_target` runs twice: on one
redis-server, and on a Redis Cluster of three masters (started once per
session). A test that brings a server of its own (`make_lock(url=...)`, to
kill or freeze it) runs on that single server only.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest
from tornado.ioloop import IOLoop

from devstack import RedisCluster
from fencing import FencedLock
from tests.fencing.backends import CLUSTER, client_for

LockFactory = Callable[..., FencedLock]


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    with RedisCluster() as cluster:
        yield cluster


@pytest.fixture(params=["redis", "cluster"])
def lock_target(request: pytest.FixtureRequest, redis_url: str) -> str:
    """A redis:// URL, or "cluster:<URL of a node>" (see tests.fencing.backends)."""
    if request.param == "cluster":
        return CLUSTER + request.getfixturevalue("redis_cluster").url
    return redis_url


@pytest.fixture
def make_lock(io_loop: IOLoop, lock_target: str, unique_name: str) -> Iterator[LockFactory]:
    """`make_lock(ttl_ms=..., url=...)`: a lock on a fresh client; clients closed at teardown."""
    clients: list[Any] = []
    locks: list[FencedLock] = []

    def make(ttl_ms: int = 5_000, url: str | None = None, **kwargs: Any) -> FencedLock:
        if url is not None and lock_target.startswith(CLUSTER):
            pytest.skip("runs on a redis-server of its own, not on the cluster")
        client = client_for(url or lock_target)
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
