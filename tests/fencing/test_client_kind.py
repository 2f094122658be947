"""Each lock refuses, when it is made, a client of the other kind, with a message saying
which lock takes which client; redis-py's and valkey-py's clients, single or cluster.

Without the check a blocking client given to the asyncio lock runs the lock's script in
Redis, then fails with TypeError: the first test shows that too.
Budget: about 4 s."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import redis
import redis.asyncio as aredis
import redis.cluster
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

import fencing.lock
from devstack import RedisCluster
from fencing import FencedLock, LockUnavailable
from fencing.sync import FencedLock as SyncFencedLock


@pytest.fixture
def sync_client(redis_url: str) -> Any:
    client = redis.Redis.from_url(redis_url, socket_timeout=2.0)
    yield client
    client.close()


@pytest.mark.gen_test(timeout=20)
async def test_a_blocking_client_is_refused_by_the_asyncio_lock_before_it_locks_anything(
        sync_client: Any, unique_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(TypeError, match=r"fencing\.FencedLock takes an asyncio client.*"
                                        r"redis\.client\.Redis.*use fencing\.sync\.FencedLock"):
        FencedLock(sync_client, prefix=unique_name)

    # The unsafe variant, the check taken away: Redis runs the lock's script, then the
    # caller gets a TypeError instead of its lease.
    monkeypatch.setattr(fencing.lock, "check_client", lambda redis, wants: None)
    unchecked = FencedLock(sync_client, prefix=unique_name, ttl_ms=60_000)
    before = scripts_run(sync_client)
    with pytest.raises(TypeError):
        await unchecked.acquire("doc")
    assert scripts_run(sync_client) > before


def scripts_run(client: Any) -> int:
    return int(client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))


def test_an_asyncio_client_is_refused_by_the_sync_lock(redis_url: str) -> None:
    with pytest.raises(TypeError, match=r"fencing\.sync\.FencedLock takes a blocking client.*"
                                        r"an asyncio client: use fencing\.FencedLock"):
        SyncFencedLock(aredis.Redis.from_url(redis_url))


def test_cluster_clients_of_each_kind_go_to_their_own_lock(redis_cluster: RedisCluster) -> None:
    asyncio_client = AsyncRedisCluster.from_url(redis_cluster.url)  # connects on first use
    FencedLock(asyncio_client)
    with pytest.raises(TypeError, match="use fencing.FencedLock"):
        SyncFencedLock(asyncio_client)
    blocking = redis.cluster.RedisCluster.from_url(redis_cluster.url)
    try:
        SyncFencedLock(blocking)
        with pytest.raises(TypeError, match="use fencing.sync.FencedLock"):
            FencedLock(blocking)
    finally:
        blocking.close()


def test_valkey_clients_are_taken_by_the_lock_of_their_kind() -> None:
    valkey = pytest.importorskip("valkey")
    import valkey.asyncio
    import valkey.asyncio.cluster

    url = "redis://127.0.0.1:1/0"  # neither connects when made
    FencedLock(valkey.asyncio.Valkey.from_url(url))
    FencedLock(valkey.asyncio.cluster.ValkeyCluster(host="127.0.0.1", port=1))
    SyncFencedLock(valkey.Valkey.from_url(url))
    with pytest.raises(TypeError, match="use fencing.sync.FencedLock"):
        FencedLock(valkey.Valkey.from_url(url))
    with pytest.raises(TypeError, match="use fencing.FencedLock"):
        SyncFencedLock(valkey.asyncio.Valkey.from_url(url))


@pytest.mark.parametrize("not_a_client", ["redis://127.0.0.1:6379/0", None, object()])
def test_something_that_is_not_a_client_is_refused(not_a_client: Any) -> None:
    for lock in (FencedLock, SyncFencedLock):
        with pytest.raises(TypeError, match="not a Redis client"):
            lock(not_a_client)


@pytest.mark.gen_test(timeout=30)
async def test_valkey_clients_run_both_locks(
        redis_url: str, unique_name: str, make_redis_server: Any) -> None:
    """valkey-py raises its own classes (NoScriptError, ConnectionError): the locks know them."""
    valkey = pytest.importorskip("valkey")
    import valkey.asyncio

    blocking = valkey.Valkey.from_url(redis_url, socket_timeout=2.0)
    asyncio_client = valkey.asyncio.Valkey.from_url(redis_url, socket_timeout=2.0)
    try:
        locks = (SyncFencedLock(blocking, prefix=unique_name),
                 FencedLock(asyncio_client, prefix=unique_name))
        for lock in locks:
            blocking.script_flush()  # the first call meets NOSCRIPT
            lease = await maybe_await(lock.acquire("doc"))
            assert lease is not None and await maybe_await(lock.extend(lease))
            assert await maybe_await(lock.holder("doc")) == lease.token
            assert await maybe_await(lock.release(lease))
        server = make_redis_server()
        down = valkey.asyncio.Valkey.from_url(server.url, socket_timeout=1.0)
        server.stop()
        down_lock = FencedLock(down, prefix=unique_name)
        with pytest.raises(LockUnavailable):
            await down_lock.acquire("doc")
        await down_lock.close()  # its clean-up, which fails too
        await down.aclose()
    finally:
        blocking.close()
        await asyncio_client.aclose()


async def maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value
