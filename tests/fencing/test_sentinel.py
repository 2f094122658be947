"""The lock behind Redis Sentinel, through a failover to a replica that missed writes.

Replication is asynchronous: the promoted replica's token counter can be behind
what the old master handed out, and keys held there can be missing. For a
moment the lock then issues tokens it issued before and may grant a held
resource again. The fencing tokens are what keep the stores safe through it: a
store keeps the highest token it accepted and refuses lower ones; the refused
holder acquires again with `floor=` the store's token and goes on.
"""

from __future__ import annotations

import asyncio
import collections
import random
import time
from typing import Iterator

import pytest
from tornado.ioloop import IOLoop

from devstack.redis_sentinel import RedisSentinelGroup
from fencing import FencedLock, LockError
from servicekit.clients import close_redis, make_redis
from servicekit.settings import load_settings


@pytest.fixture
def group() -> Iterator[RedisSentinelGroup]:
    with RedisSentinelGroup() as running:
        yield running


@pytest.fixture
def sentinel_lock(io_loop: IOLoop, group: RedisSentinelGroup,
                  unique_name: str) -> Iterator[FencedLock]:
    """The client the services make from REDIS_SENTINELS (redis-py's Sentinel.master_for)."""
    client = make_redis(load_settings(environ={
        "REDIS_SENTINELS": group.sentinels_setting, "REDIS_SENTINEL_MASTER": group.master_name,
        "REDIS_TIMEOUT_MS": "1000"}))
    lock = FencedLock(client, ttl_ms=3_000, prefix=unique_name)
    yield lock
    io_loop.run_sync(lock.close)
    io_loop.run_sync(lambda: close_redis(client))


class Store:
    """Keeps, per resource, the highest token it accepted; refuses any token not above."""

    def __init__(self) -> None:
        self.accepted: dict[str, list[tuple[float, int]]] = collections.defaultdict(list)
        self.refused = 0

    def write(self, resource: str, token: int) -> int | None:
        """None if accepted, else the token the store holds."""
        log = self.accepted[resource]
        if log and token <= log[-1][1]:
            self.refused += 1
            return log[-1][1]
        log.append((time.monotonic(), token))
        return None


@pytest.mark.slow
@pytest.mark.gen_test(timeout=90)
async def test_a_failover_to_a_lagging_replica_rolls_tokens_back_and_the_floor_heals_it(
        group: RedisSentinelGroup, sentinel_lock: FencedLock) -> None:
    resources = [f"order:{n}" for n in range(4)]
    store, floors = Store(), {r: 0 for r in resources}
    issued: list[tuple[float, int]] = []
    errors = 0
    deadline = time.monotonic() + 45

    def healed() -> bool:
        killed_at = group.killed_at or float("inf")
        return all(sum(1 for at, _ in store.accepted[r] if at > killed_at) >= 3
                   for r in resources)

    async def worker(seed: int) -> None:
        nonlocal errors
        rng = random.Random(seed)
        while time.monotonic() < deadline and not healed():
            resource = rng.choice(resources)
            try:
                lease = await sentinel_lock.acquire(resource, timeout=1.0,
                                                    floor=floors[resource])
            except LockError:  # the master is gone and not yet replaced
                errors += 1
                await asyncio.sleep(0.05)
                continue
            if lease is None:
                continue
            issued.append((time.monotonic(), lease.token))
            current = store.write(resource, lease.token)
            if current is not None:
                floors[resource] = max(floors[resource], current)
            try:
                await sentinel_lock.release(lease)
            except LockError:
                pass

    workers = [asyncio.ensure_future(worker(seed)) for seed in range(6)]
    loop = asyncio.get_running_loop()
    await asyncio.sleep(0.5)
    await loop.run_in_executor(None, group.lag_replicas)
    await asyncio.sleep(0.5)  # writes the replica will never see
    seconds = await loop.run_in_executor(None, group.fail_over)
    await asyncio.gather(*workers)
    assert group.killed_at is not None
    failed_over_at = group.killed_at
    highest_before = max(token for at, token in issued if at < failed_over_at)

    after = [token for at, token in issued if at > failed_over_at]
    assert after and min(after) <= highest_before, (
        "the promoted replica should have missed tokens; the scenario did not happen")
    assert store.refused > 0, "tokens issued again must have been refused by the store"
    assert healed(), (f"not every resource had 3 accepted writes after the failover "
                      f"({seconds:.1f}s); floors {floors}, errors {errors}")
    for resource, log in store.accepted.items():
        tokens = [token for _, token in log]
        assert tokens == sorted(set(tokens)), f"{resource}: accepted tokens not increasing"
