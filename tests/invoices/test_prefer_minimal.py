"""PATCH /invoices/{id} with `Prefer: return=minimal` (RFC 7240): 204, nothing read back.

Orders sends it: it knows the total it sent, so the invoice need not be read back
from the store. Without the preference the answer is 200 with the invoice."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.invoices.test_invoices_api import create_invoice, lease_on
from tests.stack import Stack, call


@pytest.mark.gen_test(timeout=20)
@pytest.mark.parametrize("prefer", ["return=minimal", "respond-async, return=minimal",
                                    "RETURN = minimal; x=1"])
async def test_return_minimal_is_204_and_the_write_happens(stack: Stack, prefer: str) -> None:
    invoice = await create_invoice(stack)
    token = await lease_on(stack, invoice["id"])
    url = f"{stack.invoices_url}/invoices/{invoice['id']}"
    reply = await call("PATCH", url, {"total": 7},
                       {"Fencing-Token": str(token), "Prefer": prefer})
    assert reply.status == 204 and reply.body == b""
    assert reply.headers["Preference-Applied"] == "return=minimal"
    stored = (await call("GET", url)).json
    assert stored["total"] == Decimal(7) and stored["status"] == "updated"


@pytest.mark.gen_test(timeout=20)
async def test_without_it_or_with_another_preference_the_invoice_is_returned(
        stack: Stack) -> None:
    invoice = await create_invoice(stack)
    token = await lease_on(stack, invoice["id"])
    url = f"{stack.invoices_url}/invoices/{invoice['id']}"
    for headers in ({}, {"Prefer": "return=representation"}):
        reply = await call("PATCH", url, {"total": 8}, {"Fencing-Token": str(token), **headers})
        assert reply.status == 200 and reply.json["total"] == Decimal(8)
        assert "Preference-Applied" not in reply.headers


@pytest.mark.gen_test(timeout=20)
async def test_a_refused_write_is_refused_the_same_with_return_minimal(stack: Stack) -> None:
    invoice = await create_invoice(stack)
    first = await lease_on(stack, invoice["id"])
    url = f"{stack.invoices_url}/invoices/{invoice['id']}"
    reply = await call("PATCH", url, {"total": 9},
                       {"Fencing-Token": str(first + 1), "Prefer": "return=minimal"})
    assert reply.status == 409 and reply.error == "lock_not_held"
    assert (await call("GET", url)).json["total"] == invoice["total"]
