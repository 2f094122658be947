"""The fast path's calls: an acquire and a release that carry only the keys of their fast
path (the locks, their queues, the counters), a cheaper call, and answer ALL_KEYS when
what is left needs every key of the layout.

Nothing held and nobody in line: one call each. Anything else (a lease in the way, a
line, a retry whose first try ran) goes on with every key, as the script decides.
"""

from __future__ import annotations

import asyncio

import pytest

from fencing import FencedLock, scripts
from fencing.core import ACQUIRE, RELEASE
from fencing.keys import LeaseKeys
from tests.fencing.backends import acquire_script, command_calls, queued, warm_scripts


def test_the_first_acquire_and_a_release_carry_the_fast_paths_keys_only(
        lock: FencedLock) -> None:
    core = lock._core if hasattr(lock, "_core") else lock.sync._core  # async, sync
    keys = core.check_acquire(("doc",), 10, None)
    assert keys.fast == (*keys.locks, *keys.queues, keys.space.seq)
    assert keys.shared[:len(keys.fast)] == keys.fast  # the first part of the layout
    acquiring = core.acquiring(keys, "lease-a", 10, 0)
    kind, call_keys, _ = next(acquiring)
    assert (kind, call_keys) == (ACQUIRE, keys.fast)
    with pytest.raises(StopIteration) as acquired:
        acquiring.send(33)
    lease = acquired.value.value
    assert lease.token == 33
    releasing = core.releasing(lease)
    kind, call_keys, _ = next(releasing)
    assert (kind, call_keys) == (RELEASE, keys.fast)
    with pytest.raises(StopIteration) as released:
        releasing.send(scripts.Outcome.DONE)
    assert released.value.value is True


@pytest.mark.gen_test(timeout=20)
async def test_an_uncontended_acquire_and_release_are_one_call_each(lock: FencedLock) -> None:
    await warm_scripts(lock.redis)
    before = await command_calls(lock.redis, "evalsha", "eval")
    lease = await lock.acquire("doc", timeout=5)
    assert lease is not None
    assert await lock.release(lease)
    assert await command_calls(lock.redis, "evalsha", "eval") - before == 2


@pytest.mark.gen_test(timeout=20)
async def test_a_one_try_on_a_held_lock_is_one_call(lock: FencedLock) -> None:
    holder = await lock.acquire("doc")
    assert holder is not None
    await warm_scripts(lock.redis)
    before = await command_calls(lock.redis, "evalsha", "eval")
    assert await lock.acquire("doc") is None
    assert await command_calls(lock.redis, "evalsha", "eval") - before == 1


@pytest.mark.gen_test(timeout=20)
async def test_a_retried_fast_acquire_whose_first_try_ran_gets_the_same_lease(
        lock: FencedLock) -> None:
    # The first try's answer was lost; the retry (the same lease id) finds the lock its
    # own, which only the call with every key may renew and return.
    keys = LeaseKeys.of(lock.prefix, ("doc",))
    script = lock.redis.register_script(scripts.ACQUIRE)
    args = [5_000, 0, "lease-a", 2_000, *keys.layout]
    token = await script(keys=keys.fast, args=args)
    assert scripts.acquired_token(token) is not None
    assert scripts.needs_all_keys(await script(keys=keys.fast, args=args))
    assert await lock.holder("doc") == token  # the retry changed nothing
    assert await script(keys=keys.with_wake("lease-a"), args=args) == token


@pytest.mark.gen_test(timeout=20)
async def test_the_fast_acquire_does_not_pass_a_waiter_of_a_free_lock(lock: FencedLock) -> None:
    # The holder's lease ended, and the waiter first in line has not polled yet: the
    # lock is free, yet a newcomer on the fast path does not take it.
    holder = await lock.acquire("doc")
    assert holder is not None
    keys = LeaseKeys.of(lock.prefix, ("doc",))
    assert scripts.acquired_token(await acquire_script(lock)(keys, "lease-w", 5_000)) is None
    await lock.redis.delete(*keys.locks)  # as its expiry would
    script = lock.redis.register_script(scripts.ACQUIRE)
    for live in (0, 2_000):  # one try, or a newcomer that would wait
        newcomer = await script(keys=keys.fast, args=[5_000, 0, "lease-n", live, *keys.layout])
        assert scripts.needs_all_keys(newcomer), newcomer
    assert await lock.holder("doc") is None
    assert await lock.acquire("doc") is None  # the line decides: lease-w is first


@pytest.mark.gen_test(timeout=20)
async def test_the_fast_release_leaves_a_lock_with_waiters_to_the_full_release(
        lock: FencedLock) -> None:
    holder = await lock.acquire("doc")
    assert holder is not None
    waiter = asyncio.create_task(lock.acquire("doc", timeout=10))
    await queued(lock, "doc")
    keys = LeaseKeys.of(lock.prefix, ("doc",))
    script = lock.redis.register_script(scripts.RELEASE)
    answer = await script(keys=keys.fast, args=[holder.lease_id, *keys.layout])
    assert scripts.needs_all_keys(answer)
    assert await lock.holder("doc") == holder.token  # nothing changed
    assert await lock.release(holder)  # the lock's own release: handed to the waiter
    lease = await waiter
    assert lease is not None and lease.token > holder.token
    assert await lock.release(lease)
