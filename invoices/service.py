"""The invoice rules: idempotent creation, and writes only by the current lease holder.

A write carrying token T is accepted when Redis holds the invoice's lock under
T (else 409 lock_not_held) and the invoice has accepted no token above T (else
409 stale_token, with the invoice's token, so the caller can pass it as
`floor` and heal after Redis lost its counter). The second check rides on the
write itself: one conditional update whose filter carries it
(`fencing.mongo.fence`, in `invoices.store`). The invoice's lock name is
`servicekit.lock_names.invoice_lock`, which orders locks too.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from invoices import invoice
from invoices.errors import LockNotHeld, StaleToken
from invoices.invoice import Changes, Invoice
from invoices.store import InvoiceStore
from servicekit import write_outcomes
from servicekit.errors import NotFound, ValidationFailed
from servicekit.faults import NO_FAULTS, Faults
from servicekit.lock_names import invoice_lock
from servicekit.observed_lock import ObservedLock

log = logging.getLogger(__name__)


class InvoiceService:
    def __init__(self, store: InvoiceStore, lock: ObservedLock, faults: Faults = NO_FAULTS) -> None:
        self.store = store
        self.lock = lock
        self.faults = faults

    async def create(self, invoice_id: str | None, user_id: str, total_cents: int) -> Invoice:
        """Create, or with a known caller-chosen id return the invoice already made."""
        doc = invoice.new(invoice_id, user_id, total_cents)
        if await self.store.insert(doc):
            return doc
        existing = await self.store.get(doc["_id"])
        if existing is None or existing["user_id"] != user_id:
            raise ValidationFailed("id is already used by another invoice", field="id")
        return existing  # a retry of the same create

    async def get(self, invoice_id: str) -> Invoice:
        doc = await self.store.get(invoice_id)
        if doc is None:
            raise NotFound(f"no invoice {invoice_id}")
        return doc

    async def update_total(self, invoice_id: str, token: int, total_cents: int,
                           read_back: bool = True) -> Invoice | None:
        """One fenced write; the invoice as written is read back only when the caller
        wants it (without `read_back`, for `Prefer: return=minimal`, None)."""
        await self._check_holder(invoice_id, token)
        changes = invoice.total_changed(total_cents)
        written = await self._fenced_write(invoice_id, token, {**changes, "status": "updated"},
                                           read_back, live_only=True)
        if not written:  # deleted (keeps its status) or stale
            written = await self._fenced_write(invoice_id, token, changes, read_back)
        if not written:
            raise await self._refusal(invoice_id, token)
        log.info("invoice %s total=%s accepted with token %s", invoice_id,
                 Decimal(total_cents).scaleb(-2), token,
                 extra={"event": "write_accepted", "invoice_id": invoice_id, "token": token})
        await self.faults.point("invoice_after_write")
        return written if isinstance(written, dict) else None

    async def delete(self, invoice_id: str, token: int) -> None:
        """One fenced write (two if the invoice was deleted already); nothing is read back,
        since a delete answers 204."""
        await self._check_holder(invoice_id, token)
        done = await self.store.write(invoice_id, token, invoice.deleted(), live_only=True)
        if not done:  # already deleted: only the fence moves
            done = await self.store.write(invoice_id, token, {})
        if not done:
            raise await self._refusal(invoice_id, token)
        log.info("invoice %s deleted with token %s", invoice_id, token,
                 extra={"event": "write_accepted", "invoice_id": invoice_id, "token": token})
        await self.faults.point("invoice_after_write")

    async def _fenced_write(self, invoice_id: str, token: int, changes: Changes,
                            read_back: bool, live_only: bool = False) -> Invoice | bool | None:
        """The invoice as written, or only whether it was (without `read_back`)."""
        if read_back:
            return await self.store.write_and_read(invoice_id, token, changes, live_only)
        return await self.store.write(invoice_id, token, changes, live_only)

    async def _check_holder(self, invoice_id: str, token: int) -> None:
        holder = await self.lock.holder(invoice_lock(invoice_id))
        if holder != token:
            refusal = await self._refusal(invoice_id, token)
            if isinstance(refusal, StaleToken | NotFound):
                raise refusal
            log.info("invoice %s: token %s refused, Redis holds %s", invoice_id, token, holder,
                     extra={"event": "write_refused", "invoice_id": invoice_id, "token": token,
                            "outcome": "lock_not_held"})
            write_outcomes.refused(self.store.metrics, "invoices", "lock_not_held")
            raise LockNotHeld(f"the lock of invoice {invoice_id} is not held under token "
                              f"{token}")

    async def _refusal(self, invoice_id: str, token: int) -> Exception:
        doc = await self.store.get(invoice_id)
        if doc is None:
            return NotFound(f"no invoice {invoice_id}")
        if token < doc["fence"]:
            log.info("invoice %s: stale token %s refused (accepted %s)", invoice_id, token,
                     doc["fence"], extra={"event": "write_refused", "invoice_id": invoice_id,
                                          "token": token, "current_token": doc["fence"],
                                          "outcome": "stale_token"})
            write_outcomes.refused(self.store.metrics, "invoices", "stale_token")
            return StaleToken(f"token {token} is older than {doc['fence']}, the highest "
                              "this invoice accepted", current_token=doc["fence"])
        return LockNotHeld(f"the lock of invoice {invoice_id} is not held under token {token}")
