"""Two orders and two invoices instances, as processes, hammered on the same orders.

Eight clients send updates and a few deletes (of two orders of six), each to
a random instance, for a bounded number of calls and a bounded time. Update times come from one
counter, so arrivals out of order meet `event_outdated`, and the last accepted
update of an order is the one with the greatest update_time. Afterwards every
order must agree with its invoice, and equal its last accepted update.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import random
import time
from decimal import Decimal
from pathlib import Path
from typing import Iterator

import pytest
from tornado.ioloop import IOLoop

from servicekit.validate import format_micros
from tests.e2e.cluster import Cluster
from tests.stack import call

ORDERS = 6
CLIENTS = 8
MAX_CALLS = 1500
MAX_SECONDS = 12.0
DELETE_SHARE = 0.01  # of calls, and only on the first two orders
BASE_US = 1_900_000_000 * 1_000_000  # 2030: later than any order's creation


@pytest.fixture
def cluster(cluster_env: dict[str, str], tmp_path: Path, io_loop: IOLoop) -> Iterator[Cluster]:
    running = Cluster.start(tmp_path, cluster_env, orders=2, invoices=2)
    yield running
    running.stop()
    io_loop.run_sync(running.close_clients)


def rfc3339(micros: int) -> str:
    seconds, fraction = divmod(micros, 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:06d}Z"


@pytest.mark.slow
@pytest.mark.gen_test(timeout=90)
async def test_concurrent_updates_on_many_instances_leave_orders_and_invoices_agreeing(
        cluster: Cluster) -> None:
    orders = [await cluster.create_order(instance=i % 2, quantity=1, value="0.10")
              for i in range(ORDERS)]
    ids = [order["id"] for order in orders]
    ticks = itertools.count(1)
    calls = itertools.count()
    deadline = time.monotonic() + MAX_SECONDS
    accepted: dict[str, list[tuple[int, int, Decimal]]] = collections.defaultdict(list)
    deleted: set[str] = set()
    statuses: collections.Counter[tuple[str, int]] = collections.Counter()
    rng = random.Random(7)

    async def client() -> None:
        while next(calls) < MAX_CALLS and time.monotonic() < deadline:
            order_id = rng.choice(ids)
            instance = rng.choice(cluster.orders)
            url = f"{instance.url}/orders/{order_id}"
            if rng.random() < DELETE_SHARE and order_id in ids[:2]:
                reply = await call("DELETE", url)
                statuses["DELETE", reply.status] += 1
                if reply.status == 204:
                    deleted.add(order_id)
                continue
            update_us = BASE_US + next(ticks) * 1000
            quantity, value = rng.randint(1, 50), Decimal(rng.randint(1, 99_999)).scaleb(-2)
            reply = await call("PATCH", url, {"update_time": rfc3339(update_us),
                                              "quantity": quantity, "value": value})
            statuses["PATCH", reply.status] += 1
            if reply.status == 200:
                accepted[order_id].append((update_us, quantity, value))

    started = time.monotonic()
    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    elapsed = time.monotonic() - started
    print(f"{sum(statuses.values())} calls in {elapsed:.1f}s: {dict(statuses)}")

    allowed = {("PATCH", 200), ("PATCH", 409), ("PATCH", 423), ("DELETE", 204),
               ("DELETE", 423)}
    assert set(statuses) <= allowed, statuses
    assert statuses["PATCH", 200] >= 20, "too little got through to prove anything"
    assert await cluster.disagreements(ids) == []
    for order_id in ids:
        order = (await call("GET", f"{cluster.orders[1].url}/orders/{order_id}")).json
        assert (order["deleted_at"] is not None) == (order_id in deleted)
        if accepted[order_id]:
            update_us, quantity, value = max(accepted[order_id])
            assert order["updated_at"] == format_micros(update_us)
            assert (order["quantity"], order["value"]) == (quantity, value), order_id
            assert order["total"] == quantity * value
