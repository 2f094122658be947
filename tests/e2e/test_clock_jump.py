"""Redis's clock jumps forward past the lease while a holder is inside its critical
section: the lease ends early, another holder takes over, and the tokens still
keep every store right. The naive lock of `make chaos` under the same jump loses
the pair (the control, asserted in the same test).

redis-server runs under libfaketime (devstack.clock) and expires keys by its wall
clock; jumping that clock 60 s ahead ends a 10 s lease at once, as an NTP step or
a VM resumed from a snapshot would. The holder, orders-0, is held at a fault
point (SIGSTOP after its invoice write) for exactly as long as the test needs,
so the interleaving is the same on every run::

    A (orders-0)  lease, invoice ← A ──[stopped at after_invoice_write .......]── order ← A?
    Redis clock              +60 s: A's lease gone │
    B (orders-1)                                   lease, invoice ← B, order ← B, 200
    fenced: the stores refuse A's lower token; naive: A's order write wins, invoice says B
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest
import redis.asyncio as aredis

from devstack import RedisServer
from devstack.clock import FakeClock
from tests.e2e.cluster import Cluster, wait_until
from tests.stack import call

A_TIME, B_TIME = "2030-01-01T00:00:00Z", "2030-01-01T00:00:01Z"
LEASE = {"LOCK_TTL_MS": "10000", "REPAIR_INTERVAL_MS": "300"}
STOP_A = {"DLOCK_TEST_MODE": "1", "DLOCK_FAULTS": "after_invoice_write=stop"}


async def race_across_a_jump(cluster: Cluster, redis: aredis.Redis, clock: FakeClock,
                             prefix: str) -> tuple[dict, int, int, dict]:
    """A stopped inside its critical section, Redis's clock jumped past its lease, B's
    update, then A woken: (the order, A's status, B's status, B's order)."""
    order = await cluster.create_order(instance=1, quantity=1, value="10")
    a, b = cluster.orders
    late = asyncio.ensure_future(call("PATCH", f"{a.url}/orders/{order['id']}",
                                      {"update_time": A_TIME, "quantity": 2}, timeout=40))
    await wait_until(lambda: a.frozen, 10, "orders-0 stops after its invoice write")
    held = [key async for key in redis.scan_iter(f"{prefix}:*lock:*")]
    assert held, "A holds its lease"
    assert min([await redis.pttl(key) for key in held]) > 5000, "and it has seconds to run"

    clock.jump(60)
    assert await redis.exists(*held) == 0, "the jump ended A's lease at once"

    current = await call("PATCH", f"{b.url}/orders/{order['id']}",
                         {"update_time": B_TIME, "quantity": 3})
    a.resume()
    late_reply = await late
    return order, late_reply.status, current.status, current.json


@pytest.mark.slow
@pytest.mark.gen_test(timeout=90)
async def test_a_clock_jump_ends_a_lease_early_and_only_fencing_keeps_the_pair(
        cluster_env: dict[str, str], tmp_path: Path) -> None:
    clock = FakeClock(tmp_path / "redis-clock")
    server = RedisServer(log_path=str(tmp_path / "redis.log"), clock=clock)
    server.start()
    redis = aredis.Redis.from_url(server.url)
    try:
        fenced_env = {**cluster_env, **LEASE, "REDIS_URL": server.url}
        (tmp_path / "fenced").mkdir()
        (tmp_path / "naive").mkdir()
        fenced = Cluster.start(tmp_path / "fenced", fenced_env, orders=2, invoices=1,
                               orders_env=[STOP_A, {}])
        try:
            order, a_status, b_status, b_order = await race_across_a_jump(
                fenced, redis, clock, fenced_env["LOCK_PREFIX"])
            assert b_status == 200, b_order
            # A's next fenced write met B's higher token: nothing of A's change lasts
            assert a_status in (423, 409), a_status
            assert await fenced.disagreements([order["id"]]) == []
            final = (await call("GET", f"{fenced.orders[1].url}/orders/{order['id']}")).json
            assert final == b_order and final["total"] == Decimal(30)
        finally:
            fenced.stop()
            await fenced.close_clients()

        naive_env = {**fenced_env, "MONGO_DB": cluster_env["MONGO_DB"] + "_naive",
                     "LOCK_PREFIX": cluster_env["LOCK_PREFIX"] + "_naive",
                     "DLOCK_TEST_MODE": "1", "DLOCK_UNSAFE_NAIVE": "1",
                     "REPAIR_INTERVAL_MS": "0"}
        naive = Cluster.start(tmp_path / "naive", naive_env, orders=2, invoices=1,
                              orders_env=[STOP_A, {}])
        try:
            order, a_status, b_status, _ = await race_across_a_jump(
                naive, redis, clock, naive_env["LOCK_PREFIX"])
            problems = await naive.disagreements([order["id"]])
            print("naive lock across the same jump: A answered", a_status, "B", b_status,
                  "->", problems)
            # the control: A's late order write won over B's, its invoice says B's total
            assert (a_status, b_status) == (200, 200)
            assert problems and "order total 20, invoice total 30" in problems[0]
        finally:
            naive.stop()
            await naive.close_clients()
    finally:
        await redis.aclose()
        server.stop()
