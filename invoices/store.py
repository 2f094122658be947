"""Invoices in MongoDB. Every write that takes a token checks it in its own filter."""

from __future__ import annotations

from typing import Any

from pymongo.errors import DuplicateKeyError

from fencing.mongo import fence
from servicekit import write_outcomes
from servicekit.metrics import Metrics
from servicekit.mongo_update import update, update_then_read


class InvoiceStore:
    """Documents: {_id, user_id, total_cents, status, created_us, updated_us, deleted_us,
    fence}; `fence` is the highest token this invoice has accepted."""

    def __init__(self, db: Any, metrics: Metrics | None = None) -> None:
        self.invoices = db["invoices"]
        self.metrics = metrics

    async def create_indexes(self) -> None:
        """None beyond `_id`: every query and write finds an invoice by its id, and
        SecantusDB maintains every index on every write."""

    async def insert(self, doc: dict) -> bool:
        """False if an invoice with this id exists already."""
        try:
            await self.invoices.insert_one(doc)
            return True
        except DuplicateKeyError:
            return False

    async def get(self, invoice_id: str) -> dict | None:
        doc: dict | None = await self.invoices.find_one({"_id": invoice_id})
        return doc

    async def fenced_update(self, invoice_id: str, token: int, changes: dict,
                            live_only: bool = False) -> dict | None:
        """Apply `changes` and raise the fence to `token`, in one operation, only if no
        higher token was accepted (and, with live_only, the invoice is not deleted).
        None when nothing matched."""
        return await write_outcomes.observe(
            self.metrics, "invoices", token,
            update_then_read(self.invoices, *self._fenced(invoice_id, token, changes,
                                                          live_only)))

    async def fenced_set(self, invoice_id: str, token: int, changes: dict,
                         live_only: bool = False) -> bool:
        """As fenced_update, without reading the invoice back: True if written."""
        return await write_outcomes.observe(
            self.metrics, "invoices", token,
            update(self.invoices, *self._fenced(invoice_id, token, changes, live_only)))

    @staticmethod
    def _fenced(invoice_id: str, token: int, changes: dict,
                live_only: bool) -> tuple[dict, dict]:
        query: dict[str, Any] = {"_id": invoice_id}
        if live_only:
            query["deleted_us"] = None
        return fence(query, {"$set": changes}, token)
