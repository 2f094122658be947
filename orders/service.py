"""The orders change flow, top-down, as named steps (docs/services/change-flow.md).

::

    update, delete   read ─► lease ─► record the intent ─► call invoices ─► commit ─► release
    create           lease ─► insert pending ─► create the invoice ─► activate ─► release
    settle           claim ─► write the invoice ─► commit       (under the caller's lease)
    roll back create lease ─► claim pending ─► tombstone the invoice ─► discard ─► release

Every step ends at a fault point (`orders.faults.POINTS`), where a test can
crash, stop or delay the flow. A lease covers the order and its invoice
(`orders.pair.resources`); both stores refuse a token below the highest they
accepted, so a holder paused past its lease changes nothing when it wakes.

Settling is one path, for the next request on the order (inline, before its own
change) and for the repairer (`settle_left_intent`) alike, and it claims the
order before it writes anywhere: once the invoice carries the settler's token,
the paused holder's commit meets that token on the order too.
"""

from __future__ import annotations

import contextlib
import enum
import logging
from typing import AsyncIterator, Awaitable, Callable, Iterator, TypeVar

from fencing import Lease, LockBusy
from orders.errors import EventOutdated, IdempotencyKeyReused, InvoiceFailed, Locked, OrderDeleted
from orders.changes import Changes
from orders.intent import Op, new_intent
from orders.order import (Order, OrderRequest, as_committed, delete_changes,
                          invoice_request, new_order, update_changes, visible)
from orders.pair import resources
from orders.store import OrderStore
from servicekit import validate, write_outcomes
from servicekit.errors import Unavailable
from servicekit.faults import Faults
from servicekit.invoices_client import InvoiceCallFailed, InvoicesClient, InvoiceStale, answer_for
from servicekit.observed_lock import ObservedLock

log = logging.getLogger(__name__)

T = TypeVar("T")
Plan = Callable[[Order], Changes | None]


class Outcome(enum.Enum):
    """What the repairer's call did to one item."""
    DONE = "done"        # this call settled it
    NOTHING = "nothing"  # nothing was left to settle: another holder, or the creator, did
    BUSY = "busy"        # the pair is leased: the next pass tries again


class OrderService:
    def __init__(self, store: OrderStore, invoices: InvoicesClient, lock: ObservedLock,
                 lock_wait_ms: int, faults: Faults) -> None:
        self.store = store
        self.invoices = invoices
        self.lock = lock
        self.lock_wait = lock_wait_ms / 1000 if lock_wait_ms > 0 else None
        self.faults = faults
        # Renewed for at most the longest a block can take: waiting for the pair, and
        # an invoice call twice over (its timeout, then the heal after stale_token). A
        # block stuck longer lets its lease go, and the stores refuse what it writes late.
        self.max_hold = lock.ttl_ms / 1000 + (self.lock_wait or 0) + 2 * invoices.timeout

    async def get(self, order_id: str) -> Order:
        return visible(await self.store.get(order_id), order_id)

    # -- create: lease, insert pending, create the invoice, activate, release ----------------

    async def create(self, request: OrderRequest, idempotency_key: str | None) -> Order:
        """The order service picks the invoice id, so a retried create never makes a second
        invoice; the order stays invisible ("pending") until its invoice exists, and the
        pair stays leased meanwhile, so the repairer leaves a create in flight alone. A
        creator that outlived its lease meets the repairer's claim: one of the two wins.

        Three MongoDB operations: the order's insert (pending; it also claims the
        Idempotency-Key), the invoice's insert, and the activation, not read back."""
        order = new_order(request, idempotency_key)
        with _busy_is_locked(order["_id"]):
            async with self._lease(order, 0) as lease:
                order["fence"] = lease.token
                if await self._insert_pending(order):
                    return await self._finish_create(order, lease)
            return await self._create_again(order)

    async def _insert_pending(self, order: Order) -> bool:
        if not await self.store.insert(order):
            return False  # the Idempotency-Key is taken
        await self._step("after_insert")
        return True

    async def _create_again(self, order: Order) -> Order:
        """The key is taken: the order an earlier try made, finished if it is not yet."""
        existing = await self._by_key(order)
        if existing["status"] != "pending":
            return existing
        async with self._lease(existing, existing["fence"]) as lease:
            current = await self.store.get(existing["_id"])
            if current is None:
                raise InvoiceFailed("an earlier try with this key was rolled back; try again")
            if current["status"] != "pending":
                return current
            return await self._finish_create(current, lease)

    async def _by_key(self, order: Order) -> Order:
        key = order.get("idempotency_key")
        existing = await self.store.by_idempotency_key(key) if key else None
        if existing is None:
            raise InvoiceFailed("a concurrent create with this key failed; try again")
        if existing.get("request_hash") != order.get("request_hash"):
            raise IdempotencyKeyReused("this Idempotency-Key was used with another body")
        return existing

    async def _finish_create(self, order: Order, lease: Lease) -> Order:
        live = await self._call_invoices("create", order, lease,
                                         self.invoices.create(invoice_request(order)))
        await self._step("after_invoice_create")
        if not live:
            # A rollback claimed the order and tombstoned its invoice, then stopped before
            # it removed the order; a retry's newer lease lets it through to here.
            await self.store.discard_pending(order["_id"], lease.token)
            raise InvoiceFailed("the order's creation took too long and was rolled back")
        await self._step("before_activate")
        if not await self.store.activate(order["_id"], lease.token):
            # The repairer claimed it first (see roll_back_create).
            raise InvoiceFailed("the order's creation took too long and was rolled back")
        created: Order = {**order, "status": "created", "fence": lease.token}
        log.info("order %s created with invoice %s", created["_id"], created["invoice_id"],
                 extra={"event": "order_created", "order_id": created["_id"],
                        "invoice_id": created["invoice_id"], "token": lease.token})
        return created

    # -- update and delete: read, lease, record the intent, call invoices, commit, release ---

    async def update(self, order_id: str, update_us: int, quantity: int | None,
                     value_cents: int | None) -> Order:
        """Four MongoDB operations, uncontended: the read (the invoice id and the
        lease's floor), the intent, the invoice's write (not read back) and the commit
        (its document is known: the one read, with the changes)."""
        def plan(order: Order) -> Changes:
            if order["deleted_us"] is not None:
                raise OrderDeleted(f"order {order_id} is deleted")
            if update_us < order["updated_us"]:
                raise EventOutdated("update_time is earlier than the order's updated_at")
            return update_changes(order, update_us, quantity, value_cents)

        return await self._change(order_id, "update", plan)

    async def delete(self, order_id: str) -> None:
        """Four MongoDB operations, uncontended, as an update: the read, the intent, the
        invoice's delete and the commit, none of them read back. A deleted order is
        deleted again: its invoice's delete is sent again, which heals an invoice that
        something outside this service touched, and a repeat costs nothing."""
        await self._change(order_id, "delete",
                           lambda order: delete_changes() if order["deleted_us"] is None else None)

    async def _change(self, order_id: str, op: Op, plan: Plan) -> Order:
        seen = await self.get(order_id)
        await self._step("after_read")
        recorded = False  # a delete's intent is on the order: it is done, or will be

        async def under(lease: Lease, first: bool) -> Order:
            nonlocal recorded
            order, changes = await self._record_intent(lease, op, plan, order_id,
                                                       seen if first else None)
            recorded = op == "delete" and changes is not None
            if changes is None:  # nothing to change: a delete of a deleted order
                await self._call_invoices("resend", order, lease, self.invoices.delete(
                    order["invoice_id"], lease.token))
                return order
            await self._call_invoices(op, order, lease,
                                      self._invoice_write(order, changes, lease))
            await self._step("after_invoice_write")
            await self._step("before_order_commit")
            return await self._commit(order, changes, lease)

        try:
            with _busy_is_locked(order_id):
                return await self._leased(seen, under)
        except Locked:
            if not recorded:
                raise  # nothing of ours lasts: a newer holder rolls an update back
            # A newer holder took the order over, met our intent and rolls the delete
            # forward (or the repairer will): 503 promises no more than that.
            raise Unavailable("a newer operation took the order over; it completes the "
                              "delete") from None

    async def _record_intent(self, lease: Lease, op: Op, plan: Plan, order_id: str,
                             seen: Order | None) -> tuple[Order, Changes | None]:
        """The order under `lease` and the changes `plan` makes of it, recorded as the
        intent (None, and no intent, if `plan` has nothing to change).

        No second read under the lease: the intent's write carries, in its filter, what
        the plan was made from as `seen` before the lease, and "no intent"
        (`orders.intent.unchanged`), so one atomic write both checks our token and
        proves that the plan holds for the order as it is. If it changed in between,
        or carries an intent left by another holder, the order is read again under
        the lease, that intent settled, and the plan made again from what it is now.
        """
        order = seen if seen is not None and "intent" not in seen else None
        for attempt in (1, 2):
            if order is None:
                order = await self._read_under_lease(order_id, lease)
            changes = plan(order)
            if attempt == 1:
                await self._step("after_lock")
            if changes is None:
                return order, None
            if await self.store.record_intent(order_id, new_intent(op, changes, lease),
                                              seen=order):
                await self._step("after_intent")
                return order, changes
            order = None
        raise self._superseded("the lease ran out before the change began")

    def _invoice_write(self, order: Order, changes: Changes, lease: Lease) -> Awaitable[None]:
        if changes["status"] == "deleted":
            return self.invoices.delete(order["invoice_id"], lease.token)
        return self.invoices.update_total(order["invoice_id"], lease.token,
                                          changes["total_cents"])  # type: ignore[typeddict-item]

    async def _commit(self, order: Order, changes: Changes, lease: Lease) -> Order:
        order_id, token = order["_id"], lease.token
        # The intent's write proved `order` current, and under the lease nothing else
        # wrote since: the order now is that one with our changes.
        committed = as_committed(order, token, changes)
        extra = {"order_id": order_id, "invoice_id": order["invoice_id"], "token": token}
        if changes["status"] == "deleted":
            await self._commit_delete(order_id, lease, changes)
            log.info("order %s deleted with token %s", order_id, token,
                     extra={"event": "order_deleted", **extra})
        else:
            if not await self.store.write(order_id, token, changes, clear_intent=True):
                raise self._superseded("the lease ran out before the order was written")
            log.info("order %s updated with token %s: total %s", order_id, token,
                     validate.cents_to_decimal(committed["total_cents"]),
                     extra={"event": "order_updated", **extra})
        return committed

    async def _commit_delete(self, order_id: str, lease: Lease, changes: Changes) -> None:
        """One write, not read back (two if the order was deleted already)."""
        if await self.store.write(order_id, lease.token, changes, clear_intent=True):
            return
        # Deleted already: only the intent goes.
        if await self.store.write(order_id, lease.token, {}, live_only=False,
                                  clear_intent=True):
            return
        raise self._superseded("the lease ran out before the order was written")

    # -- settle: claim, write the invoice, commit (under the caller's lease) -----------------

    async def settle_left_intent(self, order_id: str) -> Outcome:
        """The repairer's: settle the intent a holder left on the order, under a lease of
        its own."""
        order = await self.store.get(order_id)
        if order is None or "intent" not in order:
            return Outcome.NOTHING
        try:
            settled = await self._leased(
                order, lambda lease, _: self._settle_intent(order_id, lease))
        except LockBusy:
            return Outcome.BUSY
        return Outcome.DONE if settled[1] else Outcome.NOTHING

    async def _read_under_lease(self, order_id: str, lease: Lease) -> Order:
        """The next request's: the order under `lease`, any intent left on it settled."""
        order = visible(await self.store.get(order_id), order_id)
        if "intent" not in order:
            return order
        settled, _ = await self._settle_intent(order_id, lease)
        if settled is None:
            raise Locked(f"order {order_id} is being changed by another request")
        return visible(settled, order_id)

    async def _settle_intent(self, order_id: str, lease: Lease) -> tuple[Order | None, bool]:
        """Claim the order, then roll its intent's update back or its delete forward.
        The order as settled (None if a newer token holds it) and whether this call
        settled an intent (what the claim reads back may carry none: its holder
        committed in between)."""
        claimed = await self.store.claim(order_id, lease.token)
        await self._step("after_settle_claim")
        if claimed is None or "intent" not in claimed:
            return claimed, False
        intent, invoice_id = claimed["intent"], claimed["invoice_id"]
        if intent["op"] == "update":
            await self._call_invoices("settle", claimed, lease, self.invoices.update_total(
                invoice_id, lease.token, claimed["total_cents"]))
            await self._step("after_settle_invoice")
            if not await self.store.write(order_id, lease.token, {}, live_only=False,
                                          clear_intent=True):
                raise Locked(f"order {order_id} is being changed by another request")
            settled: Order | None = as_committed(claimed, lease.token)
        else:
            await self._call_invoices("settle", claimed, lease,
                                      self.invoices.delete(invoice_id, lease.token))
            await self._step("after_settle_invoice")
            await self._commit_delete(order_id, lease, delete_changes(intent.get("deleted_us")))
            # Read back (rare path): which deleted_us stands depends on who deleted first.
            settled = await self.store.get(order_id)
        log.warning("order %s: interrupted %s of token %s %s with token %s", order_id,
                    intent["op"], intent["token"],
                    "rolled back" if intent["op"] == "update" else "completed", lease.token,
                    extra={"event": "intent_settled", "order_id": order_id,
                           "invoice_id": invoice_id, "token": lease.token})
        return settled, True

    # -- roll back a create: lease, claim pending, tombstone the invoice, discard, release ---

    async def roll_back_create(self, order: Order) -> Outcome:
        """The repairer's: undo a creation that never finished, unless its creator
        finishes it first. The claim raises the pending order's fence to our token, so
        that from then on the creator's activation is refused; if the creator activated
        first, the claim matches nothing and the pair is left alone."""
        try:
            async with self._lease(order, order["fence"]) as lease:
                if not await self.store.claim_pending(order["_id"], lease.token):
                    return Outcome.NOTHING  # activated by its creator, or rolled back
                await self._step("after_claim")
                # Created first, then deleted: a tombstone, so a late create with the
                # same id cannot bring the invoice back.
                await self.invoices.create(invoice_request(order))
                await self.invoices.delete(order["invoice_id"], lease.token)
                await self._step("after_tombstone")
                await self.store.discard_pending(order["_id"], lease.token)
        except LockBusy:
            return Outcome.BUSY
        log.warning("order %s: unfinished creation rolled back with token %s (invoice %s "
                    "deleted)", order["_id"], lease.token, order["invoice_id"],
                    extra={"event": "create_rolled_back", "order_id": order["_id"],
                           "invoice_id": order["invoice_id"], "token": lease.token})
        return Outcome.DONE

    # -- the lease, the retry after stale_token, invoice failures ----------------------------

    @contextlib.asynccontextmanager
    async def _lease(self, order: Order, floor: int) -> AsyncIterator[Lease]:
        """The pair's lease, renewed while the block runs; `LockBusy` if it is not free
        within LOCK_WAIT_MS."""
        async with self.lock.hold(*resources(order), timeout=self.lock_wait, floor=floor,
                                  max_hold=self.max_hold) as lease:
            try:
                yield lease
            finally:
                await self._step("before_release")

    async def _leased(self, order: Order, work: Callable[[Lease, bool], Awaitable[T]]) -> T:
        """`work(lease, first)` under one lease on the order's pair, its floor the
        order's fence; once more, above the invoice's token, if the invoice answers
        stale_token (Redis lost its counter). The second try meets our own intent."""
        floor = order["fence"]
        for attempt in (1, 2):
            async with self._lease(order, floor) as lease:
                try:
                    return await work(lease, attempt == 1)
                except InvoiceStale as stale:
                    if attempt == 2:
                        raise InvoiceFailed("the invoice refused the token twice") from stale
                    log.warning("order %s: invoice holds token %s above ours %s; taking a new "
                                "lease above it", order["_id"], stale.current_token,
                                lease.token)
                    floor = max(floor, stale.current_token)
        raise AssertionError("unreachable")

    async def _call_invoices(self, op: str, order: Order, lease: Lease,
                             call: Awaitable[T]) -> T:
        """The one place an invoice call's failure becomes an answer (`answer_for`).

        What is left is cleaned up first. Certainly not applied: a create's pending
        order is discarded, a change's intent cleared. Maybe applied: a create is left
        to the repairer to roll back, an update's intent is handed to it at once, a
        delete is rolled forward (503). stale_token is not an answer: `_leased`
        leases again above it, and the next holder settles the intent."""
        try:
            return await call
        except InvoiceStale:
            raise
        except InvoiceCallFailed as exc:
            log.warning("order %s: invoice call of the %s failed (%s)", order["_id"], op, exc)
            intent_stays = exc.maybe_applied
            if not exc.maybe_applied and op == "create":
                await self.store.discard_pending(order["_id"], lease.token)
            elif not exc.maybe_applied and op in ("update", "delete"):
                # Refused: a newer holder took the order over, and settles our intent.
                intent_stays = not await self.store.write(
                    order["_id"], lease.token, {}, live_only=False, clear_intent=True)
            elif op == "update":
                await self.store.give_up_intent(order["_id"], lease.token)
            raise answer_for(exc, rolled_forward=op == "delete" and intent_stays) from exc

    async def _step(self, name: str) -> None:
        await self.faults.point(name)

    def _superseded(self, what: str) -> Locked:
        write_outcomes.refused(self.store.metrics, "orders", "superseded")
        return Locked(f"{what}, and a newer operation took over; try again")


@contextlib.contextmanager
def _busy_is_locked(order_id: str) -> Iterator[None]:
    try:
        yield
    except LockBusy:
        raise Locked(f"order {order_id} is being changed by another request") from None
