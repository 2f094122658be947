"""Two orders and two invoices instances, as processes, hammered on the same orders.

Eight clients send updates and a few deletes (of two orders of six), each to
a random instance, for a bounded number of calls and a bounded time
(`devstack.workload`). Afterwards the independent checker finds every order
agreeing with its invoice and equal to its last acknowledged update, and saw no
order go back in time while the load ran.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from tornado.ioloop import IOLoop

from devstack.workload import Workload, check, create_orders
from tests.e2e.cluster import Cluster


@pytest.fixture
def cluster(cluster_env: dict[str, str], tmp_path: Path, io_loop: IOLoop) -> Iterator[Cluster]:
    running = Cluster.start(tmp_path, cluster_env, orders=2, invoices=2)
    yield running
    running.stop()
    io_loop.run_sync(running.close_clients)


@pytest.mark.slow
@pytest.mark.gen_test(timeout=90)
async def test_concurrent_updates_on_many_instances_leave_orders_and_invoices_agreeing(
        cluster: Cluster) -> None:
    orders = await create_orders(cluster.orders[0].url, 6)
    workload = Workload(lambda: [instance.url for instance in cluster.orders], orders,
                        clients=8, max_calls=1500, max_seconds=12.0)
    await workload.run()
    print(dict(workload.statuses))

    allowed = {("PATCH", 200), ("PATCH", 409), ("PATCH", 423), ("DELETE", 204),
               ("DELETE", 423)}
    assert set(workload.statuses) <= allowed, workload.statuses
    assert workload.statuses["PATCH", 200] >= 20, "too little got through to prove anything"
    report = await check(workload, cluster.orders[1].url, cluster.invoices[0].url)
    assert (report.disagreeing, report.lost_updates, report.stale_writes) == ([], [], [])
    assert await cluster.open_intents() == 0
