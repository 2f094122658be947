"""The waiting machinery's edge cases, each once a real defect: a wake message that
outlived its grant, a waiter split between two tickets, a joiner that cut short the
line's expiry, a floor rounded on its way through cjson.

Each test drives one waiter step by step with the ACQUIRE script (a lease id the test
picks) or through the lock with a lease id the test fixes, so the schedule is exact.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Iterator

import pytest

from fencing import FencedLock, scripts
from fencing.keys import LeaseKeys
from tests.fencing.backends import acquire_script, queued


@contextlib.contextmanager
def lease_id_of_next_acquire(lock: Any, lease_id: str) -> Iterator[None]:
    """The lock's next acquires use `lease_id` (a waiter the test already put in line)."""
    core = getattr(lock, "sync", lock)._core
    core.new_lease_id = lambda: lease_id
    try:
        yield
    finally:
        del core.new_lease_id


@pytest.mark.gen_test(timeout=20)
async def test_a_wake_message_older_than_the_waiters_turn_is_not_taken_for_a_grant(
        lock: FencedLock) -> None:
    keys = LeaseKeys.of(lock.prefix, ("r",))
    acquire = acquire_script(lock)
    holder = await lock.acquire("r")
    assert holder is not None
    assert scripts.acquired_token(await acquire(keys, "w", 5_000, ttl_ms=100)) is None
    assert await lock.release(holder)  # granted to w, for 100 ms; w does not look
    stale = await lock.holder("r")
    assert stale is not None
    await asyncio.sleep(0.25)  # w's grant ran out
    newcomer = await lock.acquire("r")
    assert newcomer is not None and newcomer.token > stale

    with lease_id_of_next_acquire(lock, "w"):  # w tries again, as its acquire loop does
        waiting = asyncio.create_task(lock.acquire("r", timeout=5))
        await queued(lock, "r")
        # The notification of the old grant, as a NOTIFY delayed past w's new turn
        # delivers it (or as it stayed on the wake list, before it was cleared on joining).
        await lock.redis.lpush(keys.space.wake("w"), stale)
        await asyncio.sleep(0.2)
        assert not waiting.done(), "a stale grant was taken for a lease: two holders"
        assert await lock.holder("r") == newcomer.token
        assert await lock.release(newcomer)
        lease = await waiting
    assert lease is not None and lease.token > newcomer.token
    assert await lock.holder("r") == lease.token
    assert await lock.release(lease)


@pytest.mark.gen_test(timeout=20)
async def test_a_waiter_dropped_while_it_stalled_rejoins_every_queue_with_one_ticket(
        lock: FencedLock) -> None:
    a, b = "{t}a", "{t}b"
    keys = LeaseKeys.of(lock.prefix, (a, b))
    acquire = acquire_script(lock)
    holds_a, holds_b = await lock.acquire(a), await lock.acquire(b)
    assert holds_a is not None and holds_b is not None
    assert scripts.acquired_token(await acquire(keys, "w1", 100)) is None  # it stalls
    assert scripts.acquired_token(await acquire(keys, "w2", 5_000)) is None
    await asyncio.sleep(0.2)  # w1's deadline passes
    assert await lock.release(holds_a)  # the hand-off of a drops w1 there
    assert scripts.acquired_token(await acquire(keys, "w1", 5_000)) is None  # w1 is back
    assert await lock.release(holds_b)

    # a and b are free: the first of the two in line takes them (w1 lost its place when
    # it was dropped), and the other one follows; nobody waits on the other for good.
    first = await acquire(keys, "w2", 5_000)
    assert scripts.acquired_token(first) is not None, "two waiters wait on each other"
    assert scripts.acquired_token(await acquire(keys, "w1", 5_000)) is None
    assert await lock.acquire(a) is None  # a newcomer queues behind them
    await lock.redis.delete(*keys.locks)  # w2 is done
    assert scripts.acquired_token(await acquire(keys, "w1", 5_000)) is not None


@pytest.mark.gen_test(timeout=20)
async def test_a_short_lived_joiner_does_not_cut_short_the_line_of_a_slow_waiter(
        lock: FencedLock) -> None:
    keys = LeaseKeys.of(lock.prefix, ("r",))
    acquire = acquire_script(lock)
    holder = await lock.acquire("r")
    assert holder is not None
    # A slow waiter (a long max_poll) joins, then one that will be back within 100 ms.
    assert scripts.acquired_token(await acquire(keys, "slow", 5_000)) is None
    assert scripts.acquired_token(await acquire(keys, "quick", 100)) is None
    await asyncio.sleep(0.35)  # quick is gone; slow is still asleep
    space = keys.space
    for key in (space.queue("r"), space.waiters, space.wants):
        assert await lock.redis.pttl(key) > 5_000, key
    assert await lock.release(holder)
    granted = await lock.redis.get(keys.locks[0])
    assert granted is not None and granted.endswith(b":slow"), "the slow waiter lost its turn"


@pytest.mark.gen_test(timeout=20)
async def test_a_floor_beyond_fourteen_digits_is_kept_exactly_on_a_hand_off(
        lock: FencedLock) -> None:
    floor = 4 * 10**15 + 7  # above Redis's clock in µs, below 2^53
    holder = await lock.acquire("r")
    assert holder is not None
    waiter = asyncio.create_task(lock.acquire("r", timeout=10, floor=floor))
    await queued(lock, "r")
    assert await lock.release(holder)  # the hand-off draws the token with the waiter's floor
    lease = await waiter
    assert lease is not None and lease.token == floor + 1
    assert await lock.holder("r") == floor + 1
    assert await lock.release(lease)
    with pytest.raises(ValueError):
        await lock.acquire("r", floor=2**53)  # beyond what the scripts count exactly
