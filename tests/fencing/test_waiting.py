"""Waiting for a lock: woken on release, first come first served, no busy polling."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio
import redis.exceptions

from fencing import FencedLock, scripts
from fencing.core import ACQUIRE, MIN_WAIT
from fencing.keys import KeySpace
from tests.fencing.backends import (HANDED_OVER_CALLS, FakeClock, command_calls, queued,
                                    wait_for_a_release)
from tests.fencing.conftest import LockFactory


@pytest.mark.gen_test(timeout=30)
async def test_a_waiter_is_woken_by_the_release_not_by_polling(make_lock: LockFactory) -> None:
    # The waiter's own retry would come after 5 s at the earliest (when the holder's lease
    # ends): it has one try, one BLPOP, and the release hands it the lease meanwhile.
    lock = make_lock(socket_timeout=30, max_poll=10)
    holder, lease, calls = await wait_for_a_release(lock, "order:1")
    assert lease.token > holder.token
    assert calls == HANDED_OVER_CALLS, (
        f"{calls} calls: the waiter polled instead of being handed the lease")


@pytest.mark.gen_test(timeout=30)
async def test_waiters_do_not_hammer_redis_while_the_lock_is_held(lock: FencedLock) -> None:
    holder = await lock.acquire("hot")
    assert holder is not None
    before = await command_calls(lock.redis, "evalsha", "eval", "blpop")

    async def take_then_release() -> bool:
        lease = await lock.acquire("hot", timeout=10)
        return lease is not None and await lock.release(lease)

    # Each waiter releases as soon as it is served, whichever reached Redis first.
    waiters = [asyncio.create_task(take_then_release()) for _ in range(8)]
    held_for = 2.0
    await asyncio.sleep(held_for)
    assert await lock.release(holder)
    assert await asyncio.gather(*waiters) == [True] * 8
    calls = await command_calls(lock.redis, "evalsha", "eval", "blpop") - before
    # Each waiter tries once, then backs off to one try per max_poll at most:
    # about 2 * (6 back-off steps + held_for / max_poll) calls, plus its hand-over.
    per_waiter_bound = 2 * (6 + held_for / lock.max_poll) + 6
    assert calls <= 8 * per_waiter_bound, f"{calls} Redis calls for 8 waiters"
    busy_polling_floor = 8 * held_for / 0.001  # what a 1 ms poll loop would send
    assert calls < busy_polling_floor / 20


@pytest.mark.gen_test(timeout=30)
async def test_waiters_are_served_in_the_order_they_came(lock: FencedLock) -> None:
    holder = await lock.acquire("hot")
    assert holder is not None
    order: list[int] = []

    async def wait_then_hold(number: int) -> None:
        async with lock.hold("hot", timeout=10):
            order.append(number)
            await asyncio.sleep(0.02)

    tasks = []
    for number in range(6):
        tasks.append(asyncio.create_task(wait_then_hold(number)))
        await queued(lock, "hot", number + 1)  # each is in line before the next comes
    await lock.release(holder)
    await asyncio.gather(*tasks)
    assert order == list(range(6))


@pytest.mark.gen_test(timeout=30)
async def test_no_waiter_starves_behind_a_greedy_holder(lock: FencedLock) -> None:
    """A task that re-acquires the instant it releases would starve a polling waiter."""
    stop = asyncio.Event()
    greedy_holds = 0

    async def greedy() -> None:
        nonlocal greedy_holds
        while not stop.is_set():
            lease = await lock.acquire("hot")  # barges in without waiting
            if lease is not None:
                greedy_holds += 1
                await asyncio.sleep(0.005)
                await lock.release(lease)
            await asyncio.sleep(0)

    greedy_task = asyncio.create_task(greedy())
    await asyncio.sleep(0.1)
    served = 0
    for _ in range(10):
        lease = await lock.acquire("hot", timeout=2)
        assert lease is not None, "the waiter starved"
        served += 1
        await lock.release(lease)
    stop.set()
    await greedy_task
    assert served == 10 and greedy_holds > 0


@pytest.mark.gen_test(timeout=30)
async def test_waiters_for_overlapping_sets_make_progress_without_deadlock(
        lock: FencedLock) -> None:
    a, b, c = "{w}a", "{w}b", "{w}c"  # one tag: locked together on a cluster too
    sets = [(a, b), (b, c), (c, a), (a,), (b,), (c,)]
    held: dict[str, int] = {}
    done = 0

    async def worker(resources: tuple[str, ...]) -> None:
        nonlocal done
        for _ in range(15):
            async with lock.hold(*resources, timeout=10):
                for name in resources:
                    assert name not in held, f"{name} held twice"
                    held[name] = 1
                await asyncio.sleep(0.002)
                for name in resources:
                    del held[name]
            done += 1

    await asyncio.gather(*(worker(resources) for resources in sets for _ in range(2)))
    assert done == len(sets) * 2 * 15


@pytest.mark.async_only
@pytest.mark.gen_test(timeout=20)
async def test_a_cancelled_waiter_leaves_the_line(lock: FencedLock) -> None:
    holder = await lock.acquire("hot")
    assert holder is not None
    waiter = asyncio.create_task(lock.acquire("hot", timeout=10))
    await queued(lock, "hot")
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await lock.close()  # its clean-up runs in the background: wait for it
    assert await lock.release(holder)
    assert await lock.acquire("hot") is not None  # nobody ahead in line any more
    space = KeySpace.of(lock.prefix, ("hot",))
    assert await lock.redis.exists(space.queue("hot")) == 0


@pytest.mark.gen_test(timeout=20)
async def test_a_waiter_that_gives_up_leaves_the_line(make_lock: LockFactory) -> None:
    lock = make_lock(clock=FakeClock(step=0.1))  # its deadline comes after a few tries
    holder = await lock.acquire("hot")
    assert holder is not None
    assert await lock.acquire("hot", timeout=0.2) is None
    space = KeySpace.of(lock.prefix, ("hot",))
    assert await lock.redis.exists(space.queue("hot"), space.waiters, space.wants) == 0
    assert await lock.release(holder)
    assert await lock.acquire("hot") is not None


@pytest.mark.gen_test(timeout=20)
async def test_a_pause_redis_would_read_as_zero_is_not_slept_on_blpop(
        redis_url: str, unique_name: str) -> None:
    # Redis truncates a BLPOP timeout to whole ms, and "0.001" s is just below 1 ms: 0,
    # which blocks for good. The control: such a BLPOP outlives a 0.5 s socket timeout.
    client = redis.asyncio.Redis.from_url(redis_url, socket_timeout=0.5)
    try:
        with pytest.raises(redis.exceptions.TimeoutError):
            await client.blpop([f"{unique_name}:empty"], timeout=0.001)
        # The shortest pause a waiter sleeps returns empty-handed in time.
        assert await client.blpop([f"{unique_name}:empty"], timeout=MIN_WAIT) is None
    finally:
        await client.aclose()
    # A lock in the way that expires now (PTTL 0: a pause of 1 ms) makes the waiter
    # try again at once, not block on its wake list.
    lock = FencedLock(redis.asyncio.Redis.from_url(redis_url), prefix=unique_name)
    steps = lock._core.acquiring(lock._core.check_acquire(("doc",), 10, None), "w", 10, 0)
    assert next(steps)[0] == ACQUIRE  # the fast path's keys
    assert steps.send(scripts.Outcome.ALL_KEYS)[0] == ACQUIRE  # every key: joins
    kind, _, _ = steps.send([-2, "1"])  # busy: the lock in the way has 0 ms left
    assert kind == ACQUIRE
    await lock.redis.aclose()
