"""Both services on a real Redis Cluster (REDIS_CLUSTER=1): the workload and the checker
find what they find on a single Redis."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack import RedisCluster
from devstack.workload import Workload, check, create_orders
from tests.e2e.cluster import Cluster
from tests.stack import call


@pytest.mark.slow
@pytest.mark.gen_test(timeout=120)
async def test_the_services_stay_consistent_on_a_redis_cluster(
        cluster_env: dict[str, str], tmp_path: Path) -> None:
    with RedisCluster() as redis_cluster:
        env = {**cluster_env, "REDIS_URL": redis_cluster.url, "REDIS_CLUSTER": "1"}
        cluster = Cluster.start(tmp_path, env, orders=2, invoices=1)
        try:
            for instance in cluster.orders + cluster.invoices:
                assert (await call("GET", f"{instance.url}/ready")).status == 200
            orders = await create_orders(cluster.orders[0].url, 6)
            workload = Workload(lambda: [o.url for o in cluster.orders], orders, clients=8,
                                max_calls=600, max_seconds=10.0)
            await workload.run()
            assert workload.statuses["PATCH", 200] >= 20, workload.statuses
            assert set(workload.statuses) <= {("PATCH", 200), ("PATCH", 409), ("PATCH", 423),
                                              ("DELETE", 204), ("DELETE", 423)}
            report = await check(workload, cluster.orders[1].url, cluster.invoices[0].url)
            assert (report.disagreeing, report.lost_updates, report.stale_writes) == (
                [], [], [])
        finally:
            cluster.stop()
            await cluster.close_clients()
