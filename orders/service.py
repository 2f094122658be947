"""The order rules: creation with its invoice, and fenced updates and deletes.

Update and delete, for every instance of this service at once::

    read order ──► lease {order:<id>, invoice:<iid>} (floor = order's own highest token)
                   busy → 423 locked
      ├─ re-read order under the lease: deleted → 409 order_deleted,
      │  update_time earlier than updated_at → 409 event_outdated
      ├─ PATCH/DELETE /invoices/<iid>  with Fencing-Token: <token>
      │     409 stale_token (Redis lost its counter) → release, lease again with
      │     floor = current_token, try once more; other failures → 424 invoice_failed
      ├─ write the order only if its fence ≤ token (one find_one_and_update)
      │     no match: a newer lease wrote meanwhile → 423 locked
      └─ release this lease (finally)

A holder paused past its lease cannot overwrite a newer one: both stores
refuse its lower token.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any, AsyncIterator, Awaitable, Callable, TypeVar

import contextlib

from fencing import FencedLock, Lease
from orders.invoices_client import InvoiceCallFailed, InvoicesClient, InvoiceStale
from servicekit import validate
from servicekit.errors import (EventOutdated, IdempotencyKeyReused, InvoiceFailed, Locked,
                               NotFound, OrderDeleted)
from servicekit.faults import Faults

log = logging.getLogger(__name__)

T = TypeVar("T")


def render(doc: dict) -> dict[str, Any]:
    return {"id": doc["_id"], "user_id": doc["user_id"], "item_id": doc["item_id"],
            "invoice_id": doc["invoice_id"], "quantity": doc["quantity"],
            "value": validate.cents_to_decimal(doc["value_cents"]),
            "total": validate.cents_to_decimal(doc["total_cents"]), "status": doc["status"],
            "created_at": validate.format_micros(doc["created_us"]),
            "updated_at": validate.format_micros(doc["updated_us"]),
            "deleted_at": validate.format_micros(doc["deleted_us"])}


def resources(order: dict) -> tuple[str, str]:
    """The lock names of an order and its invoice (the invoice service checks the second)."""
    return f"order:{order['_id']}", f"invoice:{order['invoice_id']}"


def request_hash(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()


class OrderService:
    def __init__(self, store: Any, invoices: InvoicesClient, lock: FencedLock,
                 lock_wait_ms: int, faults: Faults) -> None:
        self.store = store
        self.invoices = invoices
        self.lock = lock
        self.lock_wait = lock_wait_ms / 1000 if lock_wait_ms > 0 else None
        self.faults = faults

    async def get(self, order_id: str) -> dict:
        doc = await self.store.get(order_id)
        if doc is None or doc["status"] == "pending":
            raise NotFound(f"no order {order_id}")
        return doc

    async def create(self, user_id: str, item_id: str, quantity: int, value_cents: int,
                     idempotency_key: str | None) -> dict:
        """The order service picks the invoice id, so a retried create never makes a second
        invoice; the order stays invisible ("pending") until its invoice exists."""
        now = validate.now_micros()
        doc: dict[str, Any] = {
            "_id": validate.new_id(), "invoice_id": validate.new_id(), "user_id": user_id,
            "item_id": item_id, "quantity": quantity, "value_cents": value_cents,
            "total_cents": quantity * value_cents, "status": "pending", "created_us": now,
            "updated_us": now, "deleted_us": None, "fence": 0}
        if idempotency_key is not None:
            doc["idempotency_key"] = idempotency_key
            doc["request_hash"] = request_hash(user_id, item_id, quantity, value_cents)
            if not await self.store.insert(doc):
                existing = await self.store.by_idempotency_key(idempotency_key)
                if existing is None:
                    raise InvoiceFailed("a concurrent create with this key failed; try again")
                if existing["request_hash"] != doc["request_hash"]:
                    raise IdempotencyKeyReused("this Idempotency-Key was used with another body")
                if existing["status"] != "pending":
                    return existing
                doc = existing  # finish the same order, idempotently
        elif not await self.store.insert(doc):
            raise InvoiceFailed("could not store the order")
        try:
            await self.invoices.create(doc["invoice_id"], user_id, doc["total_cents"])
        except InvoiceCallFailed as exc:
            log.warning("order %s: invoice not created (%s); order discarded", doc["_id"], exc)
            await self.store.discard_pending(doc["_id"])
            raise InvoiceFailed("the invoice service could not create the invoice") from exc
        created = await self.store.activate(doc["_id"]) or await self.get(doc["_id"])
        log.info("order %s created with invoice %s", created["_id"], created["invoice_id"])
        return created

    async def update(self, order_id: str, update_us: int, quantity: int | None,
                     value_cents: int | None) -> dict:
        async def under(lease: Lease) -> dict:
            order = await self._check(order_id, update_us)
            new_quantity = quantity if quantity is not None else order["quantity"]
            new_value = value_cents if value_cents is not None else order["value_cents"]
            total = new_quantity * new_value
            await self.faults.point("after_lock")
            await self.invoices.update_total(order["invoice_id"], lease.token, total)
            await self.faults.point("after_invoice_write")
            await self._renew_if_short(lease)
            await self.faults.point("before_order_commit")
            doc = await self.store.fenced_update(order_id, lease.token, {
                "quantity": new_quantity, "value_cents": new_value, "total_cents": total,
                "status": "updated", "updated_us": update_us})
            if doc is None:
                raise Locked("the lease ran out before the order was written, and a newer "
                             "operation took over; try again")
            log.info("order %s updated with token %s: total %s", order_id, lease.token,
                     validate.cents_to_decimal(total))
            return doc

        return await self._fenced(order_id, under)

    async def delete(self, order_id: str) -> None:
        async def under(lease: Lease) -> None:
            order = await self.get(order_id)
            await self.faults.point("after_lock")
            # Sent even when the order is deleted already: it heals an invoice that an
            # interrupted delete left behind, and a repeat costs nothing.
            await self.invoices.delete(order["invoice_id"], lease.token)
            await self.faults.point("after_invoice_write")
            await self.faults.point("before_order_commit")
            now = validate.now_micros()
            doc = await self.store.fenced_update(order_id, lease.token, {
                "status": "deleted", "deleted_us": now})
            if doc is None and (await self.get(order_id))["deleted_us"] is None:
                raise Locked("the lease ran out before the order was written, and a newer "
                             "operation took over; try again")
            log.info("order %s deleted with token %s", order_id, lease.token)

        await self._fenced(order_id, under)

    async def _fenced(self, order_id: str, work: Callable[[Lease], Awaitable[T]]) -> T:
        """Run `work` under one lease on the order and its invoice; heal once if the invoice
        reports a token above ours (Redis lost its counter)."""
        order = await self.get(order_id)
        floor = order["fence"]
        for attempt in (1, 2):
            async with self._lease(order, floor) as lease:
                try:
                    return await work(lease)
                except InvoiceStale as stale:
                    if attempt == 2:
                        raise InvoiceFailed("the invoice refused the token twice") from stale
                    log.warning("order %s: invoice holds token %s above ours %s; taking a new "
                                "lease above it", order_id, stale.current_token, lease.token)
                    floor = max(floor, stale.current_token)
                except InvoiceCallFailed as exc:
                    raise InvoiceFailed(f"the invoice service failed: {exc}") from exc
        raise AssertionError("unreachable")

    @contextlib.asynccontextmanager
    async def _lease(self, order: dict, floor: int) -> AsyncIterator[Lease]:
        lease = await self.lock.acquire(*resources(order), timeout=self.lock_wait, floor=floor)
        if lease is None:
            raise Locked(f"order {order['_id']} is being changed by another request")
        try:
            yield lease
        finally:
            await self.faults.point("before_release")
            await self.lock.release(lease)

    async def _check(self, order_id: str, update_us: int) -> dict:
        """The order as it is now, under the lease."""
        order = await self.get(order_id)
        if order["deleted_us"] is not None:
            raise OrderDeleted(f"order {order_id} is deleted")
        if update_us < order["updated_us"]:
            raise EventOutdated("update_time is earlier than the order's updated_at")
        return order

    async def _renew_if_short(self, lease: Lease) -> None:
        """Extend before the last write if less than half the lease is left; the token
        check at the store decides in any case."""
        if lease.remaining() < self.lock.ttl_ms / 2000:
            await self.lock.extend(lease)
