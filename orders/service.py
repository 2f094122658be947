"""The order rules: creation with its invoice, and fenced updates and deletes.

Update and delete, for every instance of this service at once::

    read order ──► lease {order:<id>, invoice:<iid>} (floor = order's own highest token)
                   busy → 423 locked
      ├─ from the order as read: deleted → 409 order_deleted, update_time earlier
      │  than updated_at → 409 event_outdated
      ├─ record the intent on the order (fenced write: op, target state, token, expiry),
      │     only if the order is still as read and carries no intent; else re-read it
      │     under the lease, settle an intent someone left behind, check and record again
      ├─ PATCH/DELETE /invoices/<iid>  with Fencing-Token: <token>
      │     (PATCH with Prefer: return=minimal: nothing read back)
      │     409 stale_token (Redis lost its counter) → lease again with floor =
      │     current_token, try once more; other failures: see "When invoices fails"
      ├─ commit: write the order and clear the intent, only if its fence ≤ token
      │     no match: a newer lease took over meanwhile → 423 locked
      └─ release this lease (a release that fails leaves the answer as it is: the
         lease then ends by its ttl)

A holder paused past its lease cannot overwrite a newer one: both stores
refuse its lower token.

An update or delete records its intent before it calls invoices, and a
holder that dies before its commit leaves that intent to the next holder of
the pair's lease: see `orders.interrupted`, which also rolls back creations
that never finished.

When invoices fails: if the call certainly changed nothing (connection refused,
4xx), the intent is cleared and the answer is 424. If it may have applied
(timeout, dropped connection, 5xx), an update answers 424 and hands its intent
to the repairer to roll back; a delete answers 503 and is rolled forward.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, AsyncIterator, Awaitable, Callable, TypeVar

from fencing import Lease, LockBusy
from orders import order as orders
from orders.errors import (EventOutdated, IdempotencyKeyReused, InvoiceFailed, Locked,
                           OrderDeleted)
from orders.interrupted import InterruptedChanges
from orders.invoices_client import InvoiceCallFailed, InvoicesClient, InvoiceStale
from orders.pair import PairLock
from servicekit import validate, write_outcomes
from servicekit.errors import Unavailable
from servicekit.faults import Faults
from servicekit.observed_lock import ObservedLock

log = logging.getLogger(__name__)

T = TypeVar("T")


class OrderService:
    def __init__(self, store: Any, invoices: InvoicesClient, lock: ObservedLock,
                 lock_wait_ms: int, faults: Faults) -> None:
        self.store = store
        self.invoices = invoices
        self.lock = lock
        self.lock_wait = lock_wait_ms / 1000 if lock_wait_ms > 0 else None
        self.faults = faults
        # Renewed for at most the longest a block can take: waiting for the pair, and
        # an invoice call twice over (its timeout, then the heal after stale_token).
        self.pair = PairLock(lock, faults, max_hold=(lock.ttl_ms / 1000 + (self.lock_wait or 0)
                                                     + 2 * invoices.timeout))
        self.interrupted = InterruptedChanges(store, invoices, self.pair, faults)

    async def get(self, order_id: str) -> dict:
        return orders.visible(await self.store.get(order_id), order_id)

    # -- create ----------------------------------------------------------------------------

    async def create(self, user_id: str, item_id: str, quantity: int, value_cents: int,
                     idempotency_key: str | None) -> dict:
        """The order service picks the invoice id, so a retried create never makes a second
        invoice; the order stays invisible ("pending") until its invoice exists, and the
        pair stays leased meanwhile, so the repairer leaves a create in flight alone. A
        creator that outlived its lease meets the repairer's claim: one of the two wins
        (see `orders.interrupted`).

        Three MongoDB operations: the order's insert (pending; it also claims the
        Idempotency-Key), the invoice's insert, and the activation, not read back."""
        doc = orders.new(user_id, item_id, quantity, value_cents, idempotency_key)
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
                await self.store.discard_pending(doc["_id"], lease.token)
            raise InvoiceFailed("the invoice service could not create the invoice") from exc
        await self.faults.point("after_invoice_create")
        await self.faults.point("before_activate")
        if not await self.store.activate(doc["_id"], lease.token):
            # The repairer claimed it first (see orders.interrupted).
            raise InvoiceFailed("the order's creation took too long and was rolled back")
        created = {**doc, "status": "created", "fence": lease.token}
        log.info("order %s created with invoice %s", created["_id"], created["invoice_id"],
                 extra={"event": "order_created", "order_id": created["_id"],
                        "invoice_id": created["invoice_id"], "token": lease.token})
        return created

    # -- update and delete -----------------------------------------------------------------

    async def update(self, order_id: str, update_us: int, quantity: int | None,
                     value_cents: int | None) -> dict:
        """Four MongoDB operations, uncontended: the read (the invoice id and the
        lease's floor), the intent, the invoice's write (not read back) and the commit
        (its document is known: the one read, with the changes)."""
        def plan(order: dict) -> dict:
            if order["deleted_us"] is not None:
                raise OrderDeleted(f"order {order_id} is deleted")
            if update_us < order["updated_us"]:
                raise EventOutdated("update_time is earlier than the order's updated_at")
            return orders.updated(order, update_us, quantity, value_cents)

        async def under(lease: Lease, seen: dict | None) -> dict:
            order, changes = await self._begin(order_id, lease, seen, "update", plan)
            assert changes is not None
            total = changes["total_cents"]
            await self._call_invoices(order_id, lease, "update", self.invoices.update_total(
                order["invoice_id"], lease.token, total))
            await self.faults.point("after_invoice_write")
            await self.faults.point("before_order_commit")
            if not await self.store.fenced_set(order_id, lease.token, changes,
                                               clear_intent=True):
                write_outcomes.refused(self.store.metrics, "orders", "superseded")
                raise Locked("the lease ran out before the order was written, and a newer "
                             "operation took over; try again")
            # The intent's write proved `order` current, and under the lease nothing else
            # wrote since: the order now is that one with our changes.
            doc = {key: value for key, value in order.items() if key != "intent"}
            doc.update(changes, fence=lease.token)
            log.info("order %s updated with token %s: total %s", order_id, lease.token,
                     validate.cents_to_decimal(total),
                     extra={"event": "order_updated", "order_id": order_id,
                            "invoice_id": order["invoice_id"], "token": lease.token})
            return doc

        return await self._fenced(order_id, under)

    async def delete(self, order_id: str) -> None:
        """Four MongoDB operations, uncontended, as an update: the read, the intent, the
        invoice's delete and the commit, none of them read back."""
        async def under(lease: Lease, seen: dict | None) -> None:
            order, changes = await self._begin(
                order_id, lease, seen, "delete",
                lambda order: orders.deleted() if order["deleted_us"] is None else None)
            if changes is None:
                # Deleted already. Sent again: it heals an invoice that something outside
                # this service touched, and a repeat costs nothing.
                await self.invoices.delete(order["invoice_id"], lease.token)
                return
            await self._call_invoices(order_id, lease, "delete",
                                      self.invoices.delete(order["invoice_id"], lease.token))
            await self.faults.point("after_invoice_write")
            await self.faults.point("before_order_commit")
            await self.interrupted.commit_delete(order_id, lease)
            log.info("order %s deleted with token %s", order_id, lease.token,
                     extra={"event": "order_deleted", "order_id": order_id,
                            "invoice_id": order["invoice_id"], "token": lease.token})

        await self._fenced(order_id, under)

    # -- private ---------------------------------------------------------------------------

    async def _begin(self, order_id: str, lease: Lease, seen: dict | None, op: str,
                     plan: Callable[[dict], dict | None]) -> tuple[dict, dict | None]:
        """The order under `lease` and the changes `plan` makes of it, recorded as the
        intent (None, and no intent, if `plan` has nothing to change).

        No second read under the lease: the intent's write carries, in its filter, what
        the plan was made from as `seen` before the lease (`orders.order.PLANNED_FROM`)
        and "no intent", so one atomic write both checks our token and proves that the
        plan holds for the order as it is. If it changed in between, or carries an
        intent left by another holder, the order is read again under the lease, its
        intent settled, and the plan made again from what it is now.
        """
        order = seen if seen is not None and "intent" not in seen else None
        for attempt in (1, 2):
            if order is None:
                order = await self.interrupted.settled(order_id, lease)
            changes = plan(order)
            if attempt == 1:
                await self.faults.point("after_lock")
            if changes is None:
                return order, None
            intent = {"op": op, **changes, "at_us": validate.now_micros(),
                      "expires_us": validate.now_micros() + int(lease.remaining() * 1_000_000)}
            if await self.store.record_intent(order_id, lease.token, intent, seen=order):
                await self.faults.point("after_intent")
                return order, changes
            order = None
        write_outcomes.refused(self.store.metrics, "orders", "superseded")
        raise Locked("the lease ran out before the change began, and a newer operation "
                     "took over; try again")

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
                              "will be completed", dependency="invoices") from exc

    async def _fenced(self, order_id: str,
                      work: Callable[[Lease, dict | None], Awaitable[T]]) -> T:
        """Run `work` under one lease on the order and its invoice; heal once if the invoice
        reports a token above ours (Redis lost its counter). `work` gets the order as
        read before the lease, on the first try only (the second meets our own intent)."""
        order = await self.get(order_id)
        floor = order["fence"]
        for attempt in (1, 2):
            async with self._lease(order, floor) as lease:
                try:
                    return await work(lease, order if attempt == 1 else None)
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
        try:
            async with self.pair.hold(order, floor, timeout=self.lock_wait) as lease:
                yield lease
        except LockBusy:
            raise Locked(f"order {order['_id']} is being changed by another request") from None
