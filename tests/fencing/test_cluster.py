"""The lock on a real Redis Cluster (three masters from the same redis-server binary).

Every acquisition's keys and its token counter carry one hash tag, so they sit
in one slot and the multi-key Lua scripts run as on a single server. The
counter is kept per tag: a resource always maps to the same tag (its own
`{...}`, or its bucket's), so the tokens one resource sees only grow.
Resources locked together share an explicit tag in their names.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from devstack import RedisCluster
from fencing import FencedLock
from fencing.keys import KeySpace, hash_tag
from tests.fencing.backends import CLUSTER, HANDED_OVER_CALLS, wait_for_a_release
from tests.fencing.conftest import LockFactory


@pytest.fixture
def cluster(redis_cluster: RedisCluster) -> RedisCluster:
    return redis_cluster  # tests/fencing/conftest.py: one cluster for the session


@pytest.fixture
def lock_target(cluster: RedisCluster) -> str:
    return CLUSTER + cluster.url  # these tests run on the cluster alone


@pytest.fixture
def cluster_lock(make_lock: LockFactory) -> FencedLock:
    """The async lock on redis.asyncio's RedisCluster, or the sync one on redis.cluster's."""
    return make_lock(ttl_ms=3_000)


@pytest.mark.gen_test(timeout=30)
async def test_an_order_and_its_invoice_are_taken_all_or_nothing_on_a_cluster(
        cluster_lock: FencedLock) -> None:
    with pytest.raises(ValueError, match="share one {tag}"):
        await cluster_lock.acquire("order:1", "invoice:1")  # two buckets: two slots
    lease = await cluster_lock.acquire("{i1}:order:1", "{i1}:invoice:1")
    assert lease is not None
    assert await cluster_lock.acquire("{i1}:invoice:1", "{i1}:order:2") is None
    assert await cluster_lock.holder("{i1}:order:2") is None, "nothing taken by the failed try"
    assert await cluster_lock.release(lease)
    again = await cluster_lock.acquire("{i1}:invoice:1", "{i1}:order:2")
    assert again is not None and again.token == lease.token + 1, "no token spent on failure"


@pytest.mark.gen_test(timeout=30)
async def test_each_tag_has_its_own_counter_and_tokens_only_grow_per_resource(
        cluster_lock: FencedLock) -> None:
    resources = [f"{{shop-{n}}}:order:{n}" for n in range(12)]
    assert len({hash_tag(r) for r in resources}) == 12  # spread over the cluster's slots
    last = {r: 0 for r in resources}
    for _ in range(3):
        for resource in resources:
            lease = await cluster_lock.acquire(resource)
            assert lease is not None and lease.token > last[resource]
            last[resource] = lease.token
            assert await cluster_lock.release(lease)


@pytest.mark.gen_test(timeout=60)
async def test_contending_tasks_never_overlap_on_a_cluster(cluster_lock: FencedLock) -> None:
    sets = [("{i1}:order:1", "{i1}:invoice:1"), ("{i1}:order:1",),
            ("{i1}:invoice:1", "{i1}:order:2"), ("{i1}:order:2",)]
    holding: dict[str, int] = {}
    tokens: dict[str, list[int]] = {"{i1}:order:1": [], "{i1}:order:2": [], "{i1}:invoice:1": []}
    rng = random.Random(3)

    async def worker() -> None:
        for _ in range(15):
            names = rng.choice(sets)
            lease = await cluster_lock.acquire(*names, timeout=10)
            assert lease is not None
            for name in names:
                assert name not in holding, f"{name} held twice"
                holding[name] = lease.token
                tokens[name].append(lease.token)
            await asyncio.sleep(rng.uniform(0, 0.003))
            for name in names:
                del holding[name]
            assert await cluster_lock.release(lease)

    await asyncio.gather(*(worker() for _ in range(8)))
    for name, seen in tokens.items():
        assert seen == sorted(seen) and len(set(seen)) == len(seen), name


@pytest.mark.gen_test(timeout=30)
async def test_a_waiter_is_woken_by_the_release_on_a_cluster(make_lock: LockFactory) -> None:
    lock = make_lock(ttl_ms=3_000, socket_timeout=30, max_poll=10)  # its own retry: 3 s away
    holder, lease, calls = await wait_for_a_release(lock, "order:9")
    assert lease.token > holder.token
    assert calls == HANDED_OVER_CALLS, (
        f"{calls} calls: the waiter polled instead of being handed the lease")


@pytest.mark.gen_test(timeout=30)
async def test_kleppmanns_paused_holder_is_refused_on_a_cluster(
        cluster_lock: FencedLock) -> None:
    store: dict[str, Any] = {"highest": 0, "value": None}

    def write(token: int, value: str) -> bool:  # a store that keeps the highest token
        if token < store["highest"]:
            return False
        store.update(highest=token, value=value)
        return True

    paused = await cluster_lock.acquire("invoice:7")
    assert paused is not None
    # Its lease runs out while it is paused.
    await cluster_lock.redis.delete(KeySpace.of(cluster_lock.prefix, ("invoice:7",)).lock(
        "invoice:7"))
    current = await cluster_lock.acquire("invoice:7")
    assert current is not None and current.token > paused.token
    assert write(current.token, "B")
    assert not write(paused.token, "A") and store["value"] == "B"
    assert not await cluster_lock.release(paused)
    assert await cluster_lock.holder("invoice:7") == current.token
