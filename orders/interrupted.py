"""Settling what an interrupted change left: intents and creations never finished.

Intent before effect. A process can die between the invoice write and the
order commit, or lose the answer of an invoice call that was applied. The
intent recorded before the call says what was under way, and whoever next
holds the pair's lease settles it, with a token above the one that may still
be in flight (so a late invoice write of the dead holder is refused):

- an interrupted **update rolls back**: the invoice gets the order's
  committed total again. A caller that saw 424, or no answer, sees no change.
- an interrupted **delete rolls forward**: the invoice is deleted (again) and
  the order too. Deleting cannot be undone through the invoice API, and a
  delete is what its caller asked for; the caller saw 503 or no answer.
- an interrupted **create rolls back**: the order stays invisible
  ("pending"), the invoice, if it was made, is deleted (a tombstone, so a late
  create with the same id cannot bring it back), then the order is removed.

A create is rolled back only after its pending order was claimed under the
pair's lease (its fence raised to the repairer's token). The creator may be
alive, frozen past its lease; whichever comes first wins, the other stops::

    creator:  activate(T1): pending, fence ≤ T1 → created    ─┐ first: 201, the
    repairer: lease T2, claim: pending, fence ≤ T2 → fence T2 ─┘ claim finds nothing
    (claim first: the creator's activation is refused, it answers 424)

The next request on an order settles its intent inline (`settled`);
`orders.repair` calls `settle` and `roll_back_create` for the rest.
"""

from __future__ import annotations

import enum
import logging
from typing import Any

from fencing import Lease, LockBusy
from orders import order as orders
from orders.invoices_client import InvoicesClient, InvoiceStale
from orders.pair import PairLock
from servicekit import write_outcomes
from orders.errors import Locked
from servicekit.faults import Faults

log = logging.getLogger(__name__)


class Outcome(enum.Enum):
    DONE = "done"        # this call settled it
    NOTHING = "nothing"  # nothing was left to settle: another holder, or the creator, did
    BUSY = "busy"        # the pair is leased: the next pass tries again


class InterruptedChanges:
    def __init__(self, store: Any, invoices: InvoicesClient, pair: PairLock,
                 faults: Faults) -> None:
        self.store = store
        self.invoices = invoices
        self.pair = pair
        self.faults = faults

    async def settle(self, order_id: str) -> Outcome:
        """Settle the order's intent under a fresh lease."""
        order = await self.store.get(order_id)
        if order is None or "intent" not in order:
            return Outcome.NOTHING
        floor = order["fence"]
        for _ in (1, 2):
            try:
                async with self.pair.hold(order, floor) as lease:
                    claimed = await self._claim(order_id, lease)
                    if claimed is None or "intent" not in claimed:
                        return Outcome.NOTHING
                    await self._settle(claimed, lease)
                    return Outcome.DONE
            except LockBusy:
                return Outcome.BUSY
            except InvoiceStale as stale:  # Redis lost its counter: again, above it
                floor = max(floor, stale.current_token)
        return Outcome.BUSY

    async def roll_back_create(self, doc: dict) -> Outcome:
        """Undo a creation that never finished, unless its creator finishes it first."""
        try:
            async with self.pair.hold(doc, doc["fence"]) as lease:
                if not await self.store.claim_pending(doc["_id"], lease.token):
                    return Outcome.NOTHING  # activated by its creator, or rolled back
                await self.faults.point("after_claim")
                await self.invoices.create(doc["invoice_id"], doc["user_id"],
                                           doc["total_cents"])
                await self.invoices.delete(doc["invoice_id"], lease.token)
                await self.store.discard_pending(doc["_id"], lease.token)
                log.warning("order %s: unfinished creation rolled back with token %s "
                            "(invoice %s deleted)", doc["_id"], lease.token, doc["invoice_id"],
                            extra={"event": "create_rolled_back", "order_id": doc["_id"],
                                   "invoice_id": doc["invoice_id"], "token": lease.token})
                return Outcome.DONE
        except LockBusy:
            return Outcome.BUSY

    async def settled(self, order_id: str, lease: Lease) -> dict:
        """The order under `lease`, with any intent left by an earlier holder settled."""
        order = orders.visible(await self.store.get(order_id), order_id)
        if "intent" not in order:
            return order
        claimed = await self._claim(order_id, lease)
        if claimed is None:
            raise Locked(f"order {order_id} is being changed by another request")
        if "intent" not in claimed:
            return dict(claimed)
        return await self._settle(dict(claimed), lease)

    async def _claim(self, order_id: str, lease: Lease) -> dict | None:
        """The order with its fence raised to our token, read back; None if a newer token
        holds it. The order first, before any invoice write: the holder that left the
        intent may still be alive, and once the invoice carries our token its commit must
        meet our token on the order too. What the claim reads back is what is settled:
        that holder may have committed in between."""
        claimed = await self.store.fenced_update(order_id, lease.token, {}, live_only=False)
        return None if claimed is None else dict(claimed)

    async def commit_delete(self, order_id: str, lease: Lease,
                            deleted_us: int | None = None) -> None:
        """One write, not read back (two if the order was deleted already)."""
        if await self.store.fenced_set(order_id, lease.token, orders.deleted(deleted_us),
                                       clear_intent=True):
            return
        # Deleted already: only the intent goes.
        if await self.store.fenced_set(order_id, lease.token, {}, live_only=False,
                                       clear_intent=True):
            return
        write_outcomes.refused(self.store.metrics, "orders", "superseded")
        raise Locked("the lease ran out before the order was written, and a newer "
                     "operation took over; try again")

    async def _settle(self, order: dict, lease: Lease) -> dict:
        order_id, intent = order["_id"], order["intent"]
        if intent["op"] == "update":
            await self.invoices.update_total(order["invoice_id"], lease.token,
                                             order["total_cents"])
            doc = await self.store.fenced_update(order_id, lease.token, {}, live_only=False,
                                                 clear_intent=True)
            if doc is None:
                raise Locked(f"order {order_id} is being changed by another request")
        else:
            await self.invoices.delete(order["invoice_id"], lease.token)
            await self.commit_delete(order_id, lease, intent["deleted_us"])
            # Read back (rare path): which deleted_us stands depends on who deleted first.
            doc = orders.visible(await self.store.get(order_id), order_id)
        log.warning("order %s: interrupted %s of token %s %s with token %s", order_id,
                    intent["op"], intent["token"],
                    "rolled back" if intent["op"] == "update" else "completed", lease.token,
                    extra={"event": "intent_settled", "order_id": order_id,
                           "invoice_id": order["invoice_id"], "token": lease.token})
        return dict(doc)
