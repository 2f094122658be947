"""When the faults come during the load: the random ones drawn by weight all run long, the
once-a-run ones spread over it, and one last freeze across the end of the load."""

from __future__ import annotations

import asyncio
import random
import time

from devstack.chaos.faults import FREEZE, ONCE_FAULTS, RANDOM_FAULTS, Fault
from devstack.chaos.stage import TTL_MS, Stage
from devstack.history import History


async def inject(fault: Fault, stage: Stage, rng: random.Random, history: History) -> None:
    """One fault, recorded in the history from its start to its end."""
    started = history.now()
    target, note = await fault.inject(stage, rng)
    history.fault(fault.kind, target, started, note)


async def inject_faults(stage: Stage, rng: random.Random, until: float,
                        history: History) -> None:
    """Faults until `until` (ONCE_FAULTS spread over the run), then one last freeze of
    every instance but orders-0 that spans the end of the load: whatever those held is
    written last."""
    started = time.monotonic()
    once = list(ONCE_FAULTS)
    weights = [fault.weight for fault in RANDOM_FAULTS]
    while time.monotonic() < until - 1.0:
        await asyncio.sleep(rng.uniform(0.2, 0.6))
        # The k-th of the n once-faults comes (k + 1) / (n + 2) of the way through.
        done = (time.monotonic() - started) / (until - started)
        if once and done * (len(ONCE_FAULTS) + 2) >= len(ONCE_FAULTS) - len(once) + 1:
            await inject(once.pop(0), stage, rng, history)
        else:
            [fault] = rng.choices(RANDOM_FAULTS, weights)
            await inject(fault, stage, rng, history)
    for fault in once:  # a run too short to reach them
        await inject(fault, stage, rng, history)
    await asyncio.sleep(max(0.0, until - 0.5 - time.monotonic()))
    frozen_at = history.now()
    for victim in stage.orders[1:]:
        victim.pause()
    await asyncio.sleep(2 * TTL_MS / 1000)
    for victim in stage.orders[1:]:
        victim.resume()
        history.fault(FREEZE.kind, stage.names[victim.url], frozen_at,
                      f"SIGSTOP for {2 * TTL_MS} ms across the end of the load")
