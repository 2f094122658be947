"""Faults while the load runs: orders instances killed at random moments, and Redis
restarted with its data gone. Writes resume by themselves, and once a lease time
and a repair interval have passed the independent checker finds nothing wrong.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Callable

import pytest
from tornado.ioloop import IOLoop

from devstack import RedisServer, injectors
from devstack.workload import Workload, check, create_orders, request
from tests.e2e.cluster import Cluster

FAST = {"LOCK_TTL_MS": "1000", "REPAIR_INTERVAL_MS": "300", "REDIS_TIMEOUT_MS": "500"}


def up(cluster: Cluster) -> list[str]:
    return [instance.url for instance in cluster.orders if instance.running]


@pytest.mark.slow
@pytest.mark.gen_test(timeout=120)
async def test_orders_instances_killed_at_random_moments_under_load(
        cluster_env: dict[str, str], tmp_path: Path) -> None:
    cluster = Cluster.start(tmp_path, {**cluster_env, **FAST}, orders=3, invoices=2)
    try:
        orders = await create_orders(cluster.orders[0].url, 8)
        workload = Workload(lambda: up(cluster), orders, clients=8, max_calls=1200,
                            max_seconds=15.0, delete_share=0.02)
        rng = random.Random(11)
        kills = 0

        async def killer() -> None:
            nonlocal kills
            for _ in range(4):
                await asyncio.sleep(rng.uniform(0.5, 1.5))
                victim = rng.choice(cluster.orders[1:])  # orders-0 stays up for the checker
                kills += 1
                await injectors.kill_and_restart(victim)

        await asyncio.gather(workload.run(), killer())
        print(kills, "kills;", dict(workload.statuses))
        assert kills == 4 and workload.statuses["PATCH", 200] >= 20
        assert await cluster.settled([o["id"] for o in orders], 1.0 + 0.3 + 8.0) == []
        report = await check(workload, cluster.orders[0].url, cluster.invoices[0].url)
        assert (report.disagreeing, report.lost_updates, report.stale_writes) == ([], [], [])
    finally:
        cluster.stop()
        await cluster.close_clients()


@pytest.mark.slow
@pytest.mark.gen_test(timeout=120)
async def test_redis_restarted_empty_under_load_heals_by_itself(
        cluster_env: dict[str, str], tmp_path: Path,
        make_redis_server: Callable[[], RedisServer]) -> None:
    redis = make_redis_server()
    env = {**cluster_env, **FAST, "REDIS_URL": redis.url}
    cluster = Cluster.start(tmp_path, env, orders=2, invoices=2)
    try:
        orders = await create_orders(cluster.orders[0].url, 6)
        for order in orders:  # run the counter up, so that a fresh Redis starts below it
            for quantity in range(2, 6):
                status, _ = await request("PATCH", f"{cluster.orders[0].url}/orders/"
                                          f"{order['id']}", {"update_time":
                                                             "2029-01-01T00:00:00Z",
                                                             "quantity": quantity})
                assert status == 200
        workload = Workload(lambda: up(cluster), orders, clients=6, max_calls=2000,
                            max_seconds=10.0, delete_share=0.0)
        healed_after: list[float] = []

        async def restart_redis() -> None:
            loop = IOLoop.current()
            await asyncio.sleep(2.0)
            redis.kill()
            await asyncio.sleep(0.5)
            await loop.run_in_executor(None, redis.start)  # empty: no persistence
            restarted = time.monotonic()
            before = workload.statuses["PATCH", 200]
            while workload.statuses["PATCH", 200] == before:
                assert time.monotonic() - restarted < 8, "writes did not resume"
                await asyncio.sleep(0.01)
            healed_after.append(time.monotonic() - restarted)

        await asyncio.gather(workload.run(), restart_redis())
        print(f"first acknowledged write {healed_after[0]:.2f}s after Redis came back empty;",
              dict(workload.statuses))
        assert workload.statuses["PATCH", 503] > 0, "Redis was down: some calls saw 503"
        assert await cluster.settled([o["id"] for o in orders], 1.0 + 0.3 + 8.0) == []
        report = await check(workload, cluster.orders[0].url, cluster.invoices[0].url)
        assert (report.disagreeing, report.lost_updates, report.stale_writes) == ([], [], [])
    finally:
        cluster.stop()
        await cluster.close_clients()
