"""The lock names both services must agree on besides HTTP: an invoice's, and its order's.

Orders takes the lease on the pair (the order's lock and its invoice's, in one
acquire) and sends the lease's token; invoices accepts a write only while Redis
holds the invoice's name under that token. Written once here, so the two
cannot drift apart.

Both names carry the invoice's hash tag: resources locked together must share
one on a Redis Cluster (one slot for the script), and the invoice service,
which knows only the invoice id, derives the same name. Each pair has a tag of
its own, so the pairs spread over the cluster's masters.
"""


def pair_tag(invoice_id: str) -> str:
    """The hash tag an invoice and its order share."""
    return f"{{invoice:{invoice_id}}}"


def invoice_lock(invoice_id: str) -> str:
    """The lock name of an invoice."""
    return f"{pair_tag(invoice_id)}:invoice"


def order_lock(order_id: str, invoice_id: str) -> str:
    """The lock name of an order, beside its invoice's."""
    return f"{pair_tag(invoice_id)}:order:{order_id}"
