"""The errors only orders answers with, beside the shared ones (`servicekit.errors`).

::

    ServiceError (servicekit)
    ├── Conflict (servicekit)
    │   ├── EventOutdated             409 event_outdated
    │   └── OrderDeleted              409 order_deleted
    ├── IdempotencyKeyReused          422 idempotency_key_reused
    ├── Locked                        423 locked (+ Retry-After)
    └── InvoiceFailed                 424 invoice_failed (servicekit.invoices_client)
"""

from __future__ import annotations

from servicekit import errors
from servicekit.errors import Conflict, ServiceError
from servicekit.invoices_client import ERROR_ROWS, InvoiceFailed

__all__ = ["ERROR_TABLE", "EventOutdated", "IdempotencyKeyReused", "InvoiceFailed", "Locked",
           "OrderDeleted"]


class EventOutdated(Conflict):
    pass


class OrderDeleted(Conflict):
    pass


class IdempotencyKeyReused(ServiceError):
    pass


class Locked(ServiceError):
    pass


ERROR_TABLE: errors.ErrorTable = {
    **errors.ERROR_TABLE,
    EventOutdated: (409, "event_outdated", None),
    OrderDeleted: (409, "order_deleted", None),
    IdempotencyKeyReused: (422, "idempotency_key_reused", None),
    Locked: (423, "locked", errors.RETRY_AFTER_SECONDS),
    **ERROR_ROWS,
}
