"""The MongoDB-wire server (SecantusDB) SIGKILLed under load and started again on the
same data: no acknowledged create, update or delete is lost, and every pair agrees.

The services write with `w=majority, j=true` and the server syncs every commit
(devstack.mongo_server), so what was answered 201, 200 or 204 was on disk before
the answer left. Calls sent while the server is down may answer 503; a write cut
off in the middle is settled by the repairer, as after any failure. The kill
comes at the end of the load, so that no later write can cover up a lost one:
the last acknowledged write of each order is the one the checker looks for.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Callable

import pytest
from tornado.ioloop import IOLoop

from devstack import MongoServer
from devstack.workload import ITEM, USER, Workload, check, create_orders, request
from tests.e2e.calls import record_calls, started_after, unanswered
from tests.e2e.cluster import Cluster

FAST = {"LOCK_TTL_MS": "1000", "REPAIR_INTERVAL_MS": "300", "MONGO_TIMEOUT_MS": "2000",
        "HTTP_TIMEOUT_MS": "1500"}  # a pending create is settled after a lease + this
LOAD_FOR = 5.0


@pytest.mark.slow
@pytest.mark.gen_test(timeout=120)
async def test_mongo_killed_under_load_loses_no_acknowledged_write(
        cluster_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        make_mongo_server: Callable[[], MongoServer]) -> None:
    mongo = make_mongo_server()
    calls = record_calls(monkeypatch)
    cluster = Cluster.start(tmp_path, {**cluster_env, **FAST, "MONGO_URL": mongo.url},
                            orders=2, invoices=2)
    urls = [instance.url for instance in cluster.orders]
    try:
        orders = await create_orders(urls[0], 6)
        workload = Workload(lambda: urls, orders, clients=5, max_calls=1500,
                            max_seconds=LOAD_FOR, delete_share=0.1, deletable=3)
        created: list[dict] = []
        moments: list[float] = []

        async def create_meanwhile() -> None:
            deadline = time.monotonic() + LOAD_FOR
            for i in range(200):
                if time.monotonic() > deadline:
                    return
                status, order = await request("POST", f"{urls[i % 2]}/orders", {
                    "user_id": USER, "item_id": ITEM, "quantity": 2, "value": 1.5})
                if status == 201:
                    created.append(order)
                await asyncio.sleep(0.02)

        async def kill_mongo() -> None:
            await asyncio.sleep(LOAD_FOR - 0.3)
            moments.append(time.monotonic())
            mongo.kill()
            await asyncio.sleep(0.5)
            await IOLoop.current().run_in_executor(None, mongo.start)  # the same data dir
            moments.append(time.monotonic())

        await asyncio.gather(workload.run(), create_meanwhile(), kill_mongo())
        during = started_after(calls, moments[0], before=moments[1])
        cut_off = [c for c in calls if c.method != "GET" and
                   c.started < moments[0] < c.started + c.seconds]
        print(len(created), "creates acknowledged;", len(cut_off), "writes in flight at the "
              "kill, answered", sorted(str(c.status) for c in cut_off), ";",
              sum(c.status == 503 for c in during), "of", len(during),
              "calls 503 while SecantusDB was down;", dict(workload.statuses))
        # pymongo waits up to MONGO_TIMEOUT_MS for a server to come back, so the calls
        # of a short outage may all succeed: what shows the kill hit the load is the
        # writes it caught in the middle.
        assert cut_off, "writes were in flight when SecantusDB was killed"
        assert unanswered(calls) == [], "every call answers in time"
        assert len([o for o in created if o["id"]]) >= 5
        assert workload.deletes_acknowledged, "a delete was acknowledged"

        ids = [o["id"] for o in orders + created]
        assert await cluster.settled(ids, 1.0 + 0.3 + 8.0) == []
        report = await check(workload, urls[1], cluster.invoices[0].url)
        assert (report.disagreeing, report.lost_updates, report.stale_writes) == ([], [], [])
        for order in created:  # every acknowledged create is there, with its invoice
            status, stored = await request("GET", f"{urls[0]}/orders/{order['id']}")
            assert (status, stored["invoice_id"], stored["total"]) == (
                200, order["invoice_id"], order["total"])
            status, _ = await request("GET", f"{cluster.invoices[1].url}/invoices/"
                                      f"{order['invoice_id']}")
            assert status == 200
    finally:
        cluster.stop()
        await cluster.close_clients()
