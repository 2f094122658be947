"""Processes killed (SIGKILL) in the middle of a change: nothing stays apart.

Each case kills orders-0 at one named step of an update or a delete (a test-only
fault hook), starts it again, and waits a lease time plus a repair interval.
Then the order and its invoice agree, no intent is left open, and the state is
the one the rules say: an update cut off before its commit rolls back, one cut
off after it stands; a delete, once its intent is recorded, is completed.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Iterator

import pytest
from tornado.httpclient import HTTPClientError
from tornado.ioloop import IOLoop

from tests.e2e.cluster import Cluster
from tests.stack import call

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


@pytest.fixture(params=list(OUTCOME))
def crashing(request: pytest.FixtureRequest, cluster_env: dict[str, str], tmp_path: Path,
             io_loop: IOLoop) -> Iterator[tuple[Cluster, str]]:
    crash = {"DLOCK_TEST_MODE": "1", "DLOCK_FAULTS": f"{request.param}=crash"}
    running = Cluster.start(tmp_path, {**cluster_env, **FAST}, orders=2, invoices=1,
                            orders_env=[crash, {}])
    yield running, request.param
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
