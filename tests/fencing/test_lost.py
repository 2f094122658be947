"""`lease.lost` and `wait_lost()`: set and returning once the lease can no longer be held,
whatever the reason: its time ran out (not renewed, or renewed no more after `max_hold`), a
renewal found it taken over, or a renewal was refused (NOPERM, or READONLY and NOREPLICAS
until the lease's time has run out). Each test runs on both locks; the ones that change the
server's settings bring a redis-server of their own. Budget: about 25 s (renewals and
expiries are waited for)."""

from __future__ import annotations

import asyncio
from typing import Any, Callable

import pytest

from devstack import RedisServer
from fencing import Lease, LockError, LockUnavailable
from tests.fencing.conftest import LockFactory


async def lost_within(lease: Lease, seconds: float) -> None:
    await asyncio.wait_for(lease.wait_lost(), timeout=seconds)
    assert lease.lost and not lease.held


@pytest.mark.gen_test(timeout=20)
async def test_wait_lost_returns_when_a_lease_nobody_renews_expires(
        make_lock: LockFactory) -> None:
    lock = make_lock(ttl_ms=300)
    lease = await lock.acquire("doc")
    assert lease is not None and not lease.lost
    await lost_within(lease, 3)
    assert await lock.extend(lease) is False  # lost for good, even if Redis still had it


@pytest.mark.gen_test(timeout=20)
async def test_wait_lost_returns_once_max_hold_has_stopped_the_renewals(
        make_lock: LockFactory) -> None:
    lock = make_lock(ttl_ms=1_500)  # renewed every 0.5 s: at 0.5 s, not at 1 s
    async with lock.hold("doc", keep_alive=True, max_hold=0.6) as lease:
        await asyncio.sleep(0.7)  # past max_hold: the lease is still the holder's till 2 s
        assert not lease.lost
        await lost_within(lease, 4)


@pytest.mark.gen_test(timeout=20)
async def test_a_released_lease_is_not_lost_and_ends_wait_lost(make_lock: LockFactory) -> None:
    lock = make_lock(ttl_ms=5_000)
    lease = await lock.acquire("doc")
    assert lease is not None
    waiter = asyncio.ensure_future(lease.wait_lost())
    await asyncio.sleep(0.05)
    assert not waiter.done()
    assert await lock.release(lease)
    await asyncio.wait_for(waiter, timeout=2)
    assert not lease.lost


@pytest.mark.gen_test(timeout=20)
async def test_wait_lost_blocking_returns_true_at_expiry(make_lock: LockFactory) -> None:
    lock = make_lock(ttl_ms=1_000)
    lease = await lock.acquire("doc")
    assert lease is not None
    assert lease.wait_lost_blocking(timeout=0.05) is False  # still held
    loop = asyncio.get_running_loop()
    assert await loop.run_in_executor(None, lease.wait_lost_blocking, 3.0) is True


# -- renewals refused by the server ------------------------------------------------------


async def errors_seen(client: Any) -> int:
    """Error replies so far (Redis counts an error inside a script as ERR)."""
    stats = await client.info("errorstats")
    return int(stats.get("errorstat_ERR", {}).get("count", 0))


async def until_an_error(client: Any, before: int) -> None:
    """Returns once Redis has refused a call (a renewal met the refusal), bounded."""
    for _ in range(500):
        if await errors_seen(client) > before:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("no call was refused")


@pytest.mark.gen_test(timeout=30)
async def test_a_renewal_refused_for_lack_of_replicas_is_tried_again_while_time_is_left(
        make_lock: LockFactory, make_redis_server: Callable[[], RedisServer]) -> None:
    """NOREPLICAS is Redis unavailable for writes (LockUnavailable), not the lease refused:
    the renewer keeps trying; it used to die at the first one, and the lease expired."""
    server = make_redis_server()
    lock = make_lock(url=server.url, ttl_ms=3_000)  # renewed every second
    async with lock.hold("doc", keep_alive=True) as lease:
        before = await errors_seen(lock.redis)
        await lock.redis.config_set("min-replicas-to-write", 1)
        await until_an_error(lock.redis, before)
        with pytest.raises(LockUnavailable):
            await lock.extend(lease)
        await lock.redis.config_set("min-replicas-to-write", 0)
        await asyncio.sleep(3.5)  # past the ttl: only a renewal since keeps it
        assert lease.held and not lease.lost
        assert await lock.holder("doc") == lease.token


@pytest.mark.gen_test(timeout=30)
async def test_a_demoted_redis_makes_the_lease_lost_when_its_time_runs_out(
        make_lock: LockFactory, make_redis_server: Callable[[], RedisServer]) -> None:
    """READONLY after a failover demoted the server: unavailable, then lost at expiry."""
    server = make_redis_server()
    nowhere = make_redis_server()  # a master that goes away: the replica keeps its data
    lock = make_lock(url=server.url, ttl_ms=900)
    async with lock.hold("doc", keep_alive=True) as lease:
        nowhere.stop()
        await lock.redis.execute_command("REPLICAOF", nowhere.host, nowhere.port)
        with pytest.raises(LockUnavailable):
            await lock.extend(lease)
        await lost_within(lease, 5)
        await lock.redis.execute_command("REPLICAOF", "NO", "ONE")


@pytest.mark.gen_test(timeout=30)
async def test_a_renewal_refused_by_acl_marks_the_lease_lost_at_once(
        make_lock: LockFactory, make_redis_server: Callable[[], RedisServer]) -> None:
    """NOPERM is final: the lease is lost at the first refusal, before its time runs out
    (the renewer used to stop silently, and wait_lost never returned)."""
    server = make_redis_server()
    admin = make_lock(url=server.url)
    await admin.redis.acl_setuser("locker", enabled=True, passwords=["+pw"], keys=["~*"],
                                  commands=["+@all"])
    lock = make_lock(url=server.url.replace("redis://", "redis://locker:pw@"), ttl_ms=6_000)
    async with lock.hold("doc", keep_alive=True) as lease:  # renewed every 2 s
        await admin.redis.acl_setuser("locker", enabled=True, commands=["-evalsha"])
        with pytest.raises(LockError) as refused:
            await lock.extend(lease)
        assert not isinstance(refused.value, LockUnavailable)
        await lost_within(lease, 4.5)
        assert lease.expires_at > lease.clock()  # lost before its time ran out
