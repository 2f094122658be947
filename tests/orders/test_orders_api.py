"""The orders service, route by route, as the contract's table says."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Awaitable, Callable

import pytest
from tornado.httpclient import AsyncHTTPClient

from servicekit.lock_names import order_lock
from tests.stack import ITEM, USER, Stack, call

LATER = "2030-01-01T00:00:00Z"


def order_url(stack: Stack, order: dict | str) -> str:
    order_id = order if isinstance(order, str) else order["id"]
    return f"{stack.orders_url}/orders/{order_id}"


async def orders_in_db(stack: Stack) -> int:
    return int(await stack.db["orders"].count_documents({}))


async def invoices_in_db(stack: Stack) -> int:
    return int(await stack.db["invoices"].count_documents({}))


@pytest.mark.gen_test(timeout=20)
async def test_create_makes_the_order_and_its_invoice_with_the_same_total(stack: Stack) -> None:
    reply = await call("POST", f"{stack.orders_url}/orders",
                       {"user_id": USER, "item_id": ITEM, "quantity": 3, "value": Decimal("0.1")})
    assert reply.status == 201
    order = reply.json
    assert reply.headers["Location"] == f"/orders/{order['id']}"
    assert order["total"] == Decimal("0.3") and reply.body.count(b'"total":0.3,') == 1
    assert order["status"] == "created" and order["deleted_at"] is None
    assert order["user_id"] == USER and order["item_id"] == ITEM and order["quantity"] == 3
    assert order["created_at"].endswith("Z") and order["created_at"] == order["updated_at"]
    invoice = await stack.invoice(order["invoice_id"])
    assert invoice["total"] == Decimal("0.3") and invoice["user_id"] == USER
    assert (await call("GET", order_url(stack, order))).json == order


@pytest.mark.gen_test(timeout=20)
async def test_the_largest_order_totals_ten_to_the_fifteen_exactly(stack: Stack) -> None:
    order = await stack.create_order(quantity=1_000_000, value="1000000000")
    assert order["total"] == Decimal(10**15)
    assert (await stack.invoice(order["invoice_id"]))["total"] == Decimal(10**15)
    cents = await stack.create_order(quantity=999_999, value="999999999.99")
    assert cents["total"] == Decimal("999999999.99") * 999_999


@pytest.mark.gen_test(timeout=20)
@pytest.mark.parametrize("change, field", [
    ({"user_id": None}, "user_id"), ({"item_id": "x"}, "item_id"),
    ({"quantity": 0}, "quantity"), ({"quantity": 1_000_001}, "quantity"),
    ({"quantity": Decimal("1.5")}, "quantity"), ({"quantity": "2"}, "quantity"),
    ({"value": 0}, "value"), ({"value": -1}, "value"),
    ({"value": Decimal("0.001")}, "value"), ({"value": Decimal("1000000000.01")}, "value"),
    ({"value": "1"}, "value"), ({"total": 3}, "total"),
])
async def test_a_bad_create_is_422_naming_the_field_and_stores_nothing(
        stack: Stack, change: dict, field: str) -> None:
    body = {"user_id": USER, "item_id": ITEM, "quantity": 1, "value": 1, **change}
    reply = await call("POST", f"{stack.orders_url}/orders", body)
    assert reply.status == 422 and reply.error == "validation_error"
    assert field in reply.json["message"]
    assert await orders_in_db(stack) == 0 and await invoices_in_db(stack) == 0


@pytest.mark.gen_test(timeout=20)
async def test_a_missing_field_is_422_naming_it(stack: Stack) -> None:
    reply = await call("POST", f"{stack.orders_url}/orders", {"user_id": USER, "item_id": ITEM,
                                                              "quantity": 1})
    assert reply.status == 422 and "value" in reply.json["message"]


@pytest.mark.gen_test(timeout=20)
async def test_the_same_idempotency_key_and_body_return_the_same_order(stack: Stack) -> None:
    key = {"Idempotency-Key": "checkout-1"}
    first = await stack.create_order(headers=key)
    again = await stack.create_order(headers=key)
    assert again == first
    assert await orders_in_db(stack) == 1 and await invoices_in_db(stack) == 1


@pytest.mark.gen_test(timeout=20)
async def test_the_same_idempotency_key_with_another_body_is_422(stack: Stack) -> None:
    key = {"Idempotency-Key": "checkout-2"}
    await stack.create_order(quantity=2, headers=key)
    reply = await call("POST", f"{stack.orders_url}/orders",
                       {"user_id": USER, "item_id": ITEM, "quantity": 5, "value": 1}, key)
    assert reply.status == 422 and reply.error == "idempotency_key_reused"
    assert await orders_in_db(stack) == 1 and await invoices_in_db(stack) == 1


@pytest.mark.gen_test(timeout=20)
@pytest.mark.parametrize("path", ["/orders/" + str(uuid.UUID(int=9)), "/orders/12",
                                  "/orders/%20", "/orders/" + "a" * 300])
async def test_an_unknown_or_malformed_order_id_is_404(stack: Stack, path: str) -> None:
    for method, body in (("GET", None), ("PATCH", {"update_time": LATER, "quantity": 1}),
                         ("DELETE", None)):
        reply = await call(method, stack.orders_url + path, body)
        assert reply.status == 404 and reply.error == "not_found", (method, reply.body)


@pytest.mark.gen_test(timeout=20)
async def test_an_update_changes_the_order_and_its_invoice(stack: Stack) -> None:
    order = await stack.create_order(quantity=2, value="10.50")
    reply = await call("PATCH", order_url(stack, order),
                       {"update_time": "2030-01-01T10:00:00.5Z", "quantity": 3})
    assert reply.status == 200, reply.body
    updated = reply.json
    assert updated["quantity"] == 3 and updated["total"] == Decimal("31.5")
    assert updated["status"] == "updated" and updated["updated_at"] == "2030-01-01T10:00:00.5Z"
    assert (await stack.invoice(order["invoice_id"]))["total"] == Decimal("31.5")
    reply = await call("PATCH", order_url(stack, order),
                       {"update_time": "2030-01-01T12:00:00+01:00", "value": Decimal("0.1")})
    assert reply.status == 200 and reply.json["total"] == Decimal("0.3")
    assert reply.json["updated_at"] == "2030-01-01T11:00:00Z"
    assert (await stack.invoice(order["invoice_id"]))["total"] == Decimal("0.3")


@pytest.mark.gen_test(timeout=20)
async def test_an_update_older_than_the_order_is_event_outdated(stack: Stack) -> None:
    order = await stack.create_order()
    assert (await call("PATCH", order_url(stack, order),
                       {"update_time": LATER, "quantity": 5})).status == 200
    reply = await call("PATCH", order_url(stack, order),
                       {"update_time": "2029-12-31T23:59:59Z", "quantity": 7})
    assert reply.status == 409 and reply.error == "event_outdated"
    assert (await call("GET", order_url(stack, order))).json["quantity"] == 5
    assert (await stack.invoice(order["invoice_id"]))["total"] == Decimal("52.5")


@pytest.mark.gen_test(timeout=20)
@pytest.mark.parametrize("body, field", [
    ({"quantity": 2}, "update_time"), ({"update_time": LATER}, "quantity"),
    ({"update_time": "yesterday", "quantity": 2}, "update_time"),
    ({"update_time": "2030-02-30T00:00:00Z", "quantity": 2}, "update_time"),
    ({"update_time": 1700000000, "quantity": 2}, "update_time"),
    ({"update_time": LATER, "quantity": 0}, "quantity"),
    ({"update_time": LATER, "value": Decimal("2.005")}, "value"),
    ({"update_time": LATER, "quantity": 2, "user_id": USER}, "user_id"),
])
async def test_a_bad_update_is_422_and_changes_nothing(
        stack: Stack, body: dict, field: str) -> None:
    order = await stack.create_order()
    reply = await call("PATCH", order_url(stack, order), body)
    assert reply.status == 422 and reply.error == "validation_error"
    assert field in reply.json["message"]
    assert (await call("GET", order_url(stack, order))).json == order


@pytest.mark.gen_test(timeout=20)
async def test_delete_deletes_the_invoice_too_and_can_be_repeated(stack: Stack) -> None:
    order = await stack.create_order()
    reply = await call("DELETE", order_url(stack, order))
    assert reply.status == 204 and reply.body == b""
    deleted = (await call("GET", order_url(stack, order))).json
    assert deleted["status"] == "deleted" and deleted["deleted_at"] is not None
    invoice = await stack.invoice(order["invoice_id"])
    assert invoice["status"] == "deleted" and invoice["deleted_at"] is not None
    assert (await call("DELETE", order_url(stack, order))).status == 204
    assert (await call("GET", order_url(stack, order))).json == deleted


@pytest.mark.gen_test(timeout=20)
async def test_updating_a_deleted_order_is_order_deleted(stack: Stack) -> None:
    order = await stack.create_order()
    assert (await call("DELETE", order_url(stack, order))).status == 204
    reply = await call("PATCH", order_url(stack, order), {"update_time": LATER, "quantity": 9})
    assert reply.status == 409 and reply.error == "order_deleted"
    assert (await stack.invoice(order["invoice_id"]))["total"] == order["total"]


@pytest.mark.gen_test(timeout=20)
async def test_an_order_held_by_another_operation_is_423_with_retry_after(stack: Stack) -> None:
    order = await stack.create_order()
    lease = await stack.lock.acquire(order_lock(order['id'], order['invoice_id']))
    assert lease is not None
    for method, body in (("PATCH", {"update_time": LATER, "quantity": 9}), ("DELETE", None)):
        reply = await call(method, order_url(stack, order), body)
        assert reply.status == 423 and reply.error == "locked", method
        assert int(reply.headers["Retry-After"]) >= 1
    assert (await call("GET", order_url(stack, order))).json == order
    assert (await stack.invoice(order["invoice_id"]))["status"] == "created"
    assert await stack.lock.release(lease)


@pytest.mark.gen_test(timeout=20)
async def test_order_and_invoice_keep_the_token_of_the_last_write(stack: Stack) -> None:
    order = await stack.create_order()
    created = (await stack.db["orders"].find_one({"_id": order["id"]}))["fence"]
    for quantity in (3, 4):
        assert (await call("PATCH", order_url(stack, order),
                           {"update_time": LATER, "quantity": quantity})).status == 200
    stored_order = await stack.db["orders"].find_one({"_id": order["id"]})
    stored_invoice = await stack.db["invoices"].find_one({"_id": order["invoice_id"]})
    # The create and the two updates each took one lease from the pair's counter (its
    # first token is Redis's clock in µs: see docs/library/key-scheme.md): T, T+1, T+2.
    assert created > 0 and stored_order["fence"] == stored_invoice["fence"] == created + 2
    lock_name = order_lock(order["id"], order["invoice_id"])
    assert await stack.lock.holder(lock_name) is None, "the lease was released"


@pytest.mark.gen_test(timeout=20)
async def test_an_update_heals_when_the_invoice_accepted_a_higher_token(stack: Stack) -> None:
    """Redis's counter fell behind (it lost it on a server whose clock is behind): the
    invoice has seen a token 1000 above what Redis issues next. The stale_token answer
    carries it and the order service leases again above it."""
    order = await stack.create_order()
    seen = (await stack.db["orders"].find_one({"_id": order["id"]}))["fence"] + 1000
    await stack.db["invoices"].update_one({"_id": order["invoice_id"]}, {"$set": {"fence": seen}})
    reply = await call("PATCH", order_url(stack, order), {"update_time": LATER, "quantity": 4})
    assert reply.status == 200, reply.body
    assert (await stack.invoice(order["invoice_id"]))["total"] == Decimal("42")
    stored = await stack.db["orders"].find_one({"_id": order["id"]})
    assert stored["fence"] > seen


@pytest.mark.gen_test(timeout=20)
async def test_when_invoices_is_down_create_is_424_and_leaves_nothing(stack: Stack) -> None:
    invoices_server = stack.servers[0]
    invoices_server.stop()
    await invoices_server.close_all_connections()
    reply = await call("POST", f"{stack.orders_url}/orders",
                       {"user_id": USER, "item_id": ITEM, "quantity": 1, "value": 1})
    assert reply.status == 424 and reply.error == "invoice_failed"
    assert await orders_in_db(stack) == 0 and await invoices_in_db(stack) == 0


@pytest.mark.gen_test(timeout=20)
async def test_when_invoices_is_down_update_and_delete_are_424_and_change_nothing(
        stack: Stack) -> None:
    order = await stack.create_order()
    invoices_server = stack.servers[0]
    invoices_server.stop()
    await invoices_server.close_all_connections()
    for method, body in (("PATCH", {"update_time": LATER, "quantity": 9}), ("DELETE", None)):
        reply = await call(method, order_url(stack, order), body)
        assert reply.status == 424 and reply.error == "invoice_failed", method
    assert (await call("GET", order_url(stack, order))).json == order
    lock_name = order_lock(order["id"], order["invoice_id"])
    assert await stack.lock.holder(lock_name) is None, "the lease was released"


@pytest.mark.gen_test(timeout=20)
async def test_with_the_curl_client_an_unreachable_invoices_leaves_a_delete_unconfirmed(
        make_stack: Callable[..., Awaitable[Stack]]) -> None:
    """libcurl retries by itself on a fresh connection when a kept-alive one died, so even
    "could not connect" may follow an attempt that landed: a delete answers 503 and keeps
    its intent for the repairer (which completes it), an update answers 424."""
    try:
        stack = await make_stack(http_client="curl")
        order, updated = await stack.create_order(), await stack.create_order()
        invoices_server = stack.servers[0]
        invoices_server.stop()
        await invoices_server.close_all_connections()
        change = {"update_time": LATER, "quantity": 5}
        reply = await call("PATCH", order_url(stack, updated), change)
        assert reply.status == 424 and reply.error == "invoice_failed", reply.body
        reply = await call("DELETE", order_url(stack, order))
        assert reply.status == 503 and reply.error == "unavailable", reply.body
        assert (await call("GET", order_url(stack, order))).json == order
        stored = await stack.db["orders"].find_one({"_id": order["id"]})
        assert stored["intent"]["op"] == "delete"
    finally:
        AsyncHTTPClient.configure(None)
