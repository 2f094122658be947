"""The repairer: settles what crashed or cut-off requests left half-done.

Every orders instance runs one, at start-up and then every REPAIR_INTERVAL_MS.
A pass looks for two things, each found by an index, a batch at a time:

- orders with an intent whose lease has run out (or that its request handed
  over after a failed invoice call): `OrderService.settle` rolls an update
  back and a delete forward, under a fresh lease;
- creations still pending after a lease time and an HTTP timeout:
  `OrderService.roll_back_create` tombstones the invoice and removes the order.

Orders and invoices can only disagree through one of those: no invoice is ever
written without an intent recorded first, so no sweep over every order is
needed. Several instances repairing at once is safe: each item is settled
under the lease of its pair, and a busy pair is left for the next pass.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Awaitable

from orders.service import OrderService
from servicekit import validate
from servicekit.metrics import Metrics

log = logging.getLogger(__name__)


@dataclass
class PassResult:
    settled: int = 0
    rolled_back: int = 0
    busy: int = 0
    failed: int = 0


class Repairer:
    def __init__(self, service: OrderService, interval_ms: int, pending_grace_ms: int,
                 batch: int = 100, metrics: Metrics | None = None) -> None:
        self.service = service
        self.metrics = metrics
        self.interval = interval_ms / 1000
        self.pending_grace_us = pending_grace_ms * 1000
        self.batch = batch

    async def run_once(self) -> PassResult:
        store = self.service.store
        result = PassResult()
        now = validate.now_micros()
        for doc in await store.expired_intents(now, self.batch):
            await self._attempt(result, "settled", self.service.settle(doc["_id"]))
        for doc in await store.stale_pending(now - self.pending_grace_us, self.batch):
            await self._attempt(result, "rolled_back", self.service.roll_back_create(doc))
        if self.metrics is not None:
            for kind in ("settled", "rolled_back", "busy", "failed"):
                if getattr(result, kind):
                    self.metrics.repairs.labels(kind).inc(getattr(result, kind))
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

    async def _attempt(self, result: PassResult, counter: str, work: Awaitable[bool]) -> None:
        try:
            done = await work
        except Exception as exc:  # one item's failure must not stop the pass
            log.warning("repair of one order failed, next pass tries again: %r", exc)
            result.failed += 1
            return
        if done:
            setattr(result, counter, getattr(result, counter) + 1)
        else:
            result.busy += 1
