"""The lock on valkey-py's clients (redis-py's fork, with exception classes of its own):
the async and the sync lock, on one server and on the cluster.

What broke before: valkey-py raises its own NoScriptError, so the first call after
Redis forgot the scripts (the very first call, or after a restart) failed.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tornado.ioloop import IOLoop

from devstack import RedisCluster
from fencing import FencedLock, LockUnavailable
from fencing.sync import FencedLock as SyncFencedLock
from tests.fencing.backends import InThreads

# A dev dependency, not one of the library's: absent from its own venv (test_standalone).
valkey = pytest.importorskip("valkey")
valkey_asyncio = pytest.importorskip("valkey.asyncio")
valkey_cluster = pytest.importorskip("valkey.asyncio.cluster")


@pytest.fixture(params=["async", "sync"])
def valkey_lock(request: pytest.FixtureRequest, redis_url: str, unique_name: str,
                io_loop: IOLoop) -> Any:
    inspect = valkey_asyncio.Valkey.from_url(redis_url, socket_timeout=2)
    if request.param == "async":
        lock: Any = FencedLock(inspect, ttl_ms=2_000, prefix=unique_name, max_poll=0.2)
    else:
        client = valkey.Valkey.from_url(redis_url, socket_timeout=2)
        request.addfinalizer(client.close)
        lock = InThreads(SyncFencedLock(client, ttl_ms=2_000, prefix=unique_name,
                                        max_poll=0.2), inspect)
    yield lock
    io_loop.run_sync(lock.close)
    io_loop.run_sync(inspect.aclose)


async def take_hand_over_and_release(lock: Any, *resources: str) -> None:
    first = await lock.acquire(*resources)
    assert first is not None and await lock.extend(first)
    waiter = asyncio.create_task(lock.acquire(*resources, timeout=10))
    await asyncio.sleep(0.05)
    assert await lock.release(first)
    second = await waiter
    assert second is not None and second.token > first.token
    assert await lock.holder(resources[0]) == second.token
    assert await lock.release(second)
    assert await lock.holder(resources[0]) is None


@pytest.mark.gen_test(timeout=30)
async def test_both_locks_run_on_valkey_py_and_reload_their_scripts(valkey_lock: Any) -> None:
    await take_hand_over_and_release(valkey_lock, "order:1")  # its first calls: NOSCRIPT
    await take_hand_over_and_release(valkey_lock, "order:2", "invoice:2")
    await valkey_lock.redis.script_flush()  # as after a restart
    await take_hand_over_and_release(valkey_lock, "{p}order", "{p}invoice")


@pytest.mark.gen_test(timeout=30)
async def test_a_valkey_py_connection_error_is_lock_unavailable(unique_name: str) -> None:
    client = valkey_asyncio.Valkey(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    lock = FencedLock(client, prefix=unique_name, op_timeout=1)
    with pytest.raises(LockUnavailable):
        await lock.acquire("doc")
    await client.aclose()


@pytest.mark.gen_test(timeout=30)
async def test_the_async_lock_runs_on_valkey_pys_cluster_client(
        redis_cluster: RedisCluster, unique_name: str) -> None:
    client = valkey_cluster.ValkeyCluster.from_url(redis_cluster.url, socket_timeout=2)
    lock = FencedLock(client, ttl_ms=2_000, prefix=unique_name, max_poll=0.2)
    try:
        await take_hand_over_and_release(lock, "{p}order", "{p}invoice")
        with pytest.raises(ValueError):
            await lock.acquire("order:1", "invoice:1")  # two buckets: two slots
    finally:
        await lock.close()
        await client.aclose()
