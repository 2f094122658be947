"""Orders in MongoDB. Every write under a lease checks the token in its own filter."""

from __future__ import annotations

from typing import Any, Mapping, cast

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from fencing.mongo import fence
from orders.intent import GIVE_UP, Intent, expired, unchanged as plan_holds
from orders.order import Order
from servicekit import write_outcomes
from servicekit.metrics import Metrics
from servicekit.mongo_update import update, update_then_read


class OrderStore:
    """Documents: `orders.order.Order` (a pending order is not visible through the API;
    `fence` is the highest token the order accepted)."""

    def __init__(self, db: Any, metrics: Metrics | None = None) -> None:
        self.orders = db["orders"]
        self.metrics = metrics

    async def create_indexes(self) -> None:
        await self.orders.create_index("idempotency_key", unique=True, sparse=True)
        await self.orders.create_index("intent.expires_us", sparse=True)
        await self.orders.create_index([("status", ASCENDING), ("created_us", ASCENDING)])

    async def insert(self, doc: Order) -> bool:
        """False if the idempotency key is taken already."""
        try:
            await self.orders.insert_one(doc)
            return True
        except DuplicateKeyError:
            return False

    async def get(self, order_id: str) -> Order | None:
        return cast("Order | None", await self.orders.find_one({"_id": order_id}))

    async def by_idempotency_key(self, key: str) -> Order | None:
        return cast("Order | None", await self.orders.find_one({"idempotency_key": key}))

    async def activate(self, order_id: str, token: int) -> bool:
        """Pending -> created, once its invoice exists; False if it was rolled back. Not
        read back: the creator holds the document it inserted, and the pair's lease."""
        return await update(self.orders, *fence(
            {"_id": order_id, "status": "pending"}, {"$set": {"status": "created"}}, token))

    async def claim_pending(self, order_id: str, token: int) -> bool:
        """Raise a pending order's fence to `token` before its creation is rolled back,
        so that its creator's activation, with a lower token, is refused from now on.
        False if the order is no longer pending (its creator activated it) or a higher
        token claimed it."""
        return await update(self.orders, *fence({"_id": order_id, "status": "pending"}, {},
                                                token))

    async def discard_pending(self, order_id: str, token: int | None = None) -> None:
        query: dict[str, Any] = {"_id": order_id, "status": "pending"}
        if token is not None:
            query, _ = fence(query, {}, token)
        await self.orders.delete_one(query)

    async def write(self, order_id: str, token: int, changes: Mapping[str, Any],
                    live_only: bool = True, clear_intent: bool = False,
                    unchanged: Order | None = None) -> bool:
        """Apply `changes` and raise the fence to `token`, in one operation, only if no
        higher token was accepted (and, with live_only, the order is not deleted; with
        `unchanged`, the order as read before, only if a plan made from it still holds:
        `orders.intent.unchanged`). With clear_intent, the intent goes in the same
        write. Not read back: True if written."""
        query, update_spec = self._guarded(order_id, token, changes, live_only, clear_intent,
                                           unchanged)
        return await write_outcomes.observe(self.metrics, "orders", token,
                                            update(self.orders, query, update_spec))

    async def claim(self, order_id: str, token: int) -> Order | None:
        """Raise the order's fence to `token` (deleted or not), then read it back; None if
        a higher token was accepted."""
        query, update_spec = self._guarded(order_id, token, {}, live_only=False,
                                           clear_intent=False)
        return cast("Order | None", await write_outcomes.observe(
            self.metrics, "orders", token, update_then_read(self.orders, query, update_spec)))

    @staticmethod
    def _guarded(order_id: str, token: int, changes: Mapping[str, Any], live_only: bool,
                 clear_intent: bool, unchanged: Order | None = None) -> tuple[dict, dict]:
        """The filter and update of a write under `token` (see `write`)."""
        query: dict[str, Any] = {"_id": order_id, "status": {"$ne": "pending"}}
        if live_only:
            query["deleted_us"] = None
        if unchanged is not None:
            query.update(plan_holds(unchanged))
        update_spec: dict[str, Any] = {"$set": dict(changes)}
        if clear_intent:
            update_spec["$unset"] = {"intent": ""}
        return fence(query, update_spec, token)

    async def record_intent(self, order_id: str, intent: Intent,
                            seen: Order | None = None) -> bool:
        """Record what the holder of the intent's token is about to do; False if a newer
        token wrote or, given `seen`, if the order is no longer what was seen."""
        return await self.write(order_id, intent["token"], {"intent": intent},
                                live_only=intent["op"] == "update", unchanged=seen)

    async def give_up_intent(self, order_id: str, token: int) -> None:
        """Hand this token's intent to the repairer at once (it rolls it back)."""
        await self.orders.update_one({"_id": order_id, "intent.token": token}, GIVE_UP)

    async def expired_intents(self, now_us: int, limit: int) -> list[Order]:
        cursor = self.orders.find(expired(now_us)).limit(limit)
        return [doc async for doc in cursor]

    async def stale_pending(self, created_before_us: int, limit: int) -> list[Order]:
        cursor = self.orders.find({"status": "pending",
                                   "created_us": {"$lt": created_before_us}}).limit(limit)
        return [doc async for doc in cursor]
