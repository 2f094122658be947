"""An order: its stored shape, how a new one and a change are made, how it is shown.

Stored in MongoDB's `orders` collection (see `orders.store`) as `Order`.
`status` is "pending" until the order's invoice is confirmed: a pending order is
not visible through the API. `fence` is the highest token the order accepted.
`intent` is an update or delete under way (`orders.intent`). `request_hash` lets
a retried create with the same Idempotency-Key find out whether it carries the
same body: it is made from every field of `OrderRequest` by `new_order`.

TypedDicts, not dataclasses: an order goes to MongoDB and comes back as a dict, so
the type costs nothing at run time and no conversion sits between a store call
and its document; mypy still checks every key. Adding a field: `OrderRequest`
(what a client sends, the handler parses it), `Order`, `render`, and, if the
invoice needs it, `invoice_request`.
"""

from __future__ import annotations

import hashlib
from typing import NotRequired, TypedDict

from orders.changes import Changes, DeleteChanges, Status, UpdateChanges
from orders.intent import Intent
from servicekit import validate
from servicekit.errors import NotFound
from servicekit.invoices_client import InvoiceRequest


class OrderRequest(TypedDict):
    """What a create asks for, as the handler parsed it."""
    user_id: str
    item_id: str
    quantity: int
    value_cents: int


# Everything a create asks for is part of what makes a retry "the same request".
REQUEST_FIELDS = tuple(OrderRequest.__annotations__)


class Order(TypedDict):
    _id: str
    user_id: str
    item_id: str
    invoice_id: str
    quantity: int
    value_cents: int
    total_cents: int
    status: Status
    created_us: int
    updated_us: int
    deleted_us: int | None
    fence: int
    intent: NotRequired[Intent]
    idempotency_key: NotRequired[str]
    request_hash: NotRequired[str]


def new_order(request: OrderRequest, idempotency_key: str | None) -> Order:
    """A pending order and the id of the invoice it will get (chosen here, so that a
    retried create never makes a second invoice)."""
    now = validate.now_micros()
    doc: Order = {
        "_id": validate.new_id(), "invoice_id": validate.new_id(), **request,
        "total_cents": request["quantity"] * request["value_cents"], "status": "pending",
        "created_us": now, "updated_us": now, "deleted_us": None, "fence": 0}
    if idempotency_key is not None:
        doc["idempotency_key"] = idempotency_key
        doc["request_hash"] = hashlib.sha256(
            repr(tuple(request[name] for name in REQUEST_FIELDS)).encode()  # type: ignore
        ).hexdigest()
    return doc


def invoice_request(order: Order) -> InvoiceRequest:
    """The invoice an order's creation asks for."""
    return {"invoice_id": order["invoice_id"], "user_id": order["user_id"],
            "total_cents": order["total_cents"]}


def update_changes(order: Order, update_us: int, quantity: int | None,
                   value_cents: int | None) -> UpdateChanges:
    """What it was given, the rest as they are."""
    new_quantity = quantity if quantity is not None else order["quantity"]
    new_value = value_cents if value_cents is not None else order["value_cents"]
    return {"quantity": new_quantity, "value_cents": new_value,
            "total_cents": new_quantity * new_value, "status": "updated",
            "updated_us": update_us}


def delete_changes(deleted_us: int | None = None) -> DeleteChanges:
    return {"status": "deleted", "deleted_us": deleted_us or validate.now_micros()}


def as_committed(order: Order, token: int, changes: Changes | None = None) -> Order:
    """`order` as a commit under `token` leaves it: with `changes`, its intent gone."""
    doc: Order = {**order, **(changes or {}), "fence": token}  # type: ignore[typeddict-item]
    doc.pop("intent", None)
    return doc


def visible(doc: Order | None, order_id: str) -> Order:
    """The order as the API may show it; NotFound if it does not exist or is pending."""
    if doc is None or doc["status"] == "pending":
        raise NotFound(f"no order {order_id}")
    return doc


def render(doc: Order) -> dict[str, object]:
    return {"id": doc["_id"], "user_id": doc["user_id"], "item_id": doc["item_id"],
            "invoice_id": doc["invoice_id"], "quantity": doc["quantity"],
            "value": validate.cents_to_decimal(doc["value_cents"]),
            "total": validate.cents_to_decimal(doc["total_cents"]), "status": doc["status"],
            "created_at": validate.format_micros(doc["created_us"]),
            "updated_at": validate.format_micros(doc["updated_us"]),
            "deleted_at": validate.format_micros(doc["deleted_us"])}
