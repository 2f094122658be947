"""A battery of malformed requests across every route: each gets a 4xx JSON error with
{error, message}, and nothing in MongoDB or Redis changes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.stack import ITEM, LATER, USER, Stack, call

JSON = {"Content-Type": "application/json"}


def battery(order: dict, base_o: str, base_i: str) -> list[tuple[str, str, Any, dict]]:
    """(method, url, raw body or None, headers)"""
    oid, iid = order["id"], order["invoice_id"]
    order_url, invoice_url = f"{base_o}/orders/{oid}", f"{base_i}/invoices/{iid}"
    raws: list[bytes] = [b"", b"{", b"[]", b"null", b"42", b'"x"', b"{'a': 1}", b"\xff",
                         b'{"a": NaN}', b'{"a": Infinity}', b"{}" * 2, b"[" * 5000]
    cases: list[tuple[str, str, Any, dict]] = []
    for raw in raws:
        for method, url in (("POST", f"{base_o}/orders"), ("PATCH", order_url),
                            ("POST", f"{base_i}/invoices"), ("PATCH", invoice_url)):
            headers = dict(JSON)
            if url == invoice_url:
                headers["Fencing-Token"] = "1"
            cases.append((method, url, raw, headers))
    bad_orders = [
        {}, {"user_id": USER}, {"user_id": USER, "item_id": ITEM, "quantity": 1},
        {"user_id": USER, "item_id": ITEM, "quantity": 1, "value": 1, "extra": 1},
        {"user_id": "", "item_id": ITEM, "quantity": 1, "value": 1},
        {"user_id": USER.upper() + "0", "item_id": ITEM, "quantity": 1, "value": 1},
        {"user_id": {"$ne": None}, "item_id": ITEM, "quantity": 1, "value": 1},
        {"user_id": USER, "item_id": ITEM, "quantity": -1, "value": 1},
        {"user_id": USER, "item_id": ITEM, "quantity": 10**20, "value": 1},
        {"user_id": USER, "item_id": ITEM, "quantity": 1.0, "value": 1},
        {"user_id": USER, "item_id": ITEM, "quantity": True, "value": 1},
        {"user_id": USER, "item_id": ITEM, "quantity": 1, "value": 1e400},
        {"user_id": USER, "item_id": ITEM, "quantity": 1, "value": "1"},
        {"user_id": USER, "item_id": ITEM, "quantity": 1, "value": 0.001},
        {"user_id": USER, "item_id": ITEM, "quantity": 1, "value": 1000000000.01},
        {"user_id": USER, "item_id": ITEM, "quantity": 1, "value": [1]},
        {"$where": "1", "user_id": USER, "item_id": ITEM, "quantity": 1, "value": 1},
    ]
    for body in bad_orders:
        cases.append(("POST", f"{base_o}/orders", body, JSON))
    bad_updates = [
        {}, {"update_time": LATER}, {"quantity": 2}, {"update_time": "", "quantity": 2},
        {"update_time": "2030-01-01", "quantity": 2},
        {"update_time": "2030-01-01T00:00:00", "quantity": 2},
        {"update_time": "2030-13-01T00:00:00Z", "quantity": 2},
        {"update_time": "2030-01-01T25:00:00Z", "quantity": 2},
        {"update_time": "2030-01-01T00:00:00.1234567Z", "quantity": 2},
        {"update_time": "2030-01-01 00:00:00Z", "quantity": 2},
        {"update_time": 0, "quantity": 2}, {"update_time": None, "quantity": 2},
        {"update_time": LATER, "quantity": 0}, {"update_time": LATER, "value": -5},
        {"update_time": LATER, "value": 0}, {"update_time": LATER, "quantity": "2"},
        {"update_time": LATER, "quantity": 2, "total": 3},
        {"update_time": LATER, "quantity": 2, "status": "deleted"},
        {"update_time": {"$gt": ""}, "quantity": 2},
    ]
    for body in bad_updates:
        cases.append(("PATCH", order_url, body, JSON))
    bad_invoices = [
        {}, {"user_id": USER}, {"total": 1}, {"user_id": USER, "total": -0.01},
        {"user_id": USER, "total": 10**15 + 1}, {"user_id": USER, "total": 1, "id": "x"},
        {"user_id": USER, "total": 1, "id": iid, "status": "paid"},
        {"user_id": USER, "total": 0.005},
    ]
    for body in bad_invoices:
        cases.append(("POST", f"{base_i}/invoices", body, JSON))
    for token in (None, "", "0", "-1", "abc", "1.0", "0x10", " 5 6", "9" * 25, "+5"):
        headers = dict(JSON) if token is None else {**JSON, "Fencing-Token": token}
        cases.append(("PATCH", invoice_url, {"total": 1}, headers))
        cases.append(("DELETE", invoice_url, None,
                      {} if token is None else {"Fencing-Token": token}))
    for body in ({}, {"total": -1}, {"total": "1"}, {"total": 1, "user_id": USER}):
        cases.append(("PATCH", invoice_url, body, {**JSON, "Fencing-Token": "1"}))
    for path in ("/orders/x", "/orders/" + USER, "/orders/" + oid + "/x", "/orders//",
                 "/invoices/1", "/invoices/" + USER, "/nope", "/orders/%00"):
        base = base_i if path.startswith("/invoices") else base_o
        for method in ("GET", "PATCH", "DELETE"):
            cases.append((method, base + path, {"total": 1} if method == "PATCH" else None,
                          {**JSON, "Fencing-Token": "1"}))
    for method, url in (("PUT", order_url), ("POST", order_url), ("GET", f"{base_o}/orders"),
                        ("PUT", invoice_url), ("POST", invoice_url),
                        ("DELETE", f"{base_i}/invoices")):
        cases.append((method, url, {}, JSON))
    for content_type in ("text/plain", "application/xml", "multipart/form-data"):
        cases.append(("POST", f"{base_o}/orders", b'{"user_id": 1}',
                      {"Content-Type": content_type}))
    cases.append(("POST", f"{base_o}/orders", b'{"a": "' + b"x" * 70_000 + b'"}', JSON))
    cases.append(("POST", f"{base_o}/orders",
                  {"user_id": USER, "item_id": ITEM, "quantity": 1, "value": 1},
                  {**JSON, "Idempotency-Key": "k" * 201}))
    return cases


async def snapshot(stack: Stack) -> tuple[list, list, list]:
    orders = [doc async for doc in stack.db["orders"].find({})]
    invoices = [doc async for doc in stack.db["invoices"].find({})]
    keys = sorted([key async for key in stack.lock.redis.scan_iter(
        f"{stack.settings.lock_prefix}:*")])
    return orders, invoices, keys


@pytest.mark.gen_test(timeout=120)
async def test_a_battery_of_malformed_requests_gets_4xx_and_changes_nothing(
        stack: Stack) -> None:
    order = await stack.create_order()
    cases = battery(order, stack.orders_url, stack.invoices_url)
    assert len(cases) >= 100
    before = await snapshot(stack)
    for method, url, body, headers in cases:
        raw = body if isinstance(body, bytes) else None
        reply = await call(method, url, None if raw is not None else body, headers, raw=raw)
        assert 400 <= reply.status < 500, (method, url, body, headers, reply.status, reply.body)
        error = reply.json
        assert set(error) >= {"error", "message"} and error["message"], (method, url, body)
        assert reply.headers["Content-Type"].startswith("application/json")
    after = await snapshot(stack)
    assert after[0] == before[0] and after[1] == before[1]
    assert [key for key in after[2] if b":lock:" in key] == []
