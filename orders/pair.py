"""An order and its invoice, leased as one pair: the one place their lock names are built."""

from __future__ import annotations

from orders.order import Order
from servicekit.lock_names import invoice_lock, order_lock


def resources(order: Order) -> tuple[str, str]:
    """The lock names of an order and its invoice (the invoice service checks the second)."""
    return order_lock(order["_id"], order["invoice_id"]), invoice_lock(order["invoice_id"])
