"""A holder frozen past its lease wakes while the repairer settles its intent.

The update stops just before its commit (`before_order_commit`): its intent is
recorded and its invoice written (total 52.50). Its lease runs out, and the
repairer settles the intent with a newer token, rolling the update back. The
holder wakes right after the repairer's invoice write (total 21 again), before
the repairer's order write:

    settling that writes first: repairer: invoice(T2) = 21 ─► holder: commit(T1) ✓
                                (the order's fence is still T1) → 200, order 52.50,
                                invoice 21, for good
    settling that claims first: repairer: claim order(T2) ─► invoice(T2) = 21 ─►
                                holder: commit(T1) refused → 423; order and invoice 21

The holder is let go from inside the repairer's invoice call, just after it
returned, so the test needs no fault point of the repairer's own and runs the
same on a settling that has none.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any, Awaitable, Callable

import pytest

from tests.orders.gates import Gates, expire_leases
from tests.stack import LATER, Stack, call


@pytest.mark.gen_test(timeout=20)
async def test_a_holder_that_wakes_inside_the_repairers_settling_cannot_commit(
        make_stack: Callable[..., Awaitable[Stack]], monkeypatch: pytest.MonkeyPatch) -> None:
    stack = await make_stack(test_mode=True)
    order = await stack.create_order(quantity=2, value="10.50")
    gates = Gates("before_order_commit").install(stack, monkeypatch)
    updating = asyncio.ensure_future(call("PATCH", f"{stack.orders_url}/orders/{order['id']}",
                                          {"update_time": LATER, "quantity": 5}))
    await gates.wait("before_order_commit")
    await expire_leases(stack)
    assert (await stack.invoice(order["invoice_id"]))["total"] == Decimal("52.5")

    service = stack.order_service
    write_invoice = service.invoices.update_total
    holder_replied: list[Any] = []

    async def then_the_holder_wakes(*args: Any, **kwargs: Any) -> None:
        await write_invoice(*args, **kwargs)
        gates.open("before_order_commit")
        holder_replied.append(await updating)

    monkeypatch.setattr(service.invoices, "update_total", then_the_holder_wakes)
    await service.settle_left_intent(order["id"])

    assert holder_replied, "the repairer wrote the invoice"
    order_now = await call("GET", f"{stack.orders_url}/orders/{order['id']}")
    invoice_now = await stack.invoice(order["invoice_id"])
    assert order_now.json["total"] == invoice_now["total"], (
        f"the holder answered {holder_replied[0].status}; order total "
        f"{order_now.json['total']}, invoice total {invoice_now['total']}")
    reply = holder_replied[0]
    assert reply.status == 423 and reply.error == "locked", reply.body
    assert invoice_now["total"] == Decimal("21"), "the update was rolled back"
