"""UNSAFE: the Go original's lock, kept only so the chaos demo can show what fencing fixes.

Selected by DLOCK_UNSAFE_NAIVE=1, which needs DLOCK_TEST_MODE=1 and is refused
with --env=production. What it does, faithfully to the original:

- `SET lock:order:<id> 1 NX PX ttl`: a constant value, so nobody can tell
  whose lock it is, and no token;
- the unlock is deferred *before* the lock is taken, so a request that failed
  to lock deletes the holder's lock, and a holder whose lease ran out deletes
  its successor's;
- the invoice service only checks that a lock key exists (see invoices.naive);
- the order write is unconditional: a paused holder's late write wins.
"""

from __future__ import annotations

from typing import Any, cast

from orders.errors import EventOutdated, Locked, OrderDeleted
from orders.order import Order, update_changes
from orders.service import OrderService
from servicekit.invoices_client import InvoiceCallFailed, answer_for
from servicekit.mongo_update import update_then_read
from servicekit.naive import naive_key


class NaiveOrderService(OrderService):
    def __init__(self, *args: Any, redis: Any, ttl_ms: int, prefix: str) -> None:
        super().__init__(*args)
        self.redis = redis
        self.ttl_ms = ttl_ms
        self.prefix = prefix

    async def update(self, order_id: str, update_us: int, quantity: int | None,
                     value_cents: int | None) -> Order:
        order = await self.get(order_id)
        keys = self._keys(order)
        try:  # the deferred unlock comes first, as in the original
            if not await self.redis.set(keys[0], "1", nx=True, px=self.ttl_ms):
                raise Locked(f"order {order_id} is locked")
            await self.redis.set(keys[1], "1", px=self.ttl_ms)
            if order["deleted_us"] is not None:
                raise OrderDeleted(f"order {order_id} is deleted")
            if update_us < order["updated_us"]:
                raise EventOutdated("update_time is earlier than the order's updated_at")
            changes = update_changes(order, update_us, quantity, value_cents)
            await self.faults.point("after_lock")
            await self._invoice(self.invoices.update_total(order["invoice_id"], 1,
                                                           changes["total_cents"]))
            await self.faults.point("after_invoice_write")
            await self.faults.point("before_order_commit")
            doc = await update_then_read(self.store.orders, {"_id": order_id},
                                         {"$set": changes})
            return cast(Order, doc) if doc is not None else order
        finally:
            await self.redis.delete(*keys)

    async def delete(self, order_id: str) -> None:
        order = await self.get(order_id)
        keys = self._keys(order)
        try:
            if not await self.redis.set(keys[0], "1", nx=True, px=self.ttl_ms):
                raise Locked(f"order {order_id} is locked")
            await self.redis.set(keys[1], "1", px=self.ttl_ms)
            await self.faults.point("after_lock")
            await self._invoice(self.invoices.delete(order["invoice_id"], 1))
            await self.faults.point("after_invoice_write")
            await self.faults.point("before_order_commit")
            await self.store.orders.update_one({"_id": order_id, "deleted_us": None}, {
                "$set": {"status": "deleted", "deleted_us": order["updated_us"] + 1}})
        finally:
            await self.redis.delete(*keys)

    def _keys(self, order: Order) -> tuple[str, str]:
        return (naive_key(self.prefix, "order", order["_id"]),
                naive_key(self.prefix, "invoice", order["invoice_id"]))

    @staticmethod
    async def _invoice(call: Any) -> None:
        try:
            await call
        except InvoiceCallFailed as exc:
            raise answer_for(exc) from exc
