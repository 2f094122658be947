"""The key scheme at scale: untagged resources spread over a cluster's slots, the keys
left behind do not grow with the number of resources ever locked, and a resource's
tokens only grow, across a counter that expired and across the upgrade from the
single counter of the scheme before (see docs/library/key-scheme.md).

Budget: about 15 s together (the 40,000 resources go through pipelines).
"""

from __future__ import annotations

import asyncio
import time

import pytest
import redis
import redis.asyncio as aredis
from redis.crc import key_slot

from devstack import RedisCluster
from fencing import FencedLock, scripts
from fencing.core import SCRIPTS
from fencing.keys import KeySpace, LeaseKeys
from tests.fencing.backends import CLUSTER, keys
from tests.fencing.conftest import LockFactory

THIRD = 16384 // 3


def thirds(lock_keys: list[str]) -> list[float]:
    """The share of `lock_keys` in each third of the cluster's slot range."""
    counts = [0, 0, 0]
    for key in lock_keys:
        counts[min(key_slot(key.encode()) // THIRD, 2)] += 1
    return [count / len(lock_keys) for count in counts]


@pytest.fixture
def lock_target(redis_cluster: RedisCluster) -> str:
    return CLUSTER + redis_cluster.url


@pytest.mark.gen_test(timeout=60)
async def test_held_untagged_resources_spread_over_the_slots_of_a_cluster(
        make_lock: LockFactory, unique_name: str) -> None:
    lock = make_lock(ttl_ms=5_000)
    names = [f"order:{n}" for n in range(3_000)]
    limit = asyncio.Semaphore(64)

    async def take(name: str) -> None:
        async with limit:
            assert await lock.acquire(name) is not None

    await asyncio.gather(*(take(name) for name in names))
    held = sorted(await keys(lock.redis, f"{unique_name}:*:lock:*"))
    assert len(held) == len(names)
    for share in thirds(held):
        assert 0.20 <= share <= 0.47, thirds(held)
    # What one tag for every untagged resource did: every lock in one slot.
    one_tag = [f"{unique_name}:{{{unique_name}}}:lock:{name}" for name in names]
    assert max(thirds(one_tag)) == 1.0


def lock_and_release(client: redis.Redis, resources: list[str], prefix: str,
                     ttl_ms: int) -> None:
    """ACQUIRE and RELEASE once for each resource, as the lock sends them, pipelined."""
    acquire, release = (client.script_load(SCRIPTS[kind]) for kind in ("acquire", "release"))
    for start in range(0, len(resources), 2_000):
        with client.pipeline(transaction=False) as pipe:
            for name in resources[start:start + 2_000]:
                keys = LeaseKeys.of(prefix, (name,))
                pipe.evalsha(acquire, len(keys.shared) + 1, *keys.with_wake(name),
                             ttl_ms, 0, name, 0, *keys.layout)
                pipe.evalsha(release, len(keys.shared), *keys.shared, name, *keys.layout)
            answers = pipe.execute()
        assert all(scripts.acquired_token(answer) for answer in answers[::2])
        assert all(answer == 1 for answer in answers[1::2])


def count_keys(client: redis.Redis, prefix: str) -> int:
    return sum(1 for _ in client.scan_iter(match=f"{prefix}:*", count=5_000))


def test_the_keys_left_do_not_grow_with_the_resources_ever_locked(
        redis_url: str, unique_name: str) -> None:
    ttl_ms = 200
    resources = ([f"{{shop-{n}}}:order:{n}" for n in range(20_000)]
                 + [f"order:{n}" for n in range(20_000)])
    with redis.Redis.from_url(redis_url) as client:
        lock_and_release(client, resources, unique_name, ttl_ms)
        # A counter per tag and per bucket was used: the scheme before kept each one for
        # good (20,000 tags, 20,000 counters, forever); these expire.
        used = {LeaseKeys.of(unique_name, (name,)).space.seq for name in resources}
        assert len(used) > 20_000
        time.sleep(2 * ttl_ms / 1000 + 0.3)  # the longest TTL: a counter's, twice the lease
        deadline = time.monotonic() + 10
        while (left := count_keys(client, unique_name)) > 2_000 and time.monotonic() < deadline:
            time.sleep(0.2)  # Redis's active expiry catches up
        assert left <= 2_000, left


@pytest.mark.gen_test(timeout=30)
async def test_tokens_only_grow_per_resource_across_an_expired_counter_and_the_upgrade(
        redis_url: str, unique_name: str) -> None:
    client = aredis.Redis.from_url(redis_url, socket_timeout=2)
    lock = FencedLock(client, ttl_ms=300, prefix=unique_name)
    try:
        # What the scheme before left: one counter hash for every untagged resource, one
        # per tag, and a lease still held under the old names at the moment of the upgrade.
        old_token = 10**12  # more acquisitions than any deployment made
        await client.hset(f"{unique_name}:{{{unique_name}}}:counters", "token", old_token)
        await client.hset(f"{unique_name}:{{shop}}:counters", "token", old_token)
        tagged = "{shop}:order:1"
        await client.set(KeySpace.of(unique_name, (tagged,)).lock(tagged),
                         f"{old_token}:old-lease", px=200)
        assert await lock.acquire(tagged) is None  # the same lock key: still excluded
        await asyncio.sleep(0.25)
        last: dict[str, int] = {}
        for name in (tagged, "order:1", "invoice:1"):
            lease = await lock.acquire(name)
            assert lease is not None and lease.token > old_token
            last[name] = lease.token
            assert await lock.release(lease)

        # A counter that expired starts again at Redis's clock in µs, above its old value.
        for name in last:
            await client.delete(KeySpace.of(unique_name, (name,)).seq)
        pair = await lock.acquire("order:1", "invoice:1")  # two buckets: above both
        assert pair is not None and pair.token > max(last.values())
        assert await lock.release(pair)
        for name in (tagged, "order:1", "invoice:1"):
            lease = await lock.acquire(name)
            assert lease is not None and lease.token > last[name]
            assert name == tagged or lease.token > pair.token
            assert await lock.release(lease)
    finally:
        await lock.close()
        await client.aclose()
