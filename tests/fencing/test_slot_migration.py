"""A lock's hash slot migrates to another master while contenders take and hand over
the lock: every script declares its keys, so Redis answers ASK or TRYAGAIN before a
script runs, never half-way through it, and the lock stays one lock.

On a cluster of its own (the session's cluster stays as it was). Budget: about 10 s.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Iterator

import pytest
import redis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.crc import key_slot

from devstack import RedisCluster
from fencing import FencedLock, LockUnavailable
from fencing.keys import KeySpace

TAG = "moving"
RESOURCE = f"{{{TAG}}}:doc"


@pytest.fixture
def cluster() -> Iterator[RedisCluster]:
    with RedisCluster() as own:
        yield own


def node_clients(cluster: RedisCluster) -> list[redis.Redis]:
    return [redis.Redis(host=node.host, port=node.port, socket_timeout=5)
            for node in cluster.nodes]


def migrate(cluster: RedisCluster, slot: int, pause: float) -> int:
    """Moves `slot` to another master one key at a time, `pause` seconds apart, as
    redis-cli --cluster reshard does; returns how many keys it moved."""
    clients = node_clients(cluster)
    try:
        ids = [client.execute_command("CLUSTER MYID") for client in clients]
        ids = [i.decode() if isinstance(i, bytes) else i for i in ids]
        owner = next(n for n, client in enumerate(clients)
                     if client.execute_command("CLUSTER COUNTKEYSINSLOT", slot) > 0)
        source, target = clients[owner], clients[(owner + 1) % len(clients)]
        target_node = cluster.nodes[(owner + 1) % len(clients)]
        target_id = ids[(owner + 1) % len(clients)]
        target.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", ids[owner])
        source.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", target_id)
        moved = 0
        while keys := source.execute_command("CLUSTER GETKEYSINSLOT", slot, 1):
            source.execute_command("MIGRATE", target_node.host, target_node.port, "", 0, 5000,
                                   "KEYS", *keys)
            moved += 1
            time.sleep(pause)
        for client in clients:
            client.execute_command("CLUSTER SETSLOT", slot, "NODE", target_id)
        return moved
    finally:
        for client in clients:
            client.close()


def redirections(cluster: RedisCluster) -> int:
    """How many ASK and TRYAGAIN answers the masters gave (INFO errorstats)."""
    total = 0
    for client in node_clients(cluster):
        stats: dict[str, Any] = client.info("errorstats")
        total += sum(int(stats.get(f"errorstat_{kind}", {}).get("count", 0))
                     for kind in ("ASK", "TRYAGAIN"))
        client.close()
    return total


@pytest.mark.gen_test(timeout=90)
async def test_a_lock_keeps_one_holder_while_its_slot_migrates(
        cluster: RedisCluster, unique_name: str) -> None:
    # A client per contender, as separate processes would have: redis-py's async cluster
    # client rediscovers the cluster after a MOVED and, meanwhile, breaks the connections
    # of other calls in flight on the same client (cf. redis-py issue #3935).
    clients = [AsyncRedisCluster.from_url(cluster.url, socket_timeout=2) for _ in range(7)]
    locks = [FencedLock(client, ttl_ms=2_000, prefix=unique_name, max_poll=0.1)
             for client in clients]
    space = KeySpace.of(unique_name, (RESOURCE,))
    slot = key_slot(space.seq.encode())
    holding: list[int] = []
    tokens: list[int] = []
    migrating = True

    async def contender(lock: FencedLock) -> None:
        while migrating:
            try:
                lease = await lock.acquire(RESOURCE, timeout=5)
            except LockUnavailable:  # a retry budget spent on TRYAGAIN: try again
                continue
            if lease is None:
                continue
            assert not holding, f"two holders: {holding} and {lease.token}"
            holding.append(lease.token)
            tokens.append(lease.token)
            await asyncio.sleep(0.002)
            holding.remove(lease.token)
            try:
                await lock.release(lease)
            except LockUnavailable:
                pass  # its ttl ends it; the next holder's token is higher all the same

    lock = locks[0]
    tasks: list[asyncio.Task[None]] = []
    try:
        for each in locks:  # every client knows the cluster before the migration starts
            first = await each.acquire(RESOURCE)
            assert first is not None and await each.release(first)
        # Keys of the slot besides the lock's, so that moving it takes a while (2 s).
        await clients[0].mset({f"{{{TAG}}}:filler:{n}": "x" for n in range(40)})
        before = redirections(cluster)
        tasks = [asyncio.create_task(contender(other)) for other in locks[1:]]
        moved = await asyncio.get_running_loop().run_in_executor(
            None, migrate, cluster, slot, 0.05)
        await asyncio.sleep(0.3)  # a while on the new master
        migrating = False
        await asyncio.gather(*tasks)
        assert moved > 0
        assert redirections(cluster) > before, "the contenders never met the migration"
        assert len(tokens) > 10 and tokens == sorted(set(tokens))
        # Nothing half-done: the lock is free, nobody in line, and it works on its new node.
        assert await lock.holder(RESOURCE) is None
        assert await clients[0].exists(space.queue(RESOURCE)) == 0
        last = await lock.acquire(RESOURCE)
        assert last is not None and last.token > tokens[-1]
        assert await lock.release(last)
    finally:
        migrating = False
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for lock, client in zip(locks, clients):
            await lock.close()
            await client.aclose()
