"""Acquire, release, extend and holder on one real redis-server."""

from __future__ import annotations

import asyncio

import pytest
from redis.crc import key_slot

from fencing import FencedLock, LockBusy
from fencing.keys import KeySpace, LeaseKeys
from tests.fencing.backends import FakeClock
from tests.fencing.conftest import LockFactory


@pytest.mark.gen_test
async def test_each_lease_gets_a_higher_token(lock: FencedLock) -> None:
    tokens = []
    for _ in range(5):
        lease = await lock.acquire("{p1}:order:1")
        assert lease is not None
        tokens.append(lease.token)
        assert await lock.release(lease)
    assert tokens == sorted(set(tokens))


@pytest.mark.gen_test
async def test_a_held_resource_is_not_acquired_again(lock: FencedLock) -> None:
    lease = await lock.acquire("{p1}:order:1", "{p1}:invoice:1")
    assert lease is not None
    assert await lock.acquire("{p1}:order:1") is None
    assert await lock.acquire("{p1}:invoice:1", "{p1}:other") is None
    assert await lock.holder("{p1}:order:1") == lease.token
    assert await lock.holder("{p1}:invoice:1") == lease.token
    assert await lock.holder("{p1}:other") is None


@pytest.mark.gen_test
async def test_several_resources_are_taken_all_or_nothing_and_a_refusal_spends_no_token(
        lock: FencedLock) -> None:
    blocker = await lock.acquire("{p9}:invoice:9")
    assert blocker is not None
    assert await lock.acquire("{p9}:order:9", "{p9}:invoice:9") is None
    assert await lock.holder("{p9}:order:9") is None  # nothing taken by the refused call
    assert await lock.release(blocker)
    lease = await lock.acquire("{p9}:order:9", "{p9}:invoice:9")
    assert lease is not None
    assert lease.token == blocker.token + 1  # the refusal drew no token


@pytest.mark.gen_test
async def test_a_stale_lease_can_neither_release_nor_extend_the_new_holders_lock(
        make_lock: LockFactory) -> None:
    lock = make_lock(ttl_ms=150)
    old = await lock.acquire("{p1}:order:1", "{p1}:invoice:1")
    assert old is not None
    await asyncio.sleep(0.25)
    assert not old.held
    new = await lock.acquire("{p1}:order:1", "{p1}:invoice:1")
    assert new is not None and new.token > old.token
    assert await lock.release(old) is False
    assert await lock.extend(old) is False
    assert old.lost
    assert await lock.holder("{p1}:order:1") == new.token
    assert await lock.holder("{p1}:invoice:1") == new.token
    assert await lock.release(new) is True


@pytest.mark.gen_test
async def test_a_request_that_failed_to_lock_cannot_delete_the_holders_lock(
        lock: FencedLock) -> None:
    """The Go original deferred a blind DEL before locking; here a refused call owns nothing."""
    holder = await lock.acquire("{p1}:order:1")
    assert holder is not None
    with pytest.raises(LockBusy):
        async with lock.hold("{p1}:order:1"):
            pytest.fail("must not enter")
    assert await lock.holder("{p1}:order:1") == holder.token


@pytest.mark.gen_test
async def test_release_is_idempotent_and_ends_the_lease(lock: FencedLock) -> None:
    lease = await lock.acquire("a")
    assert lease is not None
    assert await lock.release(lease) is True
    assert not lease.held
    assert await lock.release(lease) is False


@pytest.mark.gen_test
async def test_extend_renews_the_lease_to_its_full_ttl(make_lock: LockFactory) -> None:
    clock = FakeClock()  # the lease's deadline, measured on the lock's clock seam
    lock = make_lock(ttl_ms=600, clock=clock)
    lease = await lock.acquire("a")
    assert lease is not None and lease.remaining() == pytest.approx(0.6)
    for _ in range(4):
        await asyncio.sleep(0.2)  # Redis's clock: 0.8 s in all, past the ttl
        clock.advance(0.2)
        assert lease.remaining() == pytest.approx(0.4)
        assert await lock.extend(lease)
        assert lease.remaining() == pytest.approx(0.6)  # the full ttl again, from the call
    assert await lock.holder("a") == lease.token


@pytest.mark.gen_test
async def test_hold_releases_on_exit_even_when_the_block_raises(lock: FencedLock) -> None:
    with pytest.raises(RuntimeError):
        async with lock.hold("{t}a", "{t}b") as lease:
            assert await lock.holder("{t}a") == lease.token
            raise RuntimeError("boom")
    assert await lock.holder("{t}a") is None
    assert await lock.holder("{t}b") is None


@pytest.mark.gen_test
async def test_keep_alive_holds_past_the_ttl_and_stops_on_exit(make_lock: LockFactory) -> None:
    lock = make_lock(ttl_ms=450)  # renewed every 150 ms
    async with lock.hold("a", keep_alive=True) as lease:
        await asyncio.sleep(1.0)
        assert lease.held
        assert await lock.holder("a") == lease.token
    assert await lock.holder("a") is None


@pytest.mark.gen_test
async def test_keep_alive_tells_the_holder_when_the_lease_is_lost(make_lock: LockFactory) -> None:
    lock = make_lock(ttl_ms=300)
    async with lock.hold("a", keep_alive=True) as lease:
        await lock.redis.delete(KeySpace.of(lock.prefix, ("a",)).lock("a"))  # taken away
        await asyncio.wait_for(lease.wait_lost(), timeout=2)
        assert not lease.held


@pytest.mark.gen_test
async def test_keep_alive_stops_renewing_after_max_hold(make_lock: LockFactory) -> None:
    lock = make_lock(ttl_ms=150)
    async with lock.hold("a", keep_alive=True, max_hold=0.2) as lease:
        await asyncio.sleep(0.6)
        assert not lease.held
        assert await lock.holder("a") is None


def test_resources_locked_together_on_a_cluster_must_share_a_hash_tag() -> None:
    # Untagged resources fall in buckets of their own (see fencing.keys).
    assert KeySpace.of("fencing", ("order:1",)).tag.startswith("fencing#")
    assert KeySpace.of("fencing", ("{shop}:order:1", "{shop}:invoice:1")).tag == "shop"
    with pytest.raises(ValueError):
        KeySpace.of("fencing", ("{a}:order:1", "{b}:invoice:1"))
    with pytest.raises(ValueError):
        LeaseKeys.of("fencing", ("{a}:order:1", "{b}:invoice:1"))
    apart = ("order:1", "invoice:1")
    assert len(LeaseKeys.of("fencing", apart).spaces) == 2  # fine on one server
    with pytest.raises(ValueError, match="share one {tag}"):
        LeaseKeys.of("fencing", apart, cluster=True)


def test_all_keys_of_one_acquisition_hash_to_one_cluster_slot() -> None:
    keys = LeaseKeys.of("fencing", ("{shop}:order:1", "{shop}:invoice:2"), cluster=True)
    assert len({key_slot(key.encode()) for key in keys.with_wake("abc")}) == 1


@pytest.mark.gen_test
async def test_bad_arguments_are_refused_before_any_redis_call(lock: FencedLock) -> None:
    for bad in [(), ("",), ("a", "a")]:
        with pytest.raises(ValueError):
            await lock.acquire(*bad)
    with pytest.raises(ValueError):
        await lock.acquire("a", timeout=-1)
    with pytest.raises(ValueError):
        await lock.acquire("a", floor=-5)
