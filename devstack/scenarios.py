"""Scripted faults that break the naive strategy by construction, on every run.

The random faults of the chaos demo (`devstack.chaos.schedule`) find the naive lock's
holes only when their timing happens to line up, which on a quiet machine may
be never. A scenario here lines them up on purpose: the fenced strategy must
come through it unharmed, the naive one cannot.

The paused holder (Kleppmann, "How to do distributed locking", 2016), with
two orders instances of its own: A stops itself (SIGSTOP, a fault hook) right
after taking the lock, B stops itself right after writing the invoice::

    A  lock ─[SIGSTOP ............................]─ SIGCONT: writes invoice, order
    B           lease expired │ lock, writes invoice ─[SIGSTOP ...]─ SIGCONT: writes order
                                                   ▲ A wakes while B holds the lock

Naive: A's invoice write passes (the invoice checks only that a lock key
exists, and B's does), so the invoice keeps A's total while the order ends
with B's: they disagree. Fenced: A's token is below B's, both stores refuse
it, and the pair ends as B left it.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

from devstack.chaos.faults import FREEZE
from devstack.chaos.stage import Stage
from devstack.history import History
from devstack.process import ServerProcess
from devstack.workload import BASE_US, Workload, create_orders, request

# Later than any time the random workload sends, so the workload's orders stay apart.
A_TIME = BASE_US + 10_000_000_000
B_TIME = A_TIME + 1_000_000
A_LEASE_MS = 400
B_LEASE_MS = 30_000  # B's lock outlives A's wake-up on any machine
EXPLAIN = ("In the paused-holder scenario, A froze after taking the lock, its lease ran out, "
           "B took the lock and wrote the invoice; A woke while B held the lock and wrote "
           "too: the naive invoice checks only that some lock key exists, and its writes "
           "carry no token to refuse.")
WAIT = 30.0  # upper bound on each step; a step that takes longer fails the run


def instance_env() -> tuple[dict[str, str], dict[str, str]]:
    """The settings of A and of B (on top of the stage's, which starts them)."""
    return ({"LOCK_TTL_MS": str(A_LEASE_MS), "DLOCK_FAULTS": "after_lock=stop"},
            {"LOCK_TTL_MS": str(B_LEASE_MS), "DLOCK_FAULTS": "after_invoice_write=stop"})


def late_write_end(history: History) -> float:
    """When A's late call was answered (on the history's clock)."""
    return max(op["end"] for op in history.completions if op["process"] == "scenario-A")


async def until_frozen(instance: ServerProcess, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not instance.frozen:
        if time.monotonic() > deadline:
            raise RuntimeError(f"scenario: {what} did not stop within {WAIT:.0f} s")
        await asyncio.sleep(0.02)


async def until_ready(url: str) -> None:
    deadline = time.monotonic() + WAIT
    while (await request("GET", f"{url}/ready", timeout=2.0))[0] != 200:
        if time.monotonic() > deadline:
            raise RuntimeError(f"scenario: {url} not ready within {WAIT:.0f} s")
        await asyncio.sleep(0.1)


async def paused_holder(stage: Stage, workload: Workload) -> dict:
    """Run the scenario on an order of its own; returns that order, for the checker. Its
    calls go to the workload's record and history; the random load does not touch it."""
    assert stage.scenario is not None, "the stage is started"
    a, b = stage.scenario
    history = workload.history
    for instance in (a, b, stage.orders[0]):
        await until_ready(instance.url)
    [order] = await create_orders(stage.orders[0].url, 1)
    order_id = order["id"]

    frozen_at = history.now()
    late = asyncio.ensure_future(workload.patch("scenario-A", a.url, order_id, A_TIME, 2,
                                                Decimal("10.00"), timeout=3 * WAIT))
    await until_frozen(a, "A (after taking the lock)")
    # Redis expires A's key by its own clock once the lease has passed: certain from here.
    await asyncio.sleep(2 * A_LEASE_MS / 1000)
    current = asyncio.ensure_future(workload.patch("scenario-B", b.url, order_id, B_TIME, 3,
                                                   Decimal("10.00"), timeout=3 * WAIT))
    await until_frozen(b, "B (after its invoice write)")
    paused_b = history.now()
    a.resume()
    history.fault(FREEZE.kind, stage.names[a.url], frozen_at,
                  "paused holder: A froze right after taking the lock, past its lease")
    try:
        await asyncio.wait_for(asyncio.shield(late), WAIT)
    finally:
        b.resume()
        history.fault(FREEZE.kind, stage.names[b.url], paused_b,
                      "paused holder: B froze after its invoice write, while A woke")
        await asyncio.gather(late, current)
    return order
