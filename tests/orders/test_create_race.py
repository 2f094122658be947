"""A creator frozen past its lease meets the repairer rolling its creation back.

The creator stops just before it activates its order (`before_activate`),
after its invoice was made; its lease runs out and the pending grace passes.
Exactly one of the two may act, whichever order the steps come in:

    creator wakes first:   activate(T1) ✓ ─► repairer: lease T2, claim pending? no
                           → 201, the pair is left alone, the invoice stays
    repairer claims first: repairer: lease T2, claim pending, fence = T2 ✓ ─►
                           creator: activate(T1) refused (fence T2 > T1)
                           → 424 invoice_failed; invoice tombstoned, order removed

Without the repairer's fenced claim, either interleaving ends with a live order
whose invoice is deleted.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Awaitable, Callable

import pytest

from orders.repair import Repairer
from tests.orders.gates import Gates, expire_leases
from tests.stack import ITEM, USER, Stack, call


def body() -> dict:
    return {"user_id": USER, "item_id": ITEM, "quantity": 2, "value": Decimal("10.50")}


async def frozen_creator(make_stack: Callable[..., Awaitable[Stack]],
                         monkeypatch: pytest.MonkeyPatch, *also: str
                         ) -> tuple[Stack, Gates, asyncio.Future, dict]:
    """A POST /orders stopped at before_activate, its lease gone; its pending order.
    `also` names the gates the repairer stops at."""
    stack = await make_stack(test_mode=True)
    gates = Gates("before_activate", *also).install(stack, monkeypatch)
    creating = asyncio.ensure_future(call("POST", f"{stack.orders_url}/orders", body()))
    await gates.wait("before_activate")
    await expire_leases(stack)
    pending = await stack.db["orders"].find_one({"status": "pending"})
    assert pending is not None
    return stack, gates, creating, pending


def repairer(stack: Stack) -> Repairer:
    return Repairer(stack.order_service, interval_ms=100, pending_grace_ms=0)


@pytest.mark.gen_test(timeout=20)
async def test_a_creator_that_wakes_before_the_claim_keeps_its_order_and_invoice(
        make_stack: Callable[..., Awaitable[Stack]], monkeypatch: pytest.MonkeyPatch) -> None:
    stack, gates, creating, pending = await frozen_creator(make_stack, monkeypatch)
    gates.open("before_activate")
    reply = await creating
    assert reply.status == 201 and reply.json["status"] == "created", reply.body

    # The repairer read the order while it was still pending, and comes to it now.
    await stack.order_service.roll_back_create(pending)
    order = await call("GET", f"{stack.orders_url}/orders/{pending['_id']}")
    assert order.status == 200 and order.json == reply.json
    invoice = await stack.invoice(pending["invoice_id"])
    assert invoice["status"] == "created" and invoice["total"] == Decimal("21")
    assert (await repairer(stack).run_once()).rolled_back == 0


@pytest.mark.gen_test(timeout=20)
async def test_a_creator_that_wakes_after_the_claim_is_refused_with_424(
        make_stack: Callable[..., Awaitable[Stack]], monkeypatch: pytest.MonkeyPatch) -> None:
    stack, gates, creating, pending = await frozen_creator(make_stack, monkeypatch,
                                                           "after_claim")
    repairing = asyncio.ensure_future(repairer(stack).run_once())
    await gates.wait("after_claim")
    gates.open("before_activate")
    reply = await creating
    gates.open("after_claim")
    result = await repairing

    assert reply.status == 424 and reply.error == "invoice_failed", reply.body
    assert (result.rolled_back, result.failed) == (1, 0)
    assert (await call("GET", f"{stack.orders_url}/orders/{pending['_id']}")).status == 404
    assert await stack.db["orders"].find_one({"_id": pending["_id"]}) is None
    assert (await stack.invoice(pending["invoice_id"]))["status"] == "deleted"
