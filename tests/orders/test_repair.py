"""Intent before effect: what a cut-off update, delete or create leaves is settled.

A "crash" here is a holder that recorded its intent (and perhaps wrote the
invoice) and then vanished: its lease is released as expiry would release it,
and its order commit never comes. Updates roll back, deletes roll forward,
creates roll back.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any, Awaitable, Callable

import pytest

from orders.repair import PassResult, Repairer, repairs_counter
from orders.pair import resources
from servicekit import validate
from servicekit.faults import NO_FAULTS
from servicekit.metrics import Metrics
from tests.stack import ITEM, USER, Stack, call

LATER = "2030-01-01T00:00:00Z"


def repairer(stack: Stack) -> Repairer:
    return Repairer(stack.order_service, interval_ms=100,
                    pending_grace_ms=stack.settings.lock_ttl_ms + stack.settings.http_timeout_ms)


async def stored(stack: Stack, order: dict) -> tuple[dict, dict]:
    return (await stack.db["orders"].find_one({"_id": order["id"]}),
            await stack.db["invoices"].find_one({"_id": order["invoice_id"]}))


async def cut_off(stack: Stack, order: dict, op: str, invoice_written: bool) -> int:
    """A holder that records its intent, maybe writes the invoice, then is gone."""
    service = stack.order_service
    doc = await service.store.get(order["id"])
    lease = await stack.lock.acquire(*resources(doc), floor=doc["fence"])
    assert lease is not None
    if op == "update":
        changes: dict[str, Any] = {"quantity": 5, "value_cents": 1050, "total_cents": 5250,
                                   "status": "updated", "updated_us": 1_900_000_000_000_000}
    else:
        changes = {"status": "deleted", "deleted_us": 1_800_000_000_000_000}
    intent = {"op": op, **changes, "token": lease.token, "at_us": validate.now_micros(),
              "expires_us": 0}
    assert await service.store.record_intent(order["id"], intent)  # type: ignore[arg-type]
    if invoice_written and op == "update":
        await service.invoices.update_total(order["invoice_id"], lease.token, 5250)
    elif invoice_written:
        await service.invoices.delete(order["invoice_id"], lease.token)
    await stack.lock.release(lease)  # as its expiry would
    return int(lease.token)


@pytest.mark.gen_test(timeout=20)
@pytest.mark.parametrize("invoice_written", [True, False])
async def test_a_cut_off_update_is_rolled_back_by_the_repairer(
        stack: Stack, invoice_written: bool) -> None:
    order = await stack.create_order(quantity=2, value="10.50")
    token = await cut_off(stack, order, "update", invoice_written)
    assert (await stack.invoice(order["invoice_id"]))["total"] == (
        Decimal("52.5") if invoice_written else Decimal("21"))

    result = await repairer(stack).run_once()
    assert (result.settled, result.failed) == (1, 0)
    assert (await stack.invoice(order["invoice_id"]))["total"] == Decimal("21")
    assert (await call("GET", f"{stack.orders_url}/orders/{order['id']}")).json == order
    order_doc, invoice_doc = await stored(stack, order)
    assert "intent" not in order_doc and order_doc["fence"] == invoice_doc["fence"] > token
    late = await call("PATCH", f"{stack.invoices_url}/invoices/{order['invoice_id']}",
                      {"total": 99}, {"Fencing-Token": str(token)})
    assert late.status == 409, "the vanished holder's late invoice write is refused"
    assert (await repairer(stack).run_once()).settled == 0, "nothing left to settle"


@pytest.mark.gen_test(timeout=20)
@pytest.mark.parametrize("invoice_written", [True, False])
async def test_a_cut_off_delete_is_completed_by_the_repairer(
        stack: Stack, invoice_written: bool) -> None:
    order = await stack.create_order()
    await cut_off(stack, order, "delete", invoice_written)
    assert (await repairer(stack).run_once()).settled == 1
    deleted = (await call("GET", f"{stack.orders_url}/orders/{order['id']}")).json
    assert deleted["status"] == "deleted"
    assert deleted["deleted_at"] == validate.format_micros(1_800_000_000_000_000)
    assert (await stack.invoice(order["invoice_id"]))["status"] == "deleted"


@pytest.mark.gen_test(timeout=20)
async def test_the_next_request_settles_a_cut_off_update_first(stack: Stack) -> None:
    order = await stack.create_order(quantity=2, value="10.50")
    await cut_off(stack, order, "update", invoice_written=True)
    reply = await call("PATCH", f"{stack.orders_url}/orders/{order['id']}",
                       {"update_time": "2031-01-01T00:00:00Z", "quantity": 3})
    assert reply.status == 200, reply.body
    assert reply.json["total"] == Decimal("31.5")
    assert (await stack.invoice(order["invoice_id"]))["total"] == Decimal("31.5")
    assert "intent" not in (await stored(stack, order))[0]


@pytest.mark.gen_test(timeout=20)
async def test_an_update_on_an_order_whose_delete_was_cut_off_finds_it_deleted(
        stack: Stack) -> None:
    order = await stack.create_order()
    await cut_off(stack, order, "delete", invoice_written=True)
    reply = await call("PATCH", f"{stack.orders_url}/orders/{order['id']}",
                       {"update_time": LATER, "quantity": 3})
    assert reply.status == 409 and reply.error == "order_deleted"
    assert (await stack.invoice(order["invoice_id"]))["status"] == "deleted"


@pytest.mark.gen_test(timeout=20)
async def test_a_pair_in_use_is_left_for_the_next_pass(stack: Stack) -> None:
    order = await stack.create_order()
    await cut_off(stack, order, "update", invoice_written=True)
    doc = await stack.order_service.store.get(order["id"])
    lease = await stack.lock.acquire(*resources(doc))
    assert lease is not None
    assert (await repairer(stack).run_once()).busy == 1
    await stack.lock.release(lease)
    assert (await repairer(stack).run_once()).settled == 1
    assert (await stack.invoice(order["invoice_id"]))["total"] == order["total"]


@pytest.mark.gen_test(timeout=30)
async def test_two_repairers_at_once_settle_each_order_once_and_safely(
        make_stack: Callable[..., Awaitable[Stack]]) -> None:
    first = await make_stack()
    second = await make_stack(mongo_db=first.settings.mongo_db,
                              lock_prefix=first.settings.lock_prefix)
    orders = [await first.create_order(quantity=2, value="10.50") for _ in range(8)]
    for order in orders:
        await cut_off(first, order, "update", invoice_written=True)
    results = await asyncio.gather(repairer(first).run_once(), repairer(second).run_once())
    assert sum(r.settled for r in results) == 8 and sum(r.failed for r in results) == 0
    for order in orders:
        assert (await first.invoice(order["invoice_id"]))["total"] == Decimal("21")
        assert "intent" not in (await stored(first, order))[0]


@pytest.mark.gen_test(timeout=20)
async def test_an_order_another_repairer_settled_first_is_not_counted(
        stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    order = await stack.create_order()
    await cut_off(stack, order, "update", invoice_written=True)
    store = stack.order_service.store
    listed = await store.expired_intents(validate.now_micros(), 10)
    assert (await repairer(stack).run_once()).settled == 1

    async def as_listed_before(now_us: int, limit: int) -> list[dict]:
        return listed  # this repairer read the list before the other one settled it

    monkeypatch.setattr(store, "expired_intents", as_listed_before)
    metrics = Metrics()
    late = Repairer(stack.order_service, interval_ms=100, pending_grace_ms=60_000,
                    repairs=repairs_counter(metrics))
    assert await late.run_once() == PassResult()
    assert metrics.registry.get_sample_value("repairs_total", {"kind": "settled"}) is None


@pytest.mark.gen_test(timeout=20)
async def test_a_creation_never_finished_is_rolled_back_and_its_invoice_tombstoned(
        stack: Stack) -> None:
    long_ago = validate.now_micros() - 60_000_000
    doc = {"_id": validate.new_id(), "invoice_id": validate.new_id(), "user_id": USER,
           "item_id": ITEM, "quantity": 1, "value_cents": 100, "total_cents": 100,
           "status": "pending", "created_us": long_ago, "updated_us": long_ago,
           "deleted_us": None, "fence": 0}
    await stack.db["orders"].insert_one(doc)
    result = await repairer(stack).run_once()
    assert (result.rolled_back, result.failed) == (1, 0)
    assert await stack.db["orders"].find_one({"_id": doc["_id"]}) is None
    assert (await stack.invoice(doc["invoice_id"]))["status"] == "deleted"
    late = await call("POST", f"{stack.invoices_url}/invoices",
                      {"id": doc["invoice_id"], "user_id": USER, "total": 1})
    assert late.json["status"] == "deleted", "a late create cannot bring it back"


@pytest.mark.gen_test(timeout=20)
async def test_an_unconfirmed_invoice_write_answers_424_and_is_rolled_back(
        make_stack: Callable[..., Awaitable[Stack]]) -> None:
    """The invoice stores the write, then answers too late: the order cannot know whether it
    was applied. It answers 424, and the repairer brings the invoice back."""
    stack = await make_stack(test_mode=True, faults="invoice_after_write=sleep:1500",
                             http_timeout_ms=500)
    order = await stack.create_order(quantity=2, value="10.50")
    reply = await call("PATCH", f"{stack.orders_url}/orders/{order['id']}",
                       {"update_time": LATER, "quantity": 4})
    assert reply.status == 424 and reply.error == "invoice_failed", reply.body
    await asyncio.sleep(1.2)  # the invoice's answer was lost, its write was not
    assert (await stack.invoice(order["invoice_id"]))["total"] == Decimal("42")
    stack.invoice_service.faults = NO_FAULTS
    assert (await repairer(stack).run_once()).settled == 1
    assert (await stack.invoice(order["invoice_id"]))["total"] == Decimal("21")
    assert (await call("GET", f"{stack.orders_url}/orders/{order['id']}")).json == order
