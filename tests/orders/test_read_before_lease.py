"""An update or delete plans from the order it read before its lease, and reads it no
second time: the intent's write proves, in its own filter, that the order is still as
read. Here another request changes the order between that read and the lease; the
intent matches nothing, and the order is read again and planned again."""

from __future__ import annotations

from decimal import Decimal
import pytest

from tests.stack import Stack, call

LATER = "2030-01-01T00:00:00Z"
LATEST = "2030-06-01T00:00:00Z"


async def changed_after_first_read(stack: Stack, monkeypatch: pytest.MonkeyPatch,
                                   method: str, body: dict | None, status: int) -> tuple[dict, str]:
    """An order of quantity 2 and value 10, and its URL. The service's next first read
    of it answers it as it was, then `method` with `body` changes it (answering `status`)."""
    order = await stack.create_order(quantity=2, value="10")
    url = f"{stack.orders_url}/orders/{order['id']}"
    service = stack.order_service
    read = service.get

    async def stale_read(order_id: str) -> dict:
        seen = await read(order_id)
        monkeypatch.setattr(service, "get", read)
        reply = await call(method, url, body)
        assert reply.status == status, reply.body
        return seen

    monkeypatch.setattr(service, "get", stale_read)
    return order, url


@pytest.mark.gen_test(timeout=20)
async def test_an_update_plans_from_the_order_as_it_is_not_as_it_was_read(
        stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    order, url = await changed_after_first_read(
        stack, monkeypatch, "PATCH", {"update_time": LATER, "quantity": 7}, 200)
    # Only the value is given: the quantity is the order's, which is 7 by now, not 2.
    reply = await call("PATCH", url, {"update_time": LATER, "value": 3})
    assert reply.status == 200, reply.body
    assert reply.json["quantity"] == 7 and reply.json["total"] == Decimal(21)
    assert (await call("GET", url)).json == reply.json
    assert (await stack.invoice(order["invoice_id"]))["total"] == Decimal(21)
    assert "intent" not in await stack.db["orders"].find_one({"_id": order["id"]})


@pytest.mark.gen_test(timeout=20)
async def test_an_update_checks_update_time_against_the_order_as_it_is(
        stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    order, url = await changed_after_first_read(
        stack, monkeypatch, "PATCH", {"update_time": LATEST, "quantity": 5}, 200)
    reply = await call("PATCH", url, {"update_time": LATER, "quantity": 9})
    assert reply.status == 409 and reply.error == "event_outdated", reply.body
    assert (await call("GET", url)).json["quantity"] == 5
    assert (await stack.invoice(order["invoice_id"]))["total"] == Decimal(50)


@pytest.mark.gen_test(timeout=20)
async def test_an_update_of_an_order_deleted_after_the_read_is_order_deleted(
        stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    order, url = await changed_after_first_read(stack, monkeypatch, "DELETE", None, 204)
    reply = await call("PATCH", url, {"update_time": LATER, "quantity": 9})
    assert reply.status == 409 and reply.error == "order_deleted", reply.body
    invoice = await stack.invoice(order["invoice_id"])
    assert invoice["status"] == "deleted" and invoice["total"] == Decimal(20)


@pytest.mark.gen_test(timeout=20)
async def test_a_delete_of_an_order_changed_after_the_read_deletes_it_as_it_is(
        stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    order, url = await changed_after_first_read(
        stack, monkeypatch, "PATCH", {"update_time": LATER, "quantity": 4}, 200)
    assert (await call("DELETE", url)).status == 204
    stored = await stack.db["orders"].find_one({"_id": order["id"]})
    assert stored["status"] == "deleted" and stored["quantity"] == 4 and "intent" not in stored
    invoice = await stack.invoice(order["invoice_id"])
    assert invoice["status"] == "deleted" and invoice["total"] == Decimal(40)
