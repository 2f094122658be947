"""Direct hand-off: a release grants the lease to the first live waiter in the same script,
and notifies it (NOTIFY onto its wake list) in the next call.

The cases that can go wrong between queueing and the grant: the waiter died,
gave up, was cancelled just as it was granted, or had stopped listening (its
BLPOP timed out) when the grant came.
"""

from __future__ import annotations

import asyncio

import pytest

from fencing import FencedLock, Lease, scripts
from fencing.keys import LeaseKeys
from tests.fencing.backends import CLUSTER, acquire_script, command_calls, queued, warm_scripts


async def held_with_a_waiter(lock: FencedLock, waiter: str,
                             liveness_ms: int) -> tuple[Lease, LeaseKeys]:
    """"hot" held, and a waiter `waiter` in line (joined by the script itself, so the test
    decides what it does next): the holder's lease and the keys."""
    holder = await lock.acquire("hot")
    assert holder is not None
    keys = LeaseKeys.of(lock.prefix, ("hot",))
    busy = await acquire_script(lock)(keys, waiter, liveness_ms)
    assert scripts.acquired_token(busy) is None
    return holder, keys


@pytest.mark.gen_test(timeout=20)
async def test_a_release_grants_the_lease_to_the_waiter_in_the_same_step(
        lock: FencedLock) -> None:
    holder = await lock.acquire("hot")
    assert holder is not None
    waiter = asyncio.create_task(lock.acquire("hot", timeout=10))
    await queued(lock, "hot")
    await warm_scripts(lock.redis)
    before = await command_calls(lock.redis, "evalsha", "eval")
    assert await lock.release(holder)
    granted = await lock.holder("hot")  # held again before the waiter even ran
    assert granted is not None and granted > holder.token
    lease = await waiter
    assert lease is not None and lease.token == granted and lease.held
    # The release (with its fast path's keys: someone waits; then with every key) and its
    # NOTIFY: no ACQUIRE after the wake. (The BLPOP that returned the lease is left out:
    # Redis 6 counts a blocking command when it blocks, Redis 7 when it returns.)
    calls = await command_calls(lock.redis, "evalsha", "eval") - before
    assert calls == 3, calls
    assert await lock.release(lease)


@pytest.mark.gen_test(timeout=20)
async def test_a_waiter_that_died_in_line_is_skipped_by_the_hand_off(lock: FencedLock) -> None:
    # A waiter that joined with a liveness of 100 ms and never came back (it died).
    holder, keys = await held_with_a_waiter(lock, "ghost", 100)
    live = asyncio.create_task(lock.acquire("hot", timeout=10))
    await queued(lock, "hot", 2)
    await asyncio.sleep(0.15)  # the ghost's deadline passes; the live waiter keeps its place
    assert await lock.release(holder)
    lease = await live
    assert lease is not None and await lock.holder("hot") == lease.token
    assert await lock.release(lease)
    assert await lock.holder("hot") is None  # nothing handed to the ghost
    space = keys.space
    assert await lock.redis.exists(space.queue("hot"), space.waiters, space.wants) == 0


@pytest.mark.gen_test(timeout=20)
async def test_a_grant_the_waiter_missed_is_found_by_its_next_try(lock: FencedLock) -> None:
    """The waiter's BLPOP timed out just before the grant came: its next ACQUIRE (same lease
    id) returns the granted lease, renewed, instead of "busy"."""
    holder, keys = await held_with_a_waiter(lock, "slow", 2_000)
    acquire = acquire_script(lock)
    assert await lock.release(holder)
    granted = await lock.holder("hot")
    assert granted is not None and granted > holder.token
    assert await acquire(keys, "slow", 2_000) == granted
    assert await acquire(keys, "slow", -1) == granted  # gives up
    assert await lock.redis.exists(keys.space.wake("slow")) == 0


@pytest.mark.gen_test(timeout=20)
async def test_a_grant_to_a_waiter_that_gave_up_is_passed_on(lock: FencedLock) -> None:
    """A waiter granted just after its last busy answer leaves the line: LEAVE, what a
    cancelled or failed acquire sends, releases the grant and hands it to the next one."""
    holder, keys = await held_with_a_waiter(lock, "gone", 2_000)
    next_one = asyncio.create_task(lock.acquire("hot", timeout=10))
    await queued(lock, "hot", 2)
    assert await lock.release(holder)  # granted to "gone"
    assert await lock.holder("hot") not in (None, holder.token)
    leave = lock.redis.register_script(scripts.LEAVE)
    done, notes = scripts.outcome(await leave(keys=keys.with_wake("gone"),
                                              args=["gone", *keys.layout]))
    assert done == 1 and len(notes) == 1  # the next one, to be notified
    notify = lock.redis.register_script(scripts.NOTIFY)
    await notify(keys=[notes[0][0]], args=[notes[0][1]])
    lease = await next_one
    assert lease is not None and await lock.holder("hot") == lease.token
    assert await lock.release(lease)


@pytest.mark.async_only
@pytest.mark.gen_test(timeout=60)
async def test_a_waiter_cancelled_as_it_is_granted_leaves_nothing_held(lock: FencedLock) -> None:
    for _ in range(8):
        holder = await lock.acquire("hot")
        assert holder is not None
        waiter = asyncio.create_task(lock.acquire("hot", timeout=10))
        await queued(lock, "hot")
        assert await lock.release(holder)
        waiter.cancel()  # the grant is made; its answer may or may not have reached the waiter
        try:
            lease = await waiter
        except asyncio.CancelledError:
            lease = None
        if lease is not None:
            assert await lock.release(lease)
        await lock.close()  # the cancelled acquire's clean-up
        assert await lock.holder("hot") is None
        again = await lock.acquire("hot")  # nobody ahead in line, nothing orphaned
        assert again is not None
        assert await lock.release(again)


@pytest.mark.parametrize("a, b", [("{t}a", "{t}b"), ("a", "b")], ids=["one-tag", "two-buckets"])
@pytest.mark.gen_test(timeout=20)
async def test_a_waiter_for_several_resources_is_granted_when_the_last_one_is_free(
        lock: FencedLock, lock_target: str, a: str, b: str) -> None:
    if lock_target.startswith(CLUSTER) and "{" not in a:
        pytest.skip("untagged resources in two buckets are two slots: one server only")
    first = await lock.acquire(a)
    second = await lock.acquire(b)
    assert first is not None and second is not None
    waiter = asyncio.create_task(lock.acquire(a, b, timeout=10))
    await queued(lock, b)
    assert await lock.release(first)  # b still held: woken to try again, not granted
    assert await lock.holder(a) is None
    assert not waiter.done()
    assert await lock.release(second)
    lease = await waiter
    assert lease is not None
    assert await lock.holder(a) == lease.token == await lock.holder(b)
    assert await lock.release(lease)
