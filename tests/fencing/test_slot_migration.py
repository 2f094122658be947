"""A lock's hash slot migrates to another master while contenders take and hand over
the lock: every script declares its keys, so Redis answers ASK or TRYAGAIN before a
script runs, never half-way through it, and the lock stays one lock.

On a cluster of its own (the session's cluster stays as it was). Budget: about 10 s.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator

import pytest
import redis
import redis.cluster
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.crc import key_slot

from devstack import RedisCluster
from fencing import FencedLock, LockUnavailable, scripts
from fencing.keys import KeySpace, LeaseKeys
from fencing.sync import FencedLock as SyncFencedLock

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


def contend(lock: SyncFencedLock, seen: Seen, until: threading.Event) -> None:
    """Take the lock again and again until `until` is set (one thread, its own client)."""
    while not until.is_set():
        try:
            lease = lock.acquire(RESOURCE, timeout=5)
        except LockUnavailable:  # a retry budget spent on TRYAGAIN: try again
            continue
        if lease is None:
            continue
        with seen.guard:
            assert not seen.holding, f"two holders: {seen.holding} and {lease.token}"
            seen.holding.append(lease.token)
            seen.tokens.append(lease.token)
        time.sleep(0.002)
        with seen.guard:
            seen.holding.remove(lease.token)
        try:
            lock.release(lease)
        except LockUnavailable:
            pass  # its ttl ends it; the next holder's token is higher all the same


class Seen:
    """What the contenders saw: who holds the lock now, and every token in order."""

    def __init__(self) -> None:
        self.guard = threading.Lock()
        self.holding: list[int] = []
        self.tokens: list[int] = []


@pytest.mark.gen_test(timeout=90)
async def test_a_lock_keeps_one_holder_while_its_slot_migrates(
        cluster: RedisCluster, unique_name: str) -> None:
    # Contenders are threads with the sync lock, each on a client of its own, as
    # separate processes would be.
    clients = [redis.cluster.RedisCluster.from_url(cluster.url, socket_timeout=2)
               for _ in range(6)]
    locks = [SyncFencedLock(client, ttl_ms=2_000, prefix=unique_name, max_poll=0.1)
             for client in clients]
    inspect = AsyncRedisCluster.from_url(cluster.url, socket_timeout=2)
    lock = FencedLock(inspect, ttl_ms=2_000, prefix=unique_name, max_poll=0.1)
    space = KeySpace.of(unique_name, (RESOURCE,))
    slot = key_slot(space.seq.encode())
    seen = Seen()
    stop = threading.Event()
    loop = asyncio.get_running_loop()
    pool = ThreadPoolExecutor(max_workers=len(locks) + 1)  # the contenders and the move
    threads: list[asyncio.Future[None]] = []
    try:
        for each in locks:  # every client knows the cluster before the migration starts
            first = each.acquire(RESOURCE)
            assert first is not None and each.release(first)
        # Keys of the slot besides the lock's, so that moving it takes a while (2 s).
        await inspect.mset({f"{{{TAG}}}:filler:{n}": "x" for n in range(40)})
        before = redirections(cluster)
        threads = [loop.run_in_executor(pool, contend, each, seen, stop) for each in locks]
        moved = await loop.run_in_executor(pool, migrate, cluster, slot, 0.05)
        await asyncio.sleep(0.3)  # a while on the new master
        stop.set()
        await asyncio.gather(*threads)
        assert moved > 0
        assert redirections(cluster) > before, "the contenders never met the migration"
        tokens = seen.tokens
        assert len(tokens) > 10 and tokens == sorted(set(tokens))
        # Nothing half-done: the lock is free, nobody in line, and it works on its new node.
        assert await lock.holder(RESOURCE) is None
        assert await inspect.exists(space.queue(RESOURCE)) == 0
        last = await lock.acquire(RESOURCE)
        assert last is not None and last.token > tokens[-1]
        assert await lock.release(last)
    finally:
        stop.set()
        await asyncio.gather(*threads, return_exceptions=True)
        pool.shutdown()
        await lock.close()
        await inspect.aclose()
        for client in clients:
            client.close()


def test_a_hand_off_on_a_migrating_slot_runs_whole(
        cluster: RedisCluster, unique_name: str) -> None:
    """The slot is MIGRATING and every key the release declares is still on its source:
    Redis runs the script there, checking each command inside. A script that deleted the
    lock and then looked at it again (the scheme before did) stopped there, the lock
    deleted and never handed on; this one overwrites it for the waiter instead."""
    client = redis.cluster.RedisCluster.from_url(cluster.url, socket_timeout=2)
    lock = SyncFencedLock(client, ttl_ms=5_000, prefix=unique_name)
    keys = LeaseKeys.of(unique_name, (RESOURCE,), cluster=True)
    slot = key_slot(keys.space.seq.encode())
    nodes = node_clients(cluster)
    ids = [node.execute_command("CLUSTER MYID") for node in nodes]
    ids = [i.decode() if isinstance(i, bytes) else i for i in ids]
    try:
        holder = lock.acquire(RESOURCE)
        assert holder is not None
        join = client.register_script(scripts.ACQUIRE)
        waiting = join(keys=keys.with_wake("w"), args=[5_000, 0, "w", 5_000, *keys.layout])
        assert scripts.acquired_token(waiting) is None  # "w" is in line
        owner = next(n for n, node in enumerate(nodes)
                     if node.execute_command("CLUSTER COUNTKEYSINSLOT", slot) > 0)
        target = (owner + 1) % len(nodes)
        nodes[target].execute_command("CLUSTER SETSLOT", slot, "IMPORTING", ids[owner])
        nodes[owner].execute_command("CLUSTER SETSLOT", slot, "MIGRATING", ids[target])

        assert lock.release(holder)  # runs on the source, whole
        granted = nodes[owner].get(keys.locks[0])
        assert granted is not None and granted.endswith(b":w"), granted
    finally:
        for node in nodes:
            node.execute_command("CLUSTER SETSLOT", slot, "STABLE")
            node.close()
        client.close()
