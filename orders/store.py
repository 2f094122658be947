"""Orders in MongoDB. Every write under a lease checks the token in its own filter."""

from __future__ import annotations

from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError


class OrderStore:
    """Documents: {_id, user_id, item_id, invoice_id, quantity, value_cents, total_cents,
    status, created_us, updated_us, deleted_us, fence, idempotency_key?, request_hash?}.

    `status` "pending" marks an order whose invoice is not confirmed yet: it is
    not visible through the API. `fence` is the highest token the order accepted.
    """

    def __init__(self, db: Any) -> None:
        self.orders = db["orders"]

    async def create_indexes(self) -> None:
        await self.orders.create_index("idempotency_key", unique=True, sparse=True)
        await self.orders.create_index("invoice_id")

    async def insert(self, doc: dict) -> bool:
        """False if the idempotency key is taken already."""
        try:
            await self.orders.insert_one(doc)
            return True
        except DuplicateKeyError:
            return False

    async def get(self, order_id: str) -> dict | None:
        doc: dict | None = await self.orders.find_one({"_id": order_id})
        return doc

    async def by_idempotency_key(self, key: str) -> dict | None:
        doc: dict | None = await self.orders.find_one({"idempotency_key": key})
        return doc

    async def activate(self, order_id: str) -> dict | None:
        """Pending -> created, once its invoice exists."""
        doc: dict | None = await self.orders.find_one_and_update(
            {"_id": order_id, "status": "pending"}, {"$set": {"status": "created"}},
            return_document=ReturnDocument.AFTER)
        return doc

    async def discard_pending(self, order_id: str) -> None:
        await self.orders.delete_one({"_id": order_id, "status": "pending"})

    async def fenced_update(self, order_id: str, token: int, changes: dict,
                            live_only: bool = True) -> dict | None:
        """Apply `changes` and raise the fence to `token`, in one operation, only if no
        higher token was accepted (and, with live_only, the order is not deleted)."""
        query: dict[str, Any] = {"_id": order_id, "fence": {"$lte": token},
                                 "status": {"$ne": "pending"}}
        if live_only:
            query["deleted_us"] = None
        doc: dict | None = await self.orders.find_one_and_update(
            query, {"$set": {**changes, "fence": token}}, return_document=ReturnDocument.AFTER)
        return doc
