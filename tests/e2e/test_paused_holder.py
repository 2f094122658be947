"""A lease holder frozen (SIGSTOP) inside its critical section, past its lease.

Timeline, with LOCK_TTL_MS=1000::

    A (orders-0)  lease t1 ── writes ──[SIGSTOP ......................]── SIGCONT: late write
    B (orders-1)                 lease expired │ lease t2 > t1, writes, 200
    stores                                     fence = t2       → A's write with t1 refused

The fault hook stops orders-0 at a named point of the update flow (test mode
only). Whatever A does when it wakes, the order and its invoice end as B left
them, and A's call does not report success.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path
from typing import Iterator

import pytest
import redis.asyncio as aredis
from tornado.ioloop import IOLoop

from tests.e2e.cluster import Cluster
from tests.stack import call

A_TIME, B_TIME = "2030-01-01T00:00:00Z", "2030-01-01T00:00:01Z"


@pytest.fixture(params=["after_lock", "after_intent", "after_invoice_write",
                        "before_order_commit"])
def cluster(request: pytest.FixtureRequest, cluster_env: dict[str, str], tmp_path: Path,
            io_loop: IOLoop) -> Iterator[Cluster]:
    env = {**cluster_env, "LOCK_TTL_MS": "1000"}
    fault = {"DLOCK_TEST_MODE": "1", "DLOCK_FAULTS": f"{request.param}=stop"}
    running = Cluster.start(tmp_path, env, orders=2, invoices=2, orders_env=[fault, {}])
    yield running
    running.stop()
    io_loop.run_sync(running.close_clients)


async def wait_until(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.05)


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
