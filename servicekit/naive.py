"""The key of the UNSAFE naive lock of the chaos demo (orders.naive, invoices.naive)."""


def naive_key(prefix: str, kind: str, name: str) -> str:
    """The key both naive services agree on (the invoice checks only that it exists)."""
    return f"{prefix}:naive:lock:{kind}:{name}"
