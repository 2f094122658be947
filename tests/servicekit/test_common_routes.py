"""What both services share: health routes, and the errors every route answers alike."""

from __future__ import annotations

import pytest

from tests.stack import ITEM, USER, Stack, call


def both(stack: Stack) -> list[str]:
    return [stack.orders_url, stack.invoices_url]


@pytest.mark.gen_test(timeout=20)
async def test_health_ping_and_ready_answer_on_both_services(stack: Stack) -> None:
    for base in both(stack):
        assert (await call("GET", f"{base}/health")).json == {"status": "ok"}
        assert (await call("GET", f"{base}/ping")).json == {"message": "pong"}
        ready = await call("GET", f"{base}/ready")
        assert ready.status == 200 and ready.json == {"status": "ready"}


@pytest.mark.gen_test(timeout=20)
async def test_an_unknown_route_is_a_json_404(stack: Stack) -> None:
    for base in both(stack):
        reply = await call("GET", f"{base}/nothing/here")
        assert reply.status == 404 and reply.error == "not_found"
        assert reply.headers["Content-Type"].startswith("application/json")


@pytest.mark.gen_test(timeout=20)
@pytest.mark.parametrize("method, path", [
    ("PUT", "/orders"), ("DELETE", "/orders"), ("GET", "/orders"), ("POST", "/health"),
    ("PUT", "/invoices"), ("GET", "/invoices"), ("POST", "/ping")])
async def test_a_method_the_route_lacks_is_405(stack: Stack, method: str, path: str) -> None:
    base = stack.invoices_url if path.startswith("/invoices") else stack.orders_url
    reply = await call(method, base + path, raw=b"{}" if method in ("PUT", "POST") else None,
                       headers={"Content-Type": "application/json"})
    assert reply.status == 405 and reply.error == "method_not_allowed"
    allowed = set(reply.headers["Allow"].split(", "))
    assert method not in allowed and allowed & {"GET", "POST"}


@pytest.mark.gen_test(timeout=20)
@pytest.mark.parametrize("raw", [b"{", b"not json", b"[1, 2]", b'"text"', b"12", b"null",
                                 b"\xff\xfe", b'{"quantity": NaN}', b"[" * 60_000,
                                 b'{"a": 1} trailing', b""])
async def test_a_body_that_is_not_a_json_object_is_400(stack: Stack, raw: bytes) -> None:
    for url in (f"{stack.orders_url}/orders", f"{stack.invoices_url}/invoices"):
        reply = await call("POST", url, raw=raw, headers={"Content-Type": "application/json"})
        assert reply.status == 400 and reply.error == "invalid_json", (url, reply.body)
    assert await stack.db["orders"].count_documents({}) == 0


@pytest.mark.gen_test(timeout=20)
async def test_a_body_over_64_kib_is_413(stack: Stack) -> None:
    raw = b'{"user_id": "' + b"x" * (64 * 1024) + b'"}'
    for url in (f"{stack.orders_url}/orders", f"{stack.invoices_url}/invoices"):
        reply = await call("POST", url, raw=raw, headers={"Content-Type": "application/json"})
        assert reply.status == 413 and reply.error == "payload_too_large"


@pytest.mark.gen_test(timeout=20)
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "application/jsonp", None])
async def test_a_body_of_another_media_type_is_415(stack: Stack, content_type: str | None) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    raw = b'{"user_id": "%s", "item_id": "%s", "quantity": 1, "value": 1}' % (
        USER.encode(), ITEM.encode())
    reply = await call("POST", f"{stack.orders_url}/orders", raw=raw, headers=headers)
    assert reply.status == 415 and reply.error == "unsupported_media_type"
    assert await stack.db["orders"].count_documents({}) == 0


@pytest.mark.gen_test(timeout=20)
async def test_json_with_a_charset_is_accepted(stack: Stack) -> None:
    raw = b'{"user_id": "%s", "total": 1}' % USER.encode()
    reply = await call("POST", f"{stack.invoices_url}/invoices", raw=raw,
                       headers={"Content-Type": "Application/JSON; charset=utf-8"})
    assert reply.status == 201


@pytest.mark.gen_test(timeout=30)
async def test_no_malformed_input_gets_a_5xx(stack: Stack) -> None:
    """A small fuzz over shapes of bodies, headers and paths: every answer is below 500."""
    values = [None, True, 0, -1, 1.5, 10**30, "", "x" * 500, [], {}, {"$gt": 0}, "\u0000",
              "2030-01-01T00:00:00Z", USER]
    order = await stack.create_order()
    statuses = set()
    for value in values:
        bodies = [{"user_id": value, "item_id": ITEM, "quantity": 1, "value": 1},
                  {"user_id": USER, "item_id": ITEM, "quantity": value, "value": value},
                  {"update_time": value, "quantity": value}, {"update_time": value},
                  {"total": value}, {"user_id": USER, "total": value, "id": value},
                  {str(value): value}]
        for body in bodies:
            for method, url, headers in (
                    ("POST", f"{stack.orders_url}/orders", {"Idempotency-Key": "k" * 300}),
                    ("POST", f"{stack.invoices_url}/invoices", {}),
                    ("PATCH", f"{stack.orders_url}/orders/{order['id']}", {}),
                    ("PATCH", f"{stack.invoices_url}/invoices/{order['invoice_id']}",
                     {"Fencing-Token": str(value)[:100]})):
                reply = await call(method, url, body, headers)
                statuses.add(reply.status)
                assert reply.status < 500, (method, url, body, reply.body)
    assert (await call("GET", f"{stack.orders_url}/orders/{order['id']}")).json == order
    assert statuses <= {400, 404, 409, 422}
