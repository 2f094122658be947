"""Paused holders, Redis losing its data, Redis down or frozen."""

from __future__ import annotations

import asyncio
import time
from typing import Callable

import pytest

from devstack import RedisServer
from fencing import FencedLock, LockUnavailable
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
    seen = store.highest
    server.restart()  # no persistence: the counter is gone
    await lock.redis.connection_pool.disconnect()  # drop connections to the old process

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


@pytest.mark.gen_test(timeout=20)
async def test_scripts_are_reloaded_after_redis_restarts(
        make_lock: LockFactory, make_redis_server: Callable[[], RedisServer]) -> None:
    server = make_redis_server()
    lock: FencedLock = make_lock(url=server.url)
    assert await lock.acquire("doc") is not None
    server.restart()
    with pytest.raises(LockUnavailable):  # the old connection is gone
        await lock.acquire("other")
    assert await lock.acquire("doc") is not None  # reconnects, re-sends the script
