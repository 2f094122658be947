"""Processes killed (SIGKILL) in the middle of a change: nothing stays apart.

Each case kills orders-0 at one named step of a create, an update or a delete
(a test-only fault hook), starts it again, and waits a lease time plus a
repair interval (for a create, the pending grace too). Then the order and its
invoice agree, no intent or pending order is left, and the state is the one
the rules say: an update cut off before its commit rolls back, one cut off
after it stands; a delete, once its intent is recorded, is completed; a create
cut off before its order is activated leaves no order and a deleted invoice.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path
from typing import Iterator

import pytest
from tornado.httpclient import HTTPClientError
from tornado.ioloop import IOLoop

from tests.e2e.cluster import Cluster
from tests.stack import ITEM, call

FAST = {"LOCK_TTL_MS": "1000", "REPAIR_INTERVAL_MS": "300"}
SETTLE_WITHIN = 1.0 + 0.3 + 8.0  # lease + repair interval + room for a slow machine

# point -> whether the change stands afterwards, for (update, delete)
OUTCOME = {
    "after_lock": (False, False),          # nothing recorded yet: nothing happened
    "after_intent": (False, True),         # recorded: update rolls back, delete completes
    "after_invoice_write": (False, True),
    "before_order_commit": (False, True),
    "before_release": (True, True),        # committed: it stands
}


# point -> whether the order stands afterwards
CREATE_OUTCOME = {
    "after_invoice_create": False,         # the invoice exists, the order is pending
    "before_activate": False,
    "before_release": True,                # activated: it stands
}
# The pending grace is a lease time plus an HTTP timeout.
CREATE_FAST = {**FAST, "HTTP_TIMEOUT_MS": "2000"}


def start_with_orders_0_crashing(point: str, cluster_env: dict[str, str], tmp_path: Path,
                                 fast: dict[str, str]) -> Cluster:
    crash = {"DLOCK_TEST_MODE": "1", "DLOCK_FAULTS": f"{point}=crash"}
    return Cluster.start(tmp_path, {**cluster_env, **fast}, orders=2, invoices=1,
                         orders_env=[crash, {}])


@pytest.fixture(params=list(OUTCOME))
def crashing(request: pytest.FixtureRequest, cluster_env: dict[str, str], tmp_path: Path,
             io_loop: IOLoop) -> Iterator[tuple[Cluster, str]]:
    yield from serving(start_with_orders_0_crashing(request.param, cluster_env, tmp_path,
                                                    FAST), request.param, io_loop)


@pytest.fixture(params=list(CREATE_OUTCOME))
def crashing_create(request: pytest.FixtureRequest, cluster_env: dict[str, str],
                    tmp_path: Path, io_loop: IOLoop) -> Iterator[tuple[Cluster, str]]:
    yield from serving(start_with_orders_0_crashing(request.param, cluster_env, tmp_path,
                                                    CREATE_FAST), request.param, io_loop)


def serving(running: Cluster, point: str, io_loop: IOLoop) -> Iterator[tuple[Cluster, str]]:
    """A fixture's cluster and its crash point: yielded, then stopped, clients closed."""
    yield running, point
    running.stop()
    io_loop.run_sync(running.close_clients)


async def send_to_dying(method: str, url: str, body: object = None) -> int | None:
    try:
        return (await call(method, url, body)).status
    except (OSError, HTTPClientError):  # the connection died with the process
        return None


@pytest.mark.slow
@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("op", ["update", "delete"])
async def test_an_orders_instance_killed_at_any_step_leaves_order_and_invoice_agreeing(
        crashing: tuple[Cluster, str], op: str) -> None:
    cluster, point = crashing
    dying, survivor = cluster.orders
    order = await cluster.create_order(instance=1, quantity=2, value="10.50")
    url = f"{dying.url}/orders/{order['id']}"
    if op == "update":
        status = await send_to_dying("PATCH", url, {"update_time": "2030-01-01T00:00:00Z",
                                                    "quantity": 4})
    else:
        status = await send_to_dying("DELETE", url)
    assert status is None or status >= 500, "the process should have died mid-call"
    cluster.restart_without_faults(dying)

    assert await cluster.settled([order["id"]], SETTLE_WITHIN) == []
    final = (await call("GET", f"{survivor.url}/orders/{order['id']}")).json
    stands = OUTCOME[point][0 if op == "update" else 1]
    if op == "update":
        assert final["total"] == (Decimal("42") if stands else Decimal("21")), point
    else:
        assert (final["deleted_at"] is not None) == stands, point
    assert (await call("GET", f"{dying.url}/health")).status == 200


@pytest.mark.slow
@pytest.mark.gen_test(timeout=60)
async def test_an_orders_instance_killed_at_any_step_of_a_create_leaves_no_half_order(
        crashing_create: tuple[Cluster, str]) -> None:
    cluster, point = crashing_create
    dying, survivor = cluster.orders
    user = str(uuid.uuid4())  # finds the order the client never heard of
    status = await send_to_dying("POST", f"{dying.url}/orders", {
        "user_id": user, "item_id": ITEM, "quantity": 2, "value": Decimal("10.50")})
    assert status is None or status >= 500, "the process should have died mid-call"
    stored = await cluster.db()["orders"].find_one({"user_id": user})
    assert stored is not None, "the crash came after the order was stored"
    cluster.restart_without_faults(dying)

    stands = CREATE_OUTCOME[point]
    assert await cluster.settled([stored["_id"]] if stands else [],
                                 SETTLE_WITHIN + 2.0) == [], point
    order = await call("GET", f"{survivor.url}/orders/{stored['_id']}")
    invoice = (await call(
        "GET", f"{cluster.invoices[0].url}/invoices/{stored['invoice_id']}")).json
    if stands:
        assert order.status == 200 and order.json["status"] == "created", point
        assert invoice["status"] == "created" and invoice["total"] == Decimal("21"), point
    else:
        assert order.status == 404, point
        assert await cluster.db()["orders"].find_one({"_id": stored["_id"]}) is None, point
        assert invoice["status"] == "deleted", point
    assert (await call("GET", f"{dying.url}/health")).status == 200


@pytest.mark.slow
@pytest.mark.gen_test(timeout=60)
async def test_an_invoices_instance_killed_mid_call_gives_424_and_changes_nothing(
        cluster_env: dict[str, str], tmp_path: Path) -> None:
    crash = {"DLOCK_TEST_MODE": "1", "DLOCK_FAULTS": "invoice_after_write=crash"}
    cluster = Cluster.start(tmp_path, {**cluster_env, **FAST}, orders=1, invoices=1,
                            invoices_env=[crash])
    try:
        # Creating needs no fenced invoice write, so the fault does not fire yet.
        created = await cluster.create_order(instance=0, quantity=2, value="10.50")
        reply = await call("PATCH", f"{cluster.orders[0].url}/orders/{created['id']}",
                           {"update_time": "2030-01-01T00:00:00Z", "quantity": 4})
        assert reply.status == 424 and reply.error == "invoice_failed", reply.body
        cluster.restart_without_faults(cluster.invoices[0])
        assert await cluster.settled([created["id"]], SETTLE_WITHIN) == []
        final = (await call("GET", f"{cluster.orders[0].url}/orders/{created['id']}")).json
        assert final == created, "a 424 leaves no lasting change"
    finally:
        cluster.stop()
        await cluster.close_clients()
