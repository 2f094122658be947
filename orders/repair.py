"""The repairer: schedules the settling of what crashed or cut-off requests left half-done.

Every orders instance runs one, at start-up and then every REPAIR_INTERVAL_MS.
A pass looks for two things, each found by an index, a batch at a time, and
hands each to the flow in `orders.service`:

- orders with an intent whose lease has run out (or that its request handed
  over after a failed invoice call): `settle_left_intent` rolls an update back
  and a delete forward, under a fresh lease, by the settling path the next
  request takes too;
- creations still pending after a lease time and an HTTP timeout:
  `roll_back_create` claims the order, tombstones the invoice and removes the
  order.

Orders and invoices can only disagree through one of those: no invoice is ever
written without an intent recorded first, so no sweep over every order is
needed. Several instances repairing at once is safe: each item is settled
under the lease of its pair, and a busy pair is left for the next pass.

Each pass counts into `repairs_total{kind}`, for this instance: `settled` and
`rolled_back` only for what this repairer did itself (an item another holder
finished first counts nowhere), `busy` for pairs left to the next pass,
`failed` for items whose settling raised.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Awaitable

from prometheus_client import Counter

from orders.service import OrderService, Outcome
from servicekit import validate
from servicekit.metrics import Metrics

log = logging.getLogger(__name__)

KINDS = ("settled", "rolled_back", "busy", "failed")


def repairs_counter(metrics: Metrics) -> Counter:
    """`repairs_total{kind}`, in the instance's registry (register it once per registry)."""
    return Counter("repairs", "Interrupted changes handled by the repairer", ["kind"],
                   registry=metrics.registry)


@dataclass
class PassResult:
    settled: int = 0
    rolled_back: int = 0
    busy: int = 0
    failed: int = 0


class Repairer:
    def __init__(self, service: OrderService, interval_ms: int,
                 pending_grace_ms: int, batch: int = 100,
                 repairs: Counter | None = None) -> None:
        self.service = service
        self.repairs = repairs
        self.interval = interval_ms / 1000
        self.pending_grace_us = pending_grace_ms * 1000
        self.batch = batch

    async def run_once(self) -> PassResult:
        store = self.service.store
        result = PassResult()
        now = validate.now_micros()
        for doc in await store.expired_intents(now, self.batch):
            await self._attempt(result, "settled", self.service.settle_left_intent(doc["_id"]))
        for doc in await store.stale_pending(now - self.pending_grace_us, self.batch):
            await self._attempt(result, "rolled_back", self.service.roll_back_create(doc))
        if self.repairs is not None:
            for kind in KINDS:
                if getattr(result, kind):
                    self.repairs.labels(kind).inc(getattr(result, kind))
        if result.settled or result.rolled_back or result.failed:
            log.info("repair pass: %s", result)
        return result

    async def run_forever(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception as exc:  # a pass that cannot read MongoDB tries again later
                log.warning("repair pass failed: %r", exc)
            await asyncio.sleep(self.interval)

    async def _attempt(self, result: PassResult, kind: str, work: Awaitable[Outcome]) -> None:
        try:
            outcome = await work
        except Exception as exc:  # one item's failure must not stop the pass
            log.warning("repair of one order failed, next pass tries again: %r", exc)
            result.failed += 1
            return
        if outcome is Outcome.DONE:
            setattr(result, kind, getattr(result, kind) + 1)
        elif outcome is Outcome.BUSY:
            result.busy += 1
