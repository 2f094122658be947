"""A bounded concurrent workload on the orders API, and an independent checker.

`Workload.run()` sends updates (and a few deletes) to random orders on random
orders instances from several clients, until a call count or a time limit is
reached, whichever comes first. Update times come from one counter, so
concurrent calls arrive out of order and meet `event_outdated`. It records
what it sent and what was acknowledged. One more task reads orders while the
workload runs and notes every `updated_at` that went backwards, or a deleted
order that came back: a write accepted after a newer one.

`check()` judges only what it observes through HTTP, after the fact:

- **disagreeing**: an order and its invoice differ (total, or deleted state);
- **lost updates**: an order's final state is older than an update that was
  acknowledged with 200, or an acknowledged delete did not happen;
- **stale writes accepted**: seen while running (above), plus final states
  that no call asked for (values of one call with the time of another).
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import random
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Sequence

from devstack.history import History
from devstack.http import request
from servicekit.validate import format_micros, timestamp_field

BASE_US = 1_900_000_000 * 1_000_000  # 2030: later than any order's creation
USER = "6f1d6c4e-6a8e-4e55-9a43-5b0c1f3e2a10"
ITEM = "0b7e3c52-2f5d-4c9b-8a55-7c7f0f1e9d21"


def parse_micros(text: str) -> int:
    return timestamp_field({"t": text}, "t")


async def create_orders(orders_url: str, count: int) -> list[dict]:
    created = []
    for _ in range(count):
        status, order = await request("POST", f"{orders_url}/orders", {
            "user_id": USER, "item_id": ITEM, "quantity": 1, "value": 1})
        if status != 201:
            raise RuntimeError(f"could not create an order: {status} {order}")
        created.append(order)
    return created


@dataclass
class Workload:
    orders_urls: Callable[[], Sequence[str]]  # the instances up now
    orders: list[dict]
    clients: int = 8
    max_calls: int = 400
    max_seconds: float = 15.0
    delete_share: float = 0.01
    deletable: int = 2  # only the first few orders may be deleted
    seed: int = 7
    sent: dict[str, dict[int, tuple[int, Decimal]]] = field(
        default_factory=lambda: collections.defaultdict(dict))
    acknowledged: dict[str, list[int]] = field(
        default_factory=lambda: collections.defaultdict(list))
    deletes_acknowledged: set[str] = field(default_factory=set)
    statuses: collections.Counter = field(default_factory=collections.Counter)
    regressions: list[Anomaly] = field(default_factory=list)
    history: History = field(default_factory=History)

    @property
    def calls(self) -> int:
        return sum(self.statuses.values())

    async def patch(self, process: int | str, base: str, order_id: str, update_us: int,
                    quantity: int, value: Decimal, timeout: float = 10.0) -> int | None:
        """One update, recorded as sent, in the history, and as acknowledged on 200."""
        url = f"{base}/orders/{order_id}"
        self.sent[order_id][update_us] = (quantity, value)
        body = {"update_time": format_micros(update_us), "quantity": quantity,
                "value": float(value)}
        invoked = self.history.invoke(process, url, order_id, "update", body)
        status, reply = await request("PATCH", url, body, timeout=timeout)
        self.history.complete(invoked, status, _error(reply))
        self.statuses["PATCH", status] += 1
        if status == 200:
            self.acknowledged[order_id].append(update_us)
        return status

    async def delete(self, process: int | str, base: str, order_id: str) -> int | None:
        url = f"{base}/orders/{order_id}"
        invoked = self.history.invoke(process, url, order_id, "delete")
        status, reply = await request("DELETE", url)
        self.history.complete(invoked, status, _error(reply))
        self.statuses["DELETE", status] += 1
        if status == 204:
            self.deletes_acknowledged.add(order_id)
        return status

    async def run(self) -> None:
        rng = random.Random(self.seed)
        ticks, calls = itertools.count(1), itertools.count()
        deadline = time.monotonic() + self.max_seconds
        ids = [order["id"] for order in self.orders]
        running = True

        async def client(process: int) -> None:
            while next(calls) < self.max_calls and time.monotonic() < deadline:
                urls = self.orders_urls()
                if not urls:
                    await asyncio.sleep(0.05)
                    continue
                order_id, base = rng.choice(ids), rng.choice(list(urls))
                if order_id in ids[:self.deletable] and rng.random() < self.delete_share:
                    await self.delete(process, base, order_id)
                    continue
                update_us = BASE_US + next(ticks) * 1000
                quantity = rng.randint(1, 50)
                value = Decimal(rng.randint(1, 99_999)).scaleb(-2)
                await self.patch(process, base, order_id, update_us, quantity, value)

        async def watcher() -> None:
            seen: dict[str, tuple[int, bool]] = {}
            while running:
                urls = self.orders_urls()
                if not urls:
                    await asyncio.sleep(0.05)
                    continue
                order_id = rng.choice(ids)
                status, order = await request("GET", f"{rng.choice(list(urls))}/orders/{order_id}",
                                              timeout=2.0)
                if status == 200:
                    now = (parse_micros(order["updated_at"]), order["deleted_at"] is not None)
                    before = seen.get(order_id)
                    if before and (now[0] < before[0] or (before[1] and not now[1])):
                        seen_back = Anomaly(
                            order_id, "stale write", self.history.now(),
                            f"went back from {format_micros(before[0])} to "
                            f"{format_micros(now[0])}: a write older than one already seen "
                            "was accepted after it")
                        if all(seen.detail != seen_back.detail for seen in self.regressions):
                            self.regressions.append(seen_back)
                    seen[order_id] = max(before or now, now)
                await asyncio.sleep(0.01)

        watching = asyncio.ensure_future(watcher())
        try:
            await asyncio.gather(*(client(process) for process in range(self.clients)))
        finally:
            running = False
            await watching


@dataclass(frozen=True)
class Anomaly:
    """One thing the checker found wrong, and when (seconds on the history's clock)."""

    order: str
    kind: str  # "disagreeing", "lost update" or "stale write"
    at: float
    detail: str

    def __str__(self) -> str:
        return f"{self.order}: {self.detail}"


@dataclass
class Report:
    orders: int
    calls: int
    acknowledged: int
    disagreeing: list[Anomaly]
    lost_updates: list[Anomaly]
    stale_writes: list[Anomaly]

    @property
    def anomalies(self) -> int:
        return len(self.disagreeing) + len(self.lost_updates) + len(self.stale_writes)

    @property
    def all(self) -> list[Anomaly]:
        return self.disagreeing + self.lost_updates + self.stale_writes


def pair_disagreement(order: dict, invoice: dict) -> str | None:
    """How an order and its invoice, as the API shows them, differ; None if they agree."""
    deleted = (order["deleted_at"] is not None, invoice["deleted_at"] is not None)
    if Decimal(str(order["total"])) == Decimal(str(invoice["total"])) and \
            deleted[0] == deleted[1]:
        return None
    return (f"order total {order['total']}, invoice total {invoice['total']}"
            + (f"; order deleted {deleted[0]}, invoice deleted {deleted[1]}"
               if deleted[0] != deleted[1] else "")
            + ": one store kept a change the other lost or never got")


def _error(reply: Any) -> str | None:
    return reply.get("error") if isinstance(reply, dict) else None


async def check(workload: Workload, orders_url: str, invoices_url: str) -> Report:
    """Read every order and its invoice over HTTP and judge them against what was sent."""
    disagreeing, lost, stale = [], [], list(workload.regressions)
    at = workload.history.now()
    for order in workload.orders:
        order_id = order["id"]
        _, final = await request("GET", f"{orders_url}/orders/{order_id}")
        _, invoice = await request("GET", f"{invoices_url}/invoices/{order['invoice_id']}")
        problem = pair_disagreement(final, invoice)
        if problem:
            disagreeing.append(Anomaly(order_id, "disagreeing", at, problem))
        final_us = parse_micros(final["updated_at"])
        acknowledged = workload.acknowledged.get(order_id, [])
        if acknowledged and final_us < max(acknowledged):
            lost.append(Anomaly(order_id, "lost update", at, (
                f"update of {format_micros(max(acknowledged))} acknowledged with 200, order shows "
                f"{final['updated_at']}: an older write overwrote it")))
        if order_id in workload.deletes_acknowledged and final["deleted_at"] is None:
            lost.append(Anomaly(order_id, "lost update", at,
                                "delete acknowledged with 204, order not deleted"))
        asked = workload.sent.get(order_id, {}).get(final_us)
        if final_us >= 1_800_000_000 * 1_000_000 and asked is not None and (
                final["quantity"], Decimal(str(final["value"]))) != asked:
            stale.append(Anomaly(order_id, "stale write", at, (
                f"values {final['quantity']} x {final['value']} with the time of a call that "
                f"asked for {asked[0]} x {asked[1]}: two writers' changes mixed")))
    return Report(len(workload.orders), workload.calls,
                  sum(len(v) for v in workload.acknowledged.values()), disagreeing, lost, stale)
