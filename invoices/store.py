"""Invoices in MongoDB. Every write that takes a token checks it in its own filter."""

from __future__ import annotations

from typing import Any, cast

from pymongo.errors import DuplicateKeyError

from fencing.mongo import fence
from invoices.invoice import Changes, Invoice
from servicekit import write_outcomes
from servicekit.metrics import Metrics
from servicekit.mongo_update import update, update_then_read


class InvoiceStore:
    """The `invoices` collection, of `invoices.invoice.Invoice` documents."""

    def __init__(self, db: Any, metrics: Metrics | None = None) -> None:
        self.invoices = db["invoices"]
        self.metrics = metrics

    async def create_indexes(self) -> None:
        """None beyond `_id`: every query and write finds an invoice by its id, and
        SecantusDB maintains every index on every write."""

    async def insert(self, doc: Invoice) -> bool:
        """False if an invoice with this id exists already."""
        try:
            await self.invoices.insert_one(doc)
            return True
        except DuplicateKeyError:
            return False

    async def get(self, invoice_id: str) -> Invoice | None:
        doc: Invoice | None = await self.invoices.find_one({"_id": invoice_id})
        return doc

    async def write_and_read(self, invoice_id: str, token: int, changes: Changes,
                             live_only: bool = False) -> Invoice | None:
        """Apply `changes` and raise the fence to `token`, in one operation, only if no
        higher token was accepted (and, with live_only, the invoice is not deleted);
        then read the invoice back. None when nothing matched."""
        doc = await write_outcomes.observe(
            self.metrics, "invoices", token,
            update_then_read(self.invoices, *self._token_checked(invoice_id, token, changes,
                                                                 live_only)))
        return cast("Invoice | None", doc)  # what this store writes is an Invoice

    async def write(self, invoice_id: str, token: int, changes: Changes,
                    live_only: bool = False) -> bool:
        """As write_and_read, without reading the invoice back: True if written."""
        return await write_outcomes.observe(
            self.metrics, "invoices", token,
            update(self.invoices, *self._token_checked(invoice_id, token, changes,
                                                       live_only)))

    @staticmethod
    def _token_checked(invoice_id: str, token: int, changes: Changes,
                       live_only: bool) -> tuple[dict, dict]:
        """The filter and update of a write that lands only under a token no lower than
        the invoice's fence (`fencing.mongo.fence`)."""
        query: dict[str, Any] = {"_id": invoice_id}
        if live_only:
            query["deleted_us"] = None
        return fence(query, {"$set": changes}, token)
