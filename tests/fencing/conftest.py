"""A `FencedLock` with a key prefix of the test's own, on each backend in turn.

Every test that takes `lock`, `make_lock` or `lock_target` runs on one
redis-server and on a Redis Cluster of three masters (started once per
session); every test that takes `lock` or `make_lock` runs with the async lock
and with the sync one (`fencing.sync`, driven through `InThreads`), unless it
is marked `async_only` (task cancellation, a patched async client). A test that
brings a server of its own (`make_lock(url=...)`, to kill or freeze it) runs on
that single server only.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest
from tornado.ioloop import IOLoop

from devstack import RedisCluster
from fencing import FencedLock
from fencing.sync import FencedLock as SyncFencedLock
from tests.fencing import postgres
from tests.fencing.backends import CLUSTER, InThreads, client_for, sync_client_for

LockFactory = Callable[..., FencedLock]
FLAVORS = ("async", "sync")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "async_only: inherently asyncio; not run on the sync lock")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "flavor" in metafunc.fixturenames:
        async_only = metafunc.definition.get_closest_marker("async_only") is not None
        metafunc.parametrize("flavor", FLAVORS[:1] if async_only else FLAVORS)


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    with RedisCluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL of the session's own, for the SQL tests (skipped if not installed)."""
    yield from postgres.running_url()


@pytest.fixture(params=["redis", "cluster"])
def lock_target(request: pytest.FixtureRequest, redis_url: str) -> str:
    """A redis:// URL, or "cluster:<URL of a node>" (see tests.fencing.backends)."""
    if request.param == "cluster":
        return CLUSTER + request.getfixturevalue("redis_cluster").url
    return redis_url


@pytest.fixture
def make_lock(io_loop: IOLoop, lock_target: str, unique_name: str,
              flavor: str) -> Iterator[LockFactory]:
    """`make_lock(ttl_ms=..., url=..., socket_timeout=...)`: a lock (async, or the sync one
    in threads) on a fresh client; clients closed at teardown."""
    clients: list[Any] = []
    sync_clients: list[Any] = []
    locks: list[Any] = []

    def make(ttl_ms: int = 5_000, url: str | None = None, socket_timeout: float = 2.0,
             **kwargs: Any) -> FencedLock:
        if url is not None and lock_target.startswith(CLUSTER):
            pytest.skip("runs on a redis-server of its own, not on the cluster")
        target = url or lock_target
        kwargs.setdefault("prefix", unique_name)
        client = client_for(target, socket_timeout=socket_timeout)
        clients.append(client)
        lock: Any
        if flavor == "async":
            lock = FencedLock(client, ttl_ms=ttl_ms, **kwargs)
        else:
            # A blocking call is bounded by its socket timeout alone.
            sync_client = sync_client_for(target, kwargs.get("op_timeout") or socket_timeout)
            sync_clients.append(sync_client)
            lock = InThreads(SyncFencedLock(sync_client, ttl_ms=ttl_ms, **kwargs), client)
        locks.append(lock)
        return lock

    yield make
    for lock in locks:
        io_loop.run_sync(lock.close)
    for client in clients:
        io_loop.run_sync(client.aclose)
    for sync_client in sync_clients:
        sync_client.close()


@pytest.fixture
def lock(make_lock: LockFactory) -> FencedLock:
    return make_lock()
