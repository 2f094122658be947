"""With INVOICES_API_KEY set, only callers that hold it may write invoices.

A forged token is the fencing scheme's weak spot: `Fencing-Token: 9007199254740991`
accepted once would freeze an invoice for good. Two locks on that door: the
caller must be authenticated, and Redis must hold the invoice's lock under the
token (tests/invoices/test_invoices_api.py).
"""

from __future__ import annotations

import uuid
from typing import Awaitable, Callable

import pytest

from servicekit.lock_names import invoice_lock
from tests.stack import USER, Stack, call

KEY = "s3cret-" + "x" * 25


@pytest.mark.gen_test(timeout=20)
async def test_writes_without_the_key_are_401_and_change_nothing(
        make_stack: Callable[..., Awaitable[Stack]]) -> None:
    stack = await make_stack(invoices_api_key=KEY)
    order = await stack.create_order()  # orders sends the key
    url = f"{stack.invoices_url}/invoices/{order['invoice_id']}"
    forged = {"Fencing-Token": "9007199254740991"}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY},
                    {"Authorization": f"Basic {KEY}"}):
        for method, body in (("PATCH", {"total": 1}), ("DELETE", None)):
            reply = await call(method, url, body, {**forged, **headers})
            assert reply.status == 401 and reply.error == "unauthorized", (headers, method)
            assert reply.headers["WWW-Authenticate"] == 'Bearer realm="invoices"'
        reply = await call("POST", f"{stack.invoices_url}/invoices",
                           {"user_id": USER, "total": 1}, headers)
        assert reply.status == 401
    stored = await stack.db["invoices"].find_one({"_id": order["invoice_id"]})
    assert stored["fence"] == 0 and await stack.db["invoices"].count_documents({}) == 1


@pytest.mark.gen_test(timeout=20)
async def test_with_the_key_writes_still_need_the_lock_under_their_token(
        make_stack: Callable[..., Awaitable[Stack]]) -> None:
    stack = await make_stack(invoices_api_key=KEY)
    auth = {"Authorization": f"Bearer {KEY}"}
    reply = await call("POST", f"{stack.invoices_url}/invoices",
                       {"user_id": USER, "total": 1, "id": str(uuid.uuid4())}, auth)
    assert reply.status == 201
    invoice_id = reply.json["id"]
    forged = await call("PATCH", f"{stack.invoices_url}/invoices/{invoice_id}", {"total": 2},
                        {**auth, "Fencing-Token": "9007199254740991"})
    assert forged.status == 409 and forged.error == "lock_not_held"
    lease = await stack.lock.acquire(invoice_lock(invoice_id))
    held = await call("PATCH", f"{stack.invoices_url}/invoices/{invoice_id}", {"total": 2},
                      {**auth, "Fencing-Token": str(lease.token)})
    assert held.status == 200
    assert (await call("GET", f"{stack.invoices_url}/invoices/{invoice_id}")).status == 200


@pytest.mark.gen_test(timeout=20)
async def test_orders_works_end_to_end_with_the_key(
        make_stack: Callable[..., Awaitable[Stack]]) -> None:
    stack = await make_stack(invoices_api_key=KEY)
    order = await stack.create_order()
    url = f"{stack.orders_url}/orders/{order['id']}"
    assert (await call("PATCH", url, {"update_time": "2030-01-01T00:00:00Z",
                                      "quantity": 9})).status == 200
    assert (await call("DELETE", url)).status == 204
    assert (await stack.invoice(order["invoice_id"]))["status"] == "deleted"


@pytest.mark.gen_test(timeout=20)
async def test_orders_with_the_wrong_key_gets_424_and_creates_nothing(
        make_stack: Callable[..., Awaitable[Stack]]) -> None:
    stack = await make_stack(invoices_api_key=KEY)
    stack.order_service.invoices.auth = {"Authorization": "Bearer not-the-key"}
    reply = await call("POST", f"{stack.orders_url}/orders", {
        "user_id": USER, "item_id": USER, "quantity": 1, "value": 1})
    assert reply.status == 424
    assert await stack.db["orders"].count_documents({}) == 0
