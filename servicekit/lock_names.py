"""The lock names both services must agree on besides HTTP: an invoice's, and its order's.

Orders takes the lease on the pair (the order's lock and its invoice's, in one
acquire) and sends the lease's token; invoices accepts a write only while Redis
holds the invoice's name under that token. Written once here, so the two
cannot drift apart.

Both names carry the invoice id as their hash tag, `invoice:{<id>}` and
`order:<id>:{<invoice id>}`: resources locked together must share one on a
Redis Cluster (one slot for the acquire's script), and the invoice service,
which knows only the invoice id, derives the same name. Each pair has a tag of
its own, so the pairs spread over the cluster's masters.
"""


def pair_tag(invoice_id: str) -> str:
    """The hash tag an invoice and its order share, braces included."""
    return f"{{{invoice_id}}}"


def invoice_lock(invoice_id: str) -> str:
    """The lock name of an invoice."""
    return f"invoice:{pair_tag(invoice_id)}"


def order_lock(order_id: str, invoice_id: str) -> str:
    """The lock name of an order, tagged with its invoice's id."""
    return f"order:{order_id}:{pair_tag(invoice_id)}"
