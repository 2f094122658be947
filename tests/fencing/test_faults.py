"""Paused holders, Redis losing its data, Redis down or frozen."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Callable

import pytest
import redis.asyncio as aredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError

from devstack import RedisServer
from fencing import FencedLock, LockUnavailable, scripts
from fencing.core import LockCore, client_retries
from fencing.keys import KeySpace, LeaseKeys
from tests.fencing.conftest import LockFactory


class HighestTokenStore:
    """Accepts a write only if no higher token was accepted (check and write as one step)."""

    def __init__(self) -> None:
        self.highest = 0
        self.value: str | None = None

    def write(self, token: int, value: str) -> bool:
        if token < self.highest:
            return False
        self.highest, self.value = token, value
        return True


@pytest.mark.gen_test(timeout=10)
async def test_a_holder_paused_past_its_lease_cannot_overwrite_the_next_holder(
        make_lock: LockFactory) -> None:
    """Kleppmann's scenario: A's lease expires while it is paused; B writes; A wakes and writes."""
    lock = make_lock(ttl_ms=200)
    store = HighestTokenStore()
    a = await lock.acquire("file")
    assert a is not None
    await asyncio.sleep(0.3)  # A "pauses" (GC, SIGSTOP) past its lease
    b = await lock.acquire("file")
    assert b is not None and b.token > a.token
    assert store.write(b.token, "from B")
    assert not a.held  # A could know, if it looked...
    assert store.write(a.token, "from A") is False  # ...and if it did not, the store refuses
    assert store.value == "from B"


@pytest.mark.gen_test(timeout=20)
async def test_after_redis_lost_its_data_a_floor_keeps_tokens_above_what_stores_saw(
        make_lock: LockFactory, make_redis_server: Callable[[], RedisServer]) -> None:
    server = make_redis_server()
    lock = make_lock(url=server.url)
    store = HighestTokenStore()
    for _ in range(5):
        async with lock.hold("doc") as lease:
            assert store.write(lease.token, f"v{lease.token}")
    server.restart()  # no persistence: the counter is gone
    fresh = await lock.acquire("doc")  # a missing counter starts at Redis's clock in µs
    assert fresh is not None and fresh.token > store.highest
    assert store.write(fresh.token, "after the restart")
    await lock.release(fresh)
    seen = store.highest

    # A counter still rolls back when the server that lost it also has its clock behind
    # (a failover to a replica whose clock lags): it starts low, as here.
    await lock.redis.hset(KeySpace.of(lock.prefix, ("doc",)).seq, "token", 1)
    rolled_back = await lock.acquire("doc")
    assert rolled_back is not None and rolled_back.token <= seen
    assert store.write(rolled_back.token, "stale") is False  # the store refuses the low token
    await lock.release(rolled_back)

    healed = await lock.acquire("doc", floor=store.highest)  # what a 409 stale_token reports
    assert healed is not None and healed.token > seen
    assert store.write(healed.token, "healed")
    await lock.release(healed)
    after = await lock.acquire("doc")
    assert after is not None and after.token > healed.token


@pytest.mark.gen_test(timeout=20)
async def test_redis_down_raises_lock_unavailable_quickly(
        make_lock: LockFactory, make_redis_server: Callable[[], RedisServer]) -> None:
    server = make_redis_server()
    lock = make_lock(url=server.url)
    lease = await lock.acquire("doc")
    assert lease is not None
    server.stop()
    for call in (lock.acquire("doc"), lock.release(lease), lock.extend(lease),
                 lock.holder("doc"), lock.acquire("doc", timeout=5)):
        started = time.monotonic()
        with pytest.raises(LockUnavailable):
            await call
        assert time.monotonic() - started < 3  # the client's connect timeout, not a hang


@pytest.mark.gen_test(timeout=30)
async def test_a_frozen_redis_raises_lock_unavailable_within_the_timeout(
        make_lock: LockFactory, make_redis_server: Callable[[], RedisServer]) -> None:
    server = make_redis_server()
    lock = make_lock(url=server.url, op_timeout=1.0)
    assert await lock.holder("doc") is None  # connected
    server.pause()
    try:
        started = time.monotonic()
        with pytest.raises(LockUnavailable):
            await lock.acquire("doc")
        assert time.monotonic() - started < 2.5
    finally:
        server.resume()
    lease = await lock.acquire("doc")  # and it recovers
    assert lease is not None


async def fill_the_pool(lock: FencedLock, connections: int = 4) -> None:
    """Leave several idle connections in the client's pool, as a busy service has."""
    leases = await asyncio.gather(*(lock.acquire(f"warm:{n}") for n in range(connections)))
    await asyncio.gather(*(lock.release(lease) for lease in leases if lease is not None))


@pytest.mark.gen_test(timeout=30)
async def test_after_redis_restarts_empty_the_next_call_of_every_lock_succeeds(
        make_lock: LockFactory, make_redis_server: Callable[[], RedisServer]) -> None:
    """Every pooled connection is dead after a restart; none of them may cost a call."""
    server = make_redis_server()
    locks = [make_lock(url=server.url) for _ in range(2)]  # two service instances
    held = []
    for lock in locks:
        await fill_the_pool(lock)
        lease = await lock.acquire("doc", floor=100)
        assert lease is not None
        held.append(lease)
        assert await lock.release(lease)
    server.restart()  # no persistence: every key is gone, the scripts too
    for lock in locks:
        lease = await lock.acquire("doc")  # no LockUnavailable
        assert lease is not None
        assert await lock.extend(lease)
        assert await lock.holder("doc") == lease.token
        assert await lock.release(lease)
    for lock in locks:
        await fill_the_pool(lock)
    server.restart()
    for lock in locks:  # each kind of call, as the first after the restart
        assert await lock.holder("doc") is None
    lease = await locks[0].acquire("doc")
    assert lease is not None
    server.restart()
    assert await locks[0].release(lease) is False  # gone with the data, and no error
    server.restart()
    assert await locks[1].extend(lease) is False


@pytest.mark.gen_test(timeout=30)
async def test_after_redis_restarts_with_its_data_the_held_lease_goes_on(
        make_lock: LockFactory, tmp_path: Path) -> None:
    server = RedisServer(extra_args=["--dir", str(tmp_path)])
    server.start()
    try:
        lock = make_lock(url=server.url)
        other = make_lock(url=server.url)
        await fill_the_pool(lock)
        await fill_the_pool(other)
        lease = await lock.acquire("doc")
        assert lease is not None
        await lock.redis.save()
        server.restart()  # loads dump.rdb from the same directory
        assert await other.holder("doc") == lease.token
        assert await lock.extend(lease)
        assert await other.acquire("doc") is None
        assert await lock.release(lease)
        after = await other.acquire("doc")
        assert after is not None and after.token > lease.token  # the counter came back too
    finally:
        server.stop()


@pytest.mark.async_only
@pytest.mark.gen_test(timeout=20)
async def test_an_acquire_whose_answer_was_lost_is_retried_and_returns_the_same_lease(
        make_lock: LockFactory, monkeypatch: pytest.MonkeyPatch, redis_url: str) -> None:
    """The script ran, the connection dropped before its answer arrived: a retry with a new
    lease id would find the resource busy and leave it blocked until the ttl."""
    lock = make_lock(url=redis_url)  # a client that does not retry: the lock does
    real_evalsha = lock.redis.evalsha
    lost: list[object] = []

    async def answer_lost_once(*args: object) -> object:
        result = await real_evalsha(*args)  # it ran on the server
        if not lost:
            lost.append(result)
            raise RedisConnectionError("Connection closed by server.")
        return result

    monkeypatch.setattr(lock.redis, "evalsha", answer_lost_once)
    lease = await lock.acquire("doc")
    monkeypatch.undo()
    assert lease is not None and lost == [lease.token]
    assert await lock.holder("doc") == lease.token
    assert await lock.release(lease)
    again = await lock.acquire("doc")
    assert again is not None and again.token == lease.token + 1  # one token drawn, not two


def test_either_the_lock_or_the_client_retries_never_both() -> None:
    """redis-py 8.1: Redis(host=...) and RedisCluster retry 10 times by default, from_url not."""
    assert client_retries(aredis.Redis.from_url("redis://127.0.0.1:1/0")) == 0
    assert client_retries(aredis.Redis(host="127.0.0.1", port=1)) > 0
    assert client_retries(AsyncRedisCluster(host="127.0.0.1", port=1)) > 0
    assert LockCore(aredis.Redis(host="127.0.0.1", port=1), 1000, "p", time.monotonic,
                    0.5, None).retry_delays == ()
    assert LockCore(aredis.Redis.from_url("redis://127.0.0.1:1/0"), 1000, "p", time.monotonic,
                    0.5, None).retry_delays != ()


@pytest.mark.gen_test(timeout=20)
async def test_acquire_is_idempotent_for_its_lease_id(lock: FencedLock) -> None:
    script = lock.redis.register_script(scripts.ACQUIRE)
    keys = LeaseKeys.of(lock.prefix, ("doc",))
    first = await script(keys=keys.with_wake("lease-a"),
                         args=[5_000, 0, "lease-a", 0, *keys.layout])
    assert first > 0
    await lock.redis.pexpire(keys.locks[0], 100)
    again = await script(keys=keys.with_wake("lease-a"),
                         args=[5_000, 0, "lease-a", 0, *keys.layout])
    assert again == first  # the same lease, not "busy", and no token spent
    assert await lock.redis.pttl(keys.locks[0]) > 1_000  # renewed
    busy = await script(keys=keys.with_wake("lease-b"),
                        args=[5_000, 0, "lease-b", 0, *keys.layout])
    assert scripts.acquired_token(busy) is None
    assert await lock.holder("doc") == first


@pytest.mark.gen_test(timeout=20)
async def test_scripts_are_reloaded_after_redis_restarts(
        make_lock: LockFactory, make_redis_server: Callable[[], RedisServer]) -> None:
    server = make_redis_server()
    lock: FencedLock = make_lock(url=server.url)
    assert await lock.acquire("doc") is not None
    server.restart()
    assert await lock.acquire("other") is not None  # reconnects, re-sends the script
    assert await lock.acquire("doc") is not None  # the old lock went with the data
