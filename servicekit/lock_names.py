"""The one name both services must agree on besides HTTP: the lock of an invoice.

Orders takes the lease on it (with the order's own lock) and sends the lease's
token; invoices accepts a write only while Redis holds this name under that
token. Written once here, so the two cannot drift apart.
"""


def invoice_lock(invoice_id: str) -> str:
    """The lock name of an invoice."""
    return f"invoice:{invoice_id}"
