"""UNSAFE: the Go original's invoice writes, for the chaos demo only (see orders.naive).

A write is accepted when a lock key for the invoice exists, whoever set it, and
it is written unconditionally: the Fencing-Token header is ignored.
"""

from __future__ import annotations

from typing import Any, cast

from invoices import invoice
from invoices.errors import LockNotHeld
from invoices.invoice import Changes, Invoice
from invoices.service import InvoiceService
from servicekit.errors import NotFound
from servicekit.mongo_update import update_then_read
from servicekit.naive import naive_key


class NaiveInvoiceService(InvoiceService):
    def __init__(self, *args: Any, redis: Any, prefix: str) -> None:
        super().__init__(*args)
        self.redis = redis
        self.prefix = prefix

    async def update_total(self, invoice_id: str, token: int, total_cents: int,
                           read_back: bool = True) -> Invoice:
        """Read back in any case, as the original does."""
        await self._lock_exists(invoice_id)
        return await self._write(invoice_id, invoice.total_changed(total_cents))

    async def delete(self, invoice_id: str, token: int) -> None:
        await self._lock_exists(invoice_id)
        await self._write(invoice_id, invoice.deleted())

    async def _lock_exists(self, invoice_id: str) -> None:
        if not await self.redis.exists(naive_key(self.prefix, "invoice", invoice_id)):
            raise LockNotHeld(f"no lock on invoice {invoice_id}")

    async def _write(self, invoice_id: str, changes: Changes) -> Invoice:
        doc = await update_then_read(self.store.invoices, {"_id": invoice_id},
                                     {"$set": changes})
        if doc is None:
            raise NotFound(f"no invoice {invoice_id}")
        await self.faults.point("invoice_after_write")
        return cast(Invoice, doc)
