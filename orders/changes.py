"""What an update or a delete writes to an order: the fields each changes.

Their own module because two others need them and not each other: the order
(`orders.order` builds and commits them) and the intent (`orders.intent`
records them before the invoice is called).
"""

from __future__ import annotations

from typing import Literal, TypedDict

Status = Literal["pending", "created", "updated", "deleted"]


class UpdateChanges(TypedDict):
    """The fields an update writes."""
    quantity: int
    value_cents: int
    total_cents: int
    status: Status
    updated_us: int


class DeleteChanges(TypedDict):
    """The fields a delete writes."""
    status: Status
    deleted_us: int


Changes = UpdateChanges | DeleteChanges
