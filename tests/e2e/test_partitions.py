"""One orders instance cut off from Redis, from MongoDB or from invoices, while the
rest stay connected, then healed; the load runs throughout.

Every link of orders-0 goes through a fault-injecting TCP proxy (devstack.links),
and one of them is blackholed: connections stay open and nothing gets through,
so only the services' own timeouts end a call (what is held is delivered at the
heal, as TCP's retransmissions would: late writes included). orders-1 keeps its
own routes. Every call answers within its timeouts: 503 or 424 from the cut-off
instance, never a hang, and nothing but the contract's answers from the other.
After the heal, orders-0 serves again, every pair agrees and the checker finds
no lost update and no stale write.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Iterator

import pytest

from devstack.links import Link
from devstack.workload import Workload, check, create_orders, request
from tests.e2e.calls import on, record_calls, started_after, unanswered
from tests.e2e.cluster import Cluster

# Short timeouts keep a cut-off call short; the workload's own timeout (10 s) is
# what "never a hang" is judged against.
FAST = {"LOCK_TTL_MS": "1000", "REPAIR_INTERVAL_MS": "300", "REDIS_TIMEOUT_MS": "500",
        "MONGO_TIMEOUT_MS": "1500", "HTTP_TIMEOUT_MS": "1500"}
CUT_FOR = 3.0


@pytest.fixture
def links(cluster_env: dict[str, str]) -> Iterator[dict[str, Link]]:
    """orders-0's routes to Redis, MongoDB and invoices (the last aimed once it runs)."""
    made = {"redis": Link.toward(cluster_env["REDIS_URL"], name="redis").start(),
            "mongo": Link.toward(cluster_env["MONGO_URL"], name="mongo").start(),
            "invoices": Link(name="invoices").start()}
    yield made
    for link in made.values():
        link.stop()


@pytest.mark.slow
@pytest.mark.gen_test(timeout=90)
@pytest.mark.parametrize("cut", ["redis", "mongo", "invoices"])
async def test_an_instance_cut_off_answers_in_time_and_nothing_goes_wrong(
        cluster_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        links: dict[str, Link], cut: str) -> None:
    through_links = {
        "REDIS_URL": links["redis"].through(cluster_env["REDIS_URL"]),
        "MONGO_URL": links["mongo"].through(cluster_env["MONGO_URL"]),
        "INVOICES_URL": f"http://{links['invoices'].address}"}
    calls = record_calls(monkeypatch)
    cluster = Cluster.start(tmp_path, {**cluster_env, **FAST}, orders=2, invoices=2,
                            orders_env=[through_links, {}])
    links["invoices"].target = (cluster.invoices[0].host, cluster.invoices[0].port)
    cut_off, connected = (instance.url for instance in cluster.orders)
    try:
        orders = await create_orders(cut_off, 6)
        workload = Workload(lambda: [cut_off, connected], orders, clients=6, max_calls=1500,
                            max_seconds=8.0, delete_share=0.02)
        moments: list[float] = []

        async def partition() -> None:
            await asyncio.sleep(2.0)
            links[cut].cut()
            moments.append(time.monotonic())
            await asyncio.sleep(CUT_FOR)
            links[cut].heal()
            moments.append(time.monotonic())

        await asyncio.gather(workload.run(), partition())
        during = started_after(calls, moments[0], before=moments[1])
        print(f"{cut} cut off from orders-0 for {CUT_FOR}s:",
              sorted((c.status, round(c.seconds, 1)) for c in on(during, cut_off)
                     if c.method != "GET")[-5:], "slowest;", dict(workload.statuses))
        assert unanswered(calls) == [], "every call answers in time"
        assert {c.status for c in on(during, cut_off) if c.failed} <= {503}
        assert any(c.status in (503, 424) for c in on(during, cut_off)), "the cut was felt"
        assert [c for c in on(calls, connected) if c.failed] == [], \
            "the instance still connected is not hurt"

        order_ids = [o["id"] for o in orders]
        assert await cluster.settled(order_ids, 1.0 + 0.3 + 8.0) == []
        settled = time.monotonic()
        report = await check(workload, connected, cluster.invoices[1].url)
        assert (report.disagreeing, report.lost_updates, report.stale_writes) == ([], [], [])
        assert await serves_again(cut_off, order_ids[-1]), "orders-0 serves after the heal"
        print(f"settled {settled - moments[1]:.1f}s after the heal, orders-0 served again "
              f"{time.monotonic() - settled:.1f}s later")
    finally:
        cluster.stop()
        await cluster.close_clients()


async def serves_again(orders_url: str, order_id: str) -> bool:
    """A PATCH through every link of the healed instance, retried while a repair holds
    the pair (423) or a client is still finding its server again (503), for up to 10 s."""
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        status, _ = await request("PATCH", f"{orders_url}/orders/{order_id}", {
            "update_time": "2031-01-01T00:00:00Z", "quantity": 7})
        if status == 200:
            return True
        await asyncio.sleep(0.2)
    return False
