"""Both services behind Redis Sentinel, through a failover to a replica that missed writes.

The promoted replica's token counter is behind what the old master issued, and
the leases held there are gone. The services must go on by themselves (the
order's own highest token is the floor of its next lease; a 409 stale_token
from the invoice raises it), no store may accept a token below one it already
accepted, and the checker must find every order and its invoice agreeing.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from devstack.redis_sentinel import RedisSentinelGroup
from devstack.workload import Workload, check, create_orders
from tests.e2e.cluster import Cluster


async def fences(cluster: Cluster) -> dict[str, int]:
    """The highest token each order and invoice document has accepted."""
    db = cluster.db()
    found = {}
    for collection in ("orders", "invoices"):
        async for doc in db[collection].find({}, {"fence": 1}):
            found[f"{collection}/{doc['_id']}"] = int(doc.get("fence", 0))
    return found


@pytest.mark.slow
@pytest.mark.gen_test(timeout=150)
async def test_the_services_heal_and_stay_consistent_through_a_sentinel_failover(
        cluster_env: dict[str, str], tmp_path: Path) -> None:
    with RedisSentinelGroup() as group:
        env = {**cluster_env, "REDIS_SENTINELS": group.sentinels_setting,
               "REDIS_SENTINEL_MASTER": group.master_name,
               "REDIS_URL": "redis://127.0.0.1:6379/0",  # only its database is used
               "REDIS_TIMEOUT_MS": "1000", "REPAIR_INTERVAL_MS": "500"}
        cluster = Cluster.start(tmp_path, env, orders=2, invoices=1)
        try:
            orders = await create_orders(cluster.orders[0].url, 6)
            workload = Workload(lambda: [o.url for o in cluster.orders], orders, clients=8,
                                max_calls=20_000, max_seconds=14.0)
            running = asyncio.ensure_future(workload.run())
            loop = asyncio.get_running_loop()
            await asyncio.sleep(2.0)
            await loop.run_in_executor(None, group.lag_replicas)
            await asyncio.sleep(1.0)  # leases and tokens the replica will never see
            before = await fences(cluster)
            acknowledged_before = workload.statuses["PATCH", 200]
            seconds = await loop.run_in_executor(None, group.fail_over)
            await running

            assert workload.statuses["PATCH", 200] - acknowledged_before >= 20, (
                f"updates did not resume after the failover ({seconds:.1f}s): "
                f"{workload.statuses}")
            assert set(workload.statuses) <= {
                ("PATCH", 200), ("PATCH", 409), ("PATCH", 423), ("PATCH", 424),
                ("PATCH", 503), ("DELETE", 204), ("DELETE", 423), ("DELETE", 424),
                ("DELETE", 503)}, workload.statuses
            assert await cluster.settled([o["id"] for o in orders], timeout=15) == []
            after = await fences(cluster)
            lowered = {doc: (before[doc], after[doc]) for doc in before
                       if after[doc] < before[doc]}
            assert lowered == {}, "a store accepted a lower token"
            report = await check(workload, cluster.orders[1].url, cluster.invoices[0].url)
            assert (report.disagreeing, report.lost_updates, report.stale_writes) == (
                [], [], [])
            print(f"failover {seconds:.1f}s; {workload.statuses}; acknowledged "
                  f"{acknowledged_before} before, {report.acknowledged} in all")
        finally:
            cluster.stop()
            await cluster.close_clients()
