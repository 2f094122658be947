"""The invoices service, route by route, as the contract's table says."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from servicekit.lock_names import invoice_lock
from tests.stack import USER, Stack, call


async def create_invoice(stack: Stack, total: object = "12.30", **fields: object) -> dict:
    reply = await call("POST", f"{stack.invoices_url}/invoices",
                       {"user_id": USER, "total": Decimal(str(total)), **fields})
    assert reply.status == 201, reply.body
    invoice: dict = reply.json
    return invoice


async def lease_on(stack: Stack, invoice_id: str) -> int:
    lease = await stack.lock.acquire(invoice_lock(invoice_id))
    assert lease is not None
    return int(lease.token)


def patch(stack: Stack, invoice_id: str, body: object, token: object = None) -> object:
    headers = {} if token is None else {"Fencing-Token": str(token)}
    return call("PATCH", f"{stack.invoices_url}/invoices/{invoice_id}", body, headers)


@pytest.mark.gen_test(timeout=20)
async def test_create_returns_the_invoice_and_its_location(stack: Stack) -> None:
    reply = await call("POST", f"{stack.invoices_url}/invoices",
                       {"user_id": USER, "total": Decimal("12.30")})
    assert reply.status == 201
    invoice = reply.json
    assert reply.headers["Location"] == f"/invoices/{invoice['id']}"
    assert uuid.UUID(invoice["id"])
    assert invoice["user_id"] == USER and invoice["total"] == Decimal("12.3")
    assert invoice["status"] == "created" and invoice["deleted_at"] is None
    assert invoice["created_at"].endswith("Z") and invoice["updated_at"].endswith("Z")
    assert (await stack.invoice(invoice["id"])) == invoice


@pytest.mark.gen_test(timeout=20)
async def test_create_with_a_chosen_id_is_idempotent(stack: Stack) -> None:
    chosen = str(uuid.uuid4())
    first = await create_invoice(stack, id=chosen)
    again = await create_invoice(stack, id=chosen)
    assert first == again and first["id"] == chosen
    assert await stack.db["invoices"].count_documents({}) == 1


@pytest.mark.gen_test(timeout=20)
async def test_a_chosen_id_taken_by_another_user_is_refused(stack: Stack) -> None:
    chosen = str(uuid.uuid4())
    await create_invoice(stack, id=chosen)
    reply = await call("POST", f"{stack.invoices_url}/invoices",
                       {"user_id": str(uuid.uuid4()), "total": 1, "id": chosen})
    assert reply.status == 422 and reply.error == "validation_error"
    assert "id" in reply.json["message"]


@pytest.mark.gen_test(timeout=20)
@pytest.mark.parametrize("total, accepted", [
    ("0", "0"), ("0.1", "0.1"), ("1000000000000000", "1000000000000000"),
    ("999999999999999.99", "999999999999999.99")])
async def test_totals_are_exact_to_the_cent_up_to_ten_to_the_fifteen(
        stack: Stack, total: str, accepted: str) -> None:
    invoice = await create_invoice(stack, total=total)
    assert invoice["total"] == Decimal(accepted)
    assert (await stack.invoice(invoice["id"]))["total"] == Decimal(accepted)


@pytest.mark.gen_test(timeout=20)
@pytest.mark.parametrize("body, field", [
    ({"total": 1}, "user_id"),
    ({"user_id": USER}, "total"),
    ({"user_id": "not-a-uuid", "total": 1}, "user_id"),
    ({"user_id": USER, "total": -1}, "total"),
    ({"user_id": USER, "total": Decimal("0.001")}, "total"),
    ({"user_id": USER, "total": Decimal("1000000000000000.01")}, "total"),
    ({"user_id": USER, "total": "12"}, "total"),
    ({"user_id": USER, "total": True}, "total"),
    ({"user_id": USER, "total": None}, "total"),
    ({"user_id": USER, "total": 1, "id": "nope"}, "id"),
    ({"user_id": USER, "total": 1, "status": "paid"}, "status"),
])
async def test_a_bad_create_is_422_naming_the_field_and_stores_nothing(
        stack: Stack, body: dict, field: str) -> None:
    reply = await call("POST", f"{stack.invoices_url}/invoices", body)
    assert reply.status == 422 and reply.error == "validation_error"
    assert field in reply.json["message"]
    assert await stack.db["invoices"].count_documents({}) == 0


@pytest.mark.gen_test(timeout=20)
@pytest.mark.parametrize("path", ["/invoices/" + str(uuid.UUID(int=7)), "/invoices/42",
                                  "/invoices/not-an-id"])
async def test_an_unknown_or_malformed_id_is_404(stack: Stack, path: str) -> None:
    reply = await call("GET", stack.invoices_url + path)
    assert reply.status == 404 and reply.error == "not_found"
    reply = await call("PATCH", stack.invoices_url + path, {"total": 1}, {"Fencing-Token": "5"})
    assert reply.status == 404 and reply.error == "not_found"


@pytest.mark.gen_test(timeout=20)
async def test_a_write_by_the_lock_holder_is_accepted(stack: Stack) -> None:
    invoice = await create_invoice(stack)
    token = await lease_on(stack, invoice["id"])
    reply = await patch(stack, invoice["id"], {"total": Decimal("99.99")}, token)
    assert reply.status == 200
    assert reply.json["total"] == Decimal("99.99") and reply.json["status"] == "updated"
    again = await patch(stack, invoice["id"], {"total": Decimal("99.98")}, token)
    assert again.status == 200, "the same token may write again (a retry by its holder)"
    stored = await stack.db["invoices"].find_one({"_id": invoice["id"]})
    assert stored["fence"] == token and stored["total_cents"] == 9998


@pytest.mark.gen_test(timeout=20)
async def test_a_write_without_a_token_is_428(stack: Stack) -> None:
    invoice = await create_invoice(stack)
    reply = await patch(stack, invoice["id"], {"total": 1})
    assert reply.status == 428 and reply.error == "fencing_token_required"
    reply = await call("DELETE", f"{stack.invoices_url}/invoices/{invoice['id']}")
    assert reply.status == 428 and reply.error == "fencing_token_required"
    assert await stack.invoice(invoice["id"]) == invoice


@pytest.mark.gen_test(timeout=20)
@pytest.mark.parametrize("token", ["abc", "0", "-3", "1.5", "07", "", "9" * 30, "\u00b2"])
async def test_a_token_that_is_not_a_positive_integer_is_400(stack: Stack, token: str) -> None:
    invoice = await create_invoice(stack)
    reply = await patch(stack, invoice["id"], {"total": 1}, token)
    assert reply.status == 400 and reply.error == "invalid_header"
    assert await stack.invoice(invoice["id"]) == invoice


@pytest.mark.gen_test(timeout=20)
async def test_a_token_redis_does_not_hold_is_lock_not_held(stack: Stack) -> None:
    invoice = await create_invoice(stack)
    reply = await patch(stack, invoice["id"], {"total": 1}, 12345)
    assert reply.status == 409 and reply.error == "lock_not_held"
    token = await lease_on(stack, invoice["id"])
    reply = await patch(stack, invoice["id"], {"total": 1}, token + 1)
    assert reply.status == 409 and reply.error == "lock_not_held"
    assert await stack.invoice(invoice["id"]) == invoice


@pytest.mark.gen_test(timeout=20)
async def test_a_paused_holders_late_write_is_stale_and_the_new_holders_stands(
        stack: Stack) -> None:
    """Kleppmann's scenario through the invoices API."""
    invoice = await create_invoice(stack)
    paused = await stack.lock.acquire(invoice_lock(invoice['id']))
    assert paused is not None
    await stack.lock.redis.delete(*[key async for key in stack.lock.redis.scan_iter(
        f"{stack.settings.lock_prefix}:*:lock:*")])  # the paused holder's lease ran out
    current = await lease_on(stack, invoice["id"])
    assert (await patch(stack, invoice["id"], {"total": 2}, current)).status == 200

    late = await patch(stack, invoice["id"], {"total": 1}, paused.token)
    assert late.status == 409 and late.error == "stale_token"
    assert late.json["current_token"] == current
    assert (await stack.invoice(invoice["id"]))["total"] == 2


@pytest.mark.gen_test(timeout=20)
async def test_delete_is_fenced_and_can_be_repeated(stack: Stack) -> None:
    invoice = await create_invoice(stack)
    earlier = await stack.lock.acquire(invoice_lock(invoice['id']))
    assert earlier is not None and await stack.lock.release(earlier)
    token = await lease_on(stack, invoice["id"])
    url = f"{stack.invoices_url}/invoices/{invoice['id']}"
    reply = await call("DELETE", url, headers={"Fencing-Token": str(token)})
    assert reply.status == 204 and reply.body == b""
    deleted = await stack.invoice(invoice["id"])
    assert deleted["status"] == "deleted" and deleted["deleted_at"] is not None
    again = await call("DELETE", url, headers={"Fencing-Token": str(token)})
    assert again.status == 204
    assert await stack.invoice(invoice["id"]) == deleted
    stale = await call("DELETE", url, headers={"Fencing-Token": str(earlier.token)})
    assert stale.status == 409 and stale.error == "stale_token"


@pytest.mark.gen_test(timeout=20)
async def test_a_deleted_invoice_keeps_its_status_when_its_total_is_brought_back(
        stack: Stack) -> None:
    invoice = await create_invoice(stack)
    token = await lease_on(stack, invoice["id"])
    url = f"{stack.invoices_url}/invoices/{invoice['id']}"
    assert (await call("DELETE", url, headers={"Fencing-Token": str(token)})).status == 204
    reply = await patch(stack, invoice["id"], {"total": 7}, token)
    assert reply.status == 200
    assert reply.json["status"] == "deleted" and reply.json["total"] == 7


@pytest.mark.gen_test(timeout=20)
async def test_delete_checks_its_token_as_patch_does(stack: Stack) -> None:
    invoice = await create_invoice(stack)
    url = f"{stack.invoices_url}/invoices/{invoice['id']}"
    bad = await call("DELETE", url, headers={"Fencing-Token": "x1"})
    assert bad.status == 400 and bad.error == "invalid_header"
    not_held = await call("DELETE", url, headers={"Fencing-Token": "77"})
    assert not_held.status == 409 and not_held.error == "lock_not_held"
    unknown = await call("DELETE", f"{stack.invoices_url}/invoices/{uuid.uuid4()}",
                         headers={"Fencing-Token": "77"})
    assert unknown.status == 404 and unknown.error == "not_found"
    assert await stack.invoice(invoice["id"]) == invoice
