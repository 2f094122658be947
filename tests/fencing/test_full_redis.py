"""A Redis whose memory runs out: with `noeviction` (the policy the lock needs) it refuses
new locks with OOM, which the lock raises as `LockUnavailable`, and keeps the held ones;
with an eviction policy it drops held locks and a second holder gets the resource while
the first still holds its lease: the lock warns, once, when it meets such a server.

Each test starts a redis-server of its own with the policy under test. Budget: about 5 s."""

from __future__ import annotations

import logging
from typing import Any, Iterator

import pytest
from redis.exceptions import OutOfMemoryError, ResponseError

from devstack import RedisServer
from fencing import Lease, LockUnavailable
from tests.fencing.conftest import LockFactory

FILLER = "x" * 200_000


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    """A redis-server with the maxmemory-policy the test is parametrized with."""
    started = RedisServer(extra_args=["--maxmemory-policy", request.param])
    started.start()
    yield started
    started.stop()


async def held_as_memory_runs_out(make_lock: LockFactory, server: RedisServer
                                  ) -> tuple[Any, Lease]:
    """A lock on `server` and a lease on "doc" taken before Redis's memory ran out."""
    lock = make_lock(url=server.url, ttl_ms=60_000)
    held = await lock.acquire("doc")
    assert held is not None
    await fill_memory(lock.redis)
    return lock, held


async def fill_memory(client: Any) -> None:
    """Write 2 MB of keys without a ttl, then cap Redis's memory 1 MB below what it uses: a
    write is then refused (OOM), once Redis has evicted whatever its policy lets it."""
    for number in range(10):
        await client.set(f"filler:{number}", FILLER)
    used = int((await client.info("memory"))["used_memory"])
    await client.config_set("maxmemory", used - 1_000_000)
    with pytest.raises((OutOfMemoryError, ResponseError), match="OOM|maxmemory"):
        await client.set("one:more", "x")


async def make_room(client: Any) -> None:
    await client.delete(*(f"filler:{number}" for number in range(7)))


@pytest.mark.parametrize("server", ["noeviction"], indirect=True)
@pytest.mark.gen_test(timeout=30)
async def test_a_full_redis_refuses_new_locks_as_unavailable_and_keeps_the_held_ones(
        make_lock: LockFactory, server: RedisServer) -> None:
    lock, held = await held_as_memory_runs_out(make_lock, server)
    with pytest.raises(LockUnavailable, match="OOM"):
        await lock.acquire("other")
    with pytest.raises(LockUnavailable, match="OOM"):
        await lock.acquire("doc", timeout=0.2)
    assert await lock.extend(held)  # renewing and releasing need no memory
    assert await lock.holder("doc") == held.token
    assert await lock.release(held)
    await make_room(lock.redis)
    assert await lock.acquire("other") is not None  # and it recovers


@pytest.mark.parametrize("server", ["volatile-ttl"], indirect=True)
@pytest.mark.gen_test(timeout=30)
async def test_an_eviction_policy_drops_a_held_lock_and_a_second_holder_takes_it(
        make_lock: LockFactory, server: RedisServer) -> None:
    """The unsafe variant of the test above: what the warning is about."""
    lock, first = await held_as_memory_runs_out(make_lock, server)  # evicts keys with a ttl
    await make_room(lock.redis)
    second = await lock.acquire("doc")
    assert second is not None and first.held  # two leases on "doc" with time left


@pytest.mark.parametrize("server", ["allkeys-lru", "noeviction"], indirect=True)
@pytest.mark.gen_test(timeout=30)
async def test_the_lock_warns_once_when_redis_may_evict_its_keys(
        make_lock: LockFactory, server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    policy = server.extra_args[-1]
    caplog.set_level(logging.WARNING, logger="fencing")
    lock = make_lock(url=server.url)
    for _ in range(3):
        lease = await lock.acquire("doc")
        assert lease is not None and await lock.release(lease)
    warnings = [record.getMessage() for record in caplog.records
                if "maxmemory-policy" in record.getMessage()]
    if policy == "noeviction":
        assert warnings == []
    else:
        assert len(warnings) == 1 and policy in warnings[0]
