"""The order rules: creation with its invoice, and fenced updates and deletes.

Update and delete, for every instance of this service at once::

    read order ──► lease {order:<id>, invoice:<iid>} (floor = order's own highest token)
                   busy → 423 locked
      ├─ re-read order under the lease; settle an intent someone left behind (below)
      │  deleted → 409 order_deleted, update_time earlier than updated_at → 409 event_outdated
      ├─ record the intent on the order (fenced write: op, target state, token, expiry)
      ├─ PATCH/DELETE /invoices/<iid>  with Fencing-Token: <token>
      │     409 stale_token (Redis lost its counter) → lease again with floor =
      │     current_token, try once more; other failures: see "When invoices fails"
      ├─ commit: write the order and clear the intent, only if its fence ≤ token
      │     no match: a newer lease took over meanwhile → 423 locked
      └─ release this lease (finally)

A holder paused past its lease cannot overwrite a newer one: both stores
refuse its lower token.

Intent before effect. A process can die between the invoice write and the
order commit, or lose the answer of an invoice call that was applied. The
intent recorded before the call says what was under way, and whoever next
holds the lease settles it, with a token above the one that may still be in
flight (so a late invoice write of the dead holder is refused):

- an interrupted **update rolls back**: the invoice gets the order's
  committed total again. A caller that saw 424, or no answer, sees no change.
- an interrupted **delete rolls forward**: the invoice is deleted (again) and
  the order too. Deleting cannot be undone through the invoice API, and a
  delete is what its caller asked for; the caller saw 503 or no answer.
- an interrupted **create rolls back**: the order stays invisible
  ("pending"), the invoice, if it was made, is deleted (a tombstone, so a late
  create with the same id cannot bring it back), then the order is removed.

The next request on the order settles inline; `orders.repair` settles the rest.

When invoices fails: if the call certainly changed nothing (connection refused,
4xx), the intent is cleared and the answer is 424. If it may have applied
(timeout, dropped connection, 5xx), an update answers 424 and hands its intent
to the repairer to roll back; a delete answers 503 and is rolled forward.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from typing import Any, AsyncIterator, Awaitable, Callable, TypeVar

from fencing import Lease
from orders.invoices_client import InvoiceCallFailed, InvoicesClient, InvoiceStale
from servicekit import fenced_write, validate
from servicekit.errors import (EventOutdated, IdempotencyKeyReused, InvoiceFailed, Locked,
                               NotFound, OrderDeleted, Unavailable)
from servicekit.faults import Faults
from servicekit.observed_lock import ObservedLock

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
    def __init__(self, store: Any, invoices: InvoicesClient, lock: ObservedLock,
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

    # -- create ----------------------------------------------------------------------------

    async def create(self, user_id: str, item_id: str, quantity: int, value_cents: int,
                     idempotency_key: str | None) -> dict:
        """The order service picks the invoice id, so a retried create never makes a second
        invoice; the order stays invisible ("pending") until its invoice exists, and the
        pair stays leased meanwhile, so the repairer never rolls back a create in flight."""
        now = validate.now_micros()
        doc: dict[str, Any] = {
            "_id": validate.new_id(), "invoice_id": validate.new_id(), "user_id": user_id,
            "item_id": item_id, "quantity": quantity, "value_cents": value_cents,
            "total_cents": quantity * value_cents, "status": "pending", "created_us": now,
            "updated_us": now, "deleted_us": None, "fence": 0}
        if idempotency_key is not None:
            doc["idempotency_key"] = idempotency_key
            doc["request_hash"] = request_hash(user_id, item_id, quantity, value_cents)
        async with self._lease(doc, 0) as lease:
            doc["fence"] = lease.token
            if await self.store.insert(doc):
                return await self._finish_create(doc, lease)
        # The key is taken: return the order an earlier try made, or finish it.
        existing = await self._existing(idempotency_key, doc.get("request_hash"))
        if existing["status"] != "pending":
            return existing
        async with self._lease(existing, existing["fence"]) as lease:
            current = await self.store.get(existing["_id"])
            if current is None:
                raise InvoiceFailed("an earlier try with this key was rolled back; try again")
            if current["status"] != "pending":
                return dict(current)
            return await self._finish_create(current, lease)

    async def _existing(self, key: str | None, request: str | None) -> dict:
        existing = await self.store.by_idempotency_key(key) if key else None
        if existing is None:
            raise InvoiceFailed("a concurrent create with this key failed; try again")
        if existing["request_hash"] != request:
            raise IdempotencyKeyReused("this Idempotency-Key was used with another body")
        return existing

    async def _finish_create(self, doc: dict, lease: Lease) -> dict:
        try:
            await self.invoices.create(doc["invoice_id"], doc["user_id"], doc["total_cents"])
        except InvoiceCallFailed as exc:
            if exc.maybe_applied:
                log.warning("order %s: invoice creation unconfirmed (%s); left to the repairer "
                            "to roll back", doc["_id"], exc)
            else:
                log.warning("order %s: invoice not created (%s); order discarded",
                            doc["_id"], exc)
                await self.store.discard_pending(doc["_id"])
            raise InvoiceFailed("the invoice service could not create the invoice") from exc
        created = await self.store.activate(doc["_id"], lease.token)
        if created is None:
            raise InvoiceFailed("the order's creation took too long and was rolled back")
        log.info("order %s created with invoice %s", created["_id"], created["invoice_id"],
                 extra={"event": "order_created", "order_id": created["_id"],
                        "invoice_id": created["invoice_id"], "token": lease.token})
        return created

    # -- update and delete -----------------------------------------------------------------

    async def update(self, order_id: str, update_us: int, quantity: int | None,
                     value_cents: int | None) -> dict:
        async def under(lease: Lease) -> dict:
            order = await self._settled(order_id, lease)
            if order["deleted_us"] is not None:
                raise OrderDeleted(f"order {order_id} is deleted")
            if update_us < order["updated_us"]:
                raise EventOutdated("update_time is earlier than the order's updated_at")
            new_quantity = quantity if quantity is not None else order["quantity"]
            new_value = value_cents if value_cents is not None else order["value_cents"]
            total = new_quantity * new_value
            changes = {"quantity": new_quantity, "value_cents": new_value, "total_cents": total,
                       "status": "updated", "updated_us": update_us}
            await self.faults.point("after_lock")
            await self._record_intent(order_id, lease, "update", changes)
            await self._call_invoices(order_id, lease, "update", self.invoices.update_total(
                order["invoice_id"], lease.token, total))
            await self.faults.point("after_invoice_write")
            await self._renew_if_short(lease)
            await self.faults.point("before_order_commit")
            if not await self.store.fenced_set(order_id, lease.token, changes,
                                               clear_intent=True):
                fenced_write.refused(self.store.metrics, "orders", "superseded")
                raise Locked("the lease ran out before the order was written, and a newer "
                             "operation took over; try again")
            # Under the lease nothing else wrote since `order` was read: the order now
            # is that one with our changes (no read-back needed).
            doc = {key: value for key, value in order.items() if key != "intent"}
            doc.update(changes, fence=lease.token)
            log.info("order %s updated with token %s: total %s", order_id, lease.token,
                     validate.cents_to_decimal(total),
                     extra={"event": "order_updated", "order_id": order_id,
                            "invoice_id": order["invoice_id"], "token": lease.token})
            return doc

        return await self._fenced(order_id, under)

    async def delete(self, order_id: str) -> None:
        async def under(lease: Lease) -> None:
            order = await self._settled(order_id, lease)
            await self.faults.point("after_lock")
            if order["deleted_us"] is not None:
                # Sent again: it heals an invoice that something outside this service
                # touched, and a repeat costs nothing.
                await self.invoices.delete(order["invoice_id"], lease.token)
                return
            await self._record_intent(order_id, lease, "delete",
                                      {"status": "deleted", "deleted_us": validate.now_micros()})
            await self._call_invoices(order_id, lease, "delete",
                                      self.invoices.delete(order["invoice_id"], lease.token))
            await self.faults.point("after_invoice_write")
            await self.faults.point("before_order_commit")
            await self._commit_delete(order_id, lease)
            log.info("order %s deleted with token %s", order_id, lease.token,
                     extra={"event": "order_deleted", "order_id": order_id,
                            "invoice_id": order["invoice_id"], "token": lease.token})

        await self._fenced(order_id, under)

    # -- settling what others left behind (also called by orders.repair) -------------------

    async def settle(self, order_id: str) -> bool:
        """Settle the order's intent under a fresh lease; False if the pair is busy."""
        order = await self.store.get(order_id)
        if order is None or "intent" not in order:
            return True
        floor = order["fence"]
        for _ in (1, 2):
            lease = await self.lock.acquire(*resources(order), floor=floor)
            if lease is None:
                return False
            try:
                await self._settled(order_id, lease)
                return True
            except InvoiceStale as stale:  # Redis lost its counter: again, above it
                floor = max(floor, stale.current_token)
            finally:
                await self.lock.release(lease)
        return False

    async def roll_back_create(self, doc: dict) -> bool:
        """Undo a creation that never finished; False if the pair is busy."""
        lease = await self.lock.acquire(*resources(doc), floor=doc["fence"])
        if lease is None:
            return False
        try:
            if await self.store.get(doc["_id"]) is None:
                return True
            await self.invoices.create(doc["invoice_id"], doc["user_id"], doc["total_cents"])
            await self.invoices.delete(doc["invoice_id"], lease.token)
            await self.store.discard_pending(doc["_id"], lease.token)
            log.warning("order %s: unfinished creation rolled back with token %s "
                        "(invoice %s deleted)", doc["_id"], lease.token, doc["invoice_id"])
            return True
        finally:
            await self.lock.release(lease)

    async def _settled(self, order_id: str, lease: Lease) -> dict:
        """The order under `lease`, with any intent left by an earlier holder settled."""
        order = await self.get(order_id)
        intent = order.get("intent")
        if intent is None:
            return order
        # The order first: the holder that left the intent may still be alive, and once the
        # invoice carries our token its commit must meet our token on the order too. What
        # the claim reads back is what we settle: that holder may have committed meanwhile.
        claimed = await self.store.fenced_update(order_id, lease.token, {}, live_only=False)
        if claimed is None:
            raise Locked(f"order {order_id} is being changed by another request")
        order, intent = dict(claimed), claimed.get("intent")
        if intent is None:
            return order
        if intent["op"] == "update":
            await self.invoices.update_total(order["invoice_id"], lease.token,
                                             order["total_cents"])
            doc = await self.store.fenced_update(order_id, lease.token, {}, live_only=False,
                                                 clear_intent=True)
        else:
            await self.invoices.delete(order["invoice_id"], lease.token)
            doc = await self._commit_delete(order_id, lease, intent["deleted_us"])
        if doc is None:
            raise Locked(f"order {order_id} is being changed by another request")
        log.warning("order %s: interrupted %s of token %s %s with token %s", order_id,
                    intent["op"], intent["token"],
                    "rolled back" if intent["op"] == "update" else "completed", lease.token,
                    extra={"event": "intent_settled", "order_id": order_id,
                           "invoice_id": order["invoice_id"], "token": lease.token})
        return dict(doc)

    # -- private ---------------------------------------------------------------------------

    async def _record_intent(self, order_id: str, lease: Lease, op: str, changes: dict) -> None:
        intent = {"op": op, **changes, "at_us": validate.now_micros(),
                  "expires_us": validate.now_micros() + int(lease.remaining() * 1_000_000)}
        if not await self.store.record_intent(order_id, lease.token, intent):
            fenced_write.refused(self.store.metrics, "orders", "superseded")
            raise Locked("the lease ran out before the change began, and a newer operation "
                         "took over; try again")
        await self.faults.point("after_intent")

    async def _call_invoices(self, order_id: str, lease: Lease, op: str,
                             call: Awaitable[None]) -> None:
        try:
            await call
        except InvoiceStale:
            raise  # _fenced leases again above it; the next holder settles the intent
        except InvoiceCallFailed as exc:
            if not exc.maybe_applied:
                await self.store.fenced_update(order_id, lease.token, {}, live_only=False,
                                               clear_intent=True)
                raise InvoiceFailed(f"the invoice service failed: {exc}") from exc
            if op == "update":
                await self.store.give_up_intent(order_id, lease.token)
                raise InvoiceFailed(f"the invoice service did not confirm ({exc}); the "
                                    "change is rolled back") from exc
            raise Unavailable(f"the invoice service did not confirm the delete ({exc}); it "
                              "will be completed") from exc

    async def _commit_delete(self, order_id: str, lease: Lease,
                             deleted_us: int | None = None) -> dict | None:
        doc = await self.store.fenced_update(
            order_id, lease.token, {"status": "deleted",
                                    "deleted_us": deleted_us or validate.now_micros()},
            clear_intent=True)
        if doc is None:  # deleted already: only the intent goes
            doc = await self.store.fenced_update(order_id, lease.token, {}, live_only=False,
                                                 clear_intent=True)
        if doc is None:
            fenced_write.refused(self.store.metrics, "orders", "superseded")
            raise Locked("the lease ran out before the order was written, and a newer "
                         "operation took over; try again")
        return dict(doc)

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

    async def _renew_if_short(self, lease: Lease) -> None:
        """Extend before the last write if less than half the lease is left; the token
        check at the store decides in any case."""
        if lease.remaining() < self.lock.ttl_ms / 2000:
            await self.lock.extend(lease)
