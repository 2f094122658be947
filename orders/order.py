"""An order: its stored shape, how a new one and a change are made, how it is shown.

Stored in MongoDB's `orders` collection (see `orders.store`)::

    {_id, user_id, item_id, invoice_id, quantity, value_cents, total_cents, status,
     created_us, updated_us, deleted_us, fence, intent?, idempotency_key?, request_hash?}

`status` is "pending" until the order's invoice is confirmed: a pending order is
not visible through the API. `fence` is the highest token the order accepted.
`intent` is an update or delete under way: recorded before the invoice is
called, removed by the order's commit (see `orders.interrupted`)::

    {op: "update"|"delete", token, quantity, value_cents, total_cents, status,
     updated_us | deleted_us, at_us, expires_us}

`request_hash` lets a retried create with the same Idempotency-Key find out
whether it carries the same body: it is made from `REQUEST_FIELDS` by `new`.
"""

from __future__ import annotations

import hashlib
from typing import Any

from servicekit import validate
from servicekit.errors import NotFound

REQUEST_FIELDS = ("user_id", "item_id", "quantity", "value_cents")
# What `updated` and `deleted`, and the checks before them, read of an order.
PLANNED_FROM = ("quantity", "value_cents", "updated_us", "deleted_us")


def new(user_id: str, item_id: str, quantity: int, value_cents: int,
        idempotency_key: str | None) -> dict[str, Any]:
    """A pending order and the id of the invoice it will get (chosen here, so that a
    retried create never makes a second invoice)."""
    now = validate.now_micros()
    doc: dict[str, Any] = {
        "_id": validate.new_id(), "invoice_id": validate.new_id(), "user_id": user_id,
        "item_id": item_id, "quantity": quantity, "value_cents": value_cents,
        "total_cents": quantity * value_cents, "status": "pending", "created_us": now,
        "updated_us": now, "deleted_us": None, "fence": 0}
    if idempotency_key is not None:
        doc["idempotency_key"] = idempotency_key
        doc["request_hash"] = hashlib.sha256(
            repr(tuple(doc[name] for name in REQUEST_FIELDS)).encode()).hexdigest()
    return doc


def updated(order: dict, update_us: int, quantity: int | None,
            value_cents: int | None) -> dict[str, Any]:
    """The fields an update writes: what it was given, the rest as they are."""
    new_quantity = quantity if quantity is not None else order["quantity"]
    new_value = value_cents if value_cents is not None else order["value_cents"]
    return {"quantity": new_quantity, "value_cents": new_value,
            "total_cents": new_quantity * new_value, "status": "updated",
            "updated_us": update_us}


def deleted(deleted_us: int | None = None) -> dict[str, Any]:
    """The fields a delete writes."""
    return {"status": "deleted", "deleted_us": deleted_us or validate.now_micros()}


def visible(doc: dict | None, order_id: str) -> dict:
    """The order as the API may show it; NotFound if it does not exist or is pending."""
    if doc is None or doc["status"] == "pending":
        raise NotFound(f"no order {order_id}")
    return doc


def render(doc: dict) -> dict[str, Any]:
    return {"id": doc["_id"], "user_id": doc["user_id"], "item_id": doc["item_id"],
            "invoice_id": doc["invoice_id"], "quantity": doc["quantity"],
            "value": validate.cents_to_decimal(doc["value_cents"]),
            "total": validate.cents_to_decimal(doc["total_cents"]), "status": doc["status"],
            "created_at": validate.format_micros(doc["created_us"]),
            "updated_at": validate.format_micros(doc["updated_us"]),
            "deleted_at": validate.format_micros(doc["deleted_us"])}
