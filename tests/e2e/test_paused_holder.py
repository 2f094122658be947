"""A lease holder frozen (SIGSTOP) inside its critical section, past its lease.

Timeline, with LOCK_TTL_MS=1000::

    A (orders-0)  lease t1 ── writes ──[SIGSTOP ......................]── SIGCONT: late write
    B (orders-1)                 lease expired │ lease t2 > t1, writes, 200
    stores                                     fence = t2       → A's write with t1 refused

The fault hook stops orders-0 at a named point of the update flow (test mode
only). Whatever A does when it wakes, the order and its invoice end as B left
them, and A's call does not report success.

A creator frozen the same way, before it activates its order, past its lease
and the pending grace: another instance's repairer claims the pending order
and rolls it back; the creator wakes, its activation is refused, and it
answers 424 with neither order nor invoice left as created. It wakes either
after the rollback, or in its middle: the repairer stopped too, just after
its claim, before it deletes the invoice.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator

import pytest
import redis.asyncio as aredis
from tornado.ioloop import IOLoop

from devstack import ServiceProcess
from tests.e2e.cluster import Cluster, wait_until
from tests.stack import ITEM, call

A_TIME, B_TIME = "2030-01-01T00:00:00Z", "2030-01-01T00:00:01Z"


@pytest.fixture(params=["after_lock", "after_intent", "after_invoice_write",
                        "before_order_commit"])
def cluster(request: pytest.FixtureRequest, cluster_env: dict[str, str], tmp_path: Path,
            io_loop: IOLoop) -> Iterator[Cluster]:
    env = {**cluster_env, "LOCK_TTL_MS": "1000"}
    fault = {"DLOCK_TEST_MODE": "1", "DLOCK_FAULTS": f"{request.param}=stop"}
    yield from serving(Cluster.start(tmp_path, env, orders=2, invoices=2,
                                     orders_env=[fault, {}]), io_loop)


def serving(running: Cluster, io_loop: IOLoop) -> Iterator[Cluster]:
    """A fixture's cluster: yielded, then stopped with its clients closed."""
    yield running
    running.stop()
    io_loop.run_sync(running.close_clients)


@pytest.mark.slow
@pytest.mark.gen_test(timeout=60)
async def test_a_holder_stopped_past_its_lease_cannot_overwrite_the_next_holder(
        cluster: Cluster, cluster_env: dict[str, str]) -> None:
    order = await cluster.create_order(instance=1, quantity=1, value="10")
    a, b = cluster.orders
    url_a, url_b = (f"{instance.url}/orders/{order['id']}" for instance in (a, b))

    late = asyncio.ensure_future(call("PATCH", url_a, {"update_time": A_TIME, "quantity": 2},
                                      timeout=40))
    await wait_until(lambda: a.frozen, 10, "orders-0 stops inside its critical section")
    redis = aredis.Redis.from_url(cluster_env["REDIS_URL"])
    try:
        lock_keys = f"{cluster_env['LOCK_PREFIX']}:*:lock:*"
        while [key async for key in redis.scan_iter(lock_keys)]:
            await asyncio.sleep(0.05)  # A's lease runs out while A is frozen
    finally:
        await redis.aclose()

    current = await call("PATCH", url_b, {"update_time": B_TIME, "quantity": 3})
    assert current.status == 200, current.body
    a.resume()
    late_reply = await late
    # Wherever A was stopped, its next fenced write (the intent, the invoice or the
    # order) meets B's higher token, and nothing of A's change lasts: 423 when the
    # order refused it; 409 when the invoice refused it (stale_token), A leased again
    # above B and found its update_time older than B's.
    assert (late_reply.status, late_reply.error) in ((423, "locked"), (409, "event_outdated"))

    assert await cluster.disagreements([order["id"]]) == []
    final = (await call("GET", url_b)).json
    assert final == current.json
    invoice = (await call("GET", f"{cluster.invoices[0].url}/invoices/{order['invoice_id']}"))
    assert invoice.json["total"] == Decimal(30)
    db = cluster.db()
    stored_order = await db["orders"].find_one({"_id": order["id"]})
    stored_invoice = await db["invoices"].find_one({"_id": order["invoice_id"]})
    assert stored_order["fence"] == stored_invoice["fence"]
    assert a.running and (await call("GET", f"{a.url}/health")).status == 200


@pytest.fixture(params=["repairer_runs", "repairer_stops_after_its_claim"])
def creating(request: pytest.FixtureRequest, cluster_env: dict[str, str], tmp_path: Path,
             io_loop: IOLoop) -> Iterator[Cluster]:
    """orders-0 stops before it activates a new order; orders-1 repairs every 200 ms."""
    env = {**cluster_env, "LOCK_TTL_MS": "1000", "HTTP_TIMEOUT_MS": "1000",
           "REPAIR_INTERVAL_MS": "200"}
    creator = {"DLOCK_TEST_MODE": "1", "DLOCK_FAULTS": "before_activate=stop"}
    repairer = ({"DLOCK_TEST_MODE": "1", "DLOCK_FAULTS": "after_claim=stop"}
                if request.param == "repairer_stops_after_its_claim" else {})
    yield from serving(Cluster.start(tmp_path, env, orders=2, invoices=2,
                                     orders_env=[creator, repairer]), io_loop)


@pytest.mark.slow
@pytest.mark.gen_test(timeout=60)
async def test_a_creator_stopped_past_its_lease_is_rolled_back_and_answers_424(
        creating: Cluster) -> None:
    a, b = creating.orders
    user = str(uuid.uuid4())
    late = asyncio.ensure_future(call("POST", f"{a.url}/orders", {
        "user_id": user, "item_id": ITEM, "quantity": 1, "value": Decimal("10")}, timeout=40))
    await wait_until(lambda: a.frozen, 10, "orders-0 stops before it activates its order")
    orders = creating.db()["orders"]
    pending = await orders.find_one({"user_id": user})
    assert pending is not None and pending["status"] == "pending"
    repairer_stops = "after_claim" in b.env.get("DLOCK_FAULTS", "")
    if repairer_stops:
        await wait_until(lambda: b.frozen, 20, "orders-1 stops after claiming the order")
    else:
        await wait_until_gone(orders, pending["_id"], "orders-1 rolls the creation back")

    a.resume()
    late_reply = await late
    assert (late_reply.status, late_reply.error) == (424, "invoice_failed"), late_reply.body
    if repairer_stops:
        b.resume()  # each pass stops again after its claim: let it go on each time
        await wait_until_gone(orders, pending["_id"], "orders-1 finishes the rollback",
                              resume=b)
    assert (await call("GET", f"{b.url}/orders/{pending['_id']}")).status == 404
    invoice = await call("GET", f"{creating.invoices[1].url}/invoices/{pending['invoice_id']}")
    assert invoice.json["status"] == "deleted"
    assert await orders.find_one({"_id": pending["_id"]}) is None
    assert a.running and (await call("GET", f"{a.url}/health")).status == 200


async def wait_until_gone(orders: Any, order_id: str, what: str,
                          resume: ServiceProcess | None = None) -> None:
    deadline = time.monotonic() + 20
    while await orders.find_one({"_id": order_id}) is not None:
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        if resume is not None and resume.frozen:
            resume.resume()
        await asyncio.sleep(0.05)
