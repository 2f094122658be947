"""An invoice: its stored shape, how a new one and a change are made, how it is shown.

Stored in MongoDB's `invoices` collection (see `invoices.store`)::

    {_id, user_id, total_cents, status, created_us, updated_us, deleted_us, fence}

`status` is "created", then "updated" by a change of total, or "deleted" (a
deleted invoice keeps that status when a late change of total still lands).
`fence` is the highest token the invoice accepted.

The shapes are TypedDicts, not dataclasses: an invoice is what MongoDB stores
and answers, a dict; typing that dict lets mypy check every key a reader or a
writer names, without a conversion at each side of the store. Adding a field
is one key in `Invoice` (and `Changes` if a write sets it) and one in
`Rendered`; mypy then points at `new` and `render`, which must fill them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal, TypedDict

from servicekit import validate

Status = Literal["created", "updated", "deleted"]


class Invoice(TypedDict):
    _id: str
    user_id: str
    total_cents: int
    status: Status
    created_us: int
    updated_us: int
    deleted_us: int | None
    fence: int


class Changes(TypedDict, total=False):
    """The fields one write sets (the fence is the store's to move)."""

    total_cents: int
    status: Status
    updated_us: int
    deleted_us: int


class Rendered(TypedDict):
    """An invoice as the API shows it."""

    id: str
    user_id: str
    total: Decimal
    status: Status
    created_at: str | None
    updated_at: str | None
    deleted_at: str | None


def new(invoice_id: str | None, user_id: str, total_cents: int) -> Invoice:
    """An invoice not yet stored; its id is the caller's, so that a retried create
    finds the one it made, or a new one."""
    now = validate.now_micros()
    return {"_id": invoice_id or validate.new_id(), "user_id": user_id,
            "total_cents": total_cents, "status": "created", "created_us": now,
            "updated_us": now, "deleted_us": None, "fence": 0}


def total_changed(total_cents: int) -> Changes:
    """What a change of total writes; "updated" is added only where the invoice is not
    deleted (see `invoices.service`)."""
    return {"total_cents": total_cents, "updated_us": validate.now_micros()}


def deleted() -> Changes:
    now = validate.now_micros()
    return {"status": "deleted", "deleted_us": now, "updated_us": now}


def render(doc: Invoice) -> Rendered:
    return {"id": doc["_id"], "user_id": doc["user_id"],
            "total": validate.cents_to_decimal(doc["total_cents"]), "status": doc["status"],
            "created_at": validate.format_micros(doc["created_us"]),
            "updated_at": validate.format_micros(doc["updated_us"]),
            "deleted_at": validate.format_micros(doc["deleted_us"])}
