"""The chaos faults, declared once: what each does, how often, and how the report draws it.

The runner (`devstack.chaos.schedule`, `devstack.scenarios`) injects them and
records each under its `kind`; the report (`devstack.report`) shades each
fault in its `colour` and names it in its legend with `legend`. Adding a
fault is one `Fault` in `FAULTS` and its injector: a coroutine that does the
fault to a target of the stage (with a primitive of `devstack.injectors`)
and returns which target and what was done, for the history.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Awaitable, Callable

from devstack import injectors
from devstack.chaos.stage import TTL_MS, Stage

# (target, note): whom the fault hit and what it did, as the history records it.
Injector = Callable[[Stage, random.Random], Awaitable[tuple[str, str]]]


@dataclass(frozen=True)
class Fault:
    kind: str       # the name in the history and in the report's tooltips
    legend: str     # what the report's legend says beside the colour
    colour: str     # the shade across the timeline while the fault lasts
    inject: Injector
    weight: float = 0.0  # drawn at random, by weight, all run long; 0: once a run


async def freeze_instance(stage: Stage, rng: random.Random) -> tuple[str, str]:
    victim = rng.choice(stage.orders[1:])  # orders-0 stays up for the checker
    await injectors.freeze(victim, 2 * TTL_MS / 1000)
    return (stage.names[victim.url],
            f"SIGSTOP for {2 * TTL_MS} ms (twice the lease), then SIGCONT")


async def kill_instance(stage: Stage, rng: random.Random) -> tuple[str, str]:
    victim = rng.choice(stage.orders[1:])
    await injectors.kill_and_restart(victim)
    return stage.names[victim.url], "SIGKILL, then started again"


async def restart_redis_empty(stage: Stage, rng: random.Random) -> tuple[str, str]:
    await injectors.kill_and_restart(stage.redis)
    return "redis", ("SIGKILL, started again empty: the lock keys and the token counter "
                     "are gone")


async def cut_off_instance(stage: Stage, rng: random.Random) -> tuple[str, str]:
    victim = rng.choice(sorted(stage.links))
    toward = rng.choice(sorted(stage.links[victim]))
    await injectors.cut_off(stage.links[victim][toward], 2 * TTL_MS / 1000)
    return victim, (f"its link to {toward} blackholed for {2 * TTL_MS} ms (twice the lease): "
                    "what it sent meanwhile arrives at the heal")


async def jump_redis_clock(stage: Stage, rng: random.Random) -> tuple[str, str]:
    injectors.jump_clock(stage.clock, 2 * TTL_MS / 1000)
    return "redis", (f"Redis's wall clock jumped {2 * TTL_MS} ms forward: every lease it held "
                     "expired at once, early")


FREEZE = Fault("freeze", "instance frozen", "#cfe3ff", freeze_instance, weight=0.6)
FAULTS = (
    FREEZE,
    Fault("kill", "instance killed", "#ffe0b3", kill_instance, weight=0.2),
    Fault("redis restart", "Redis restarted empty", "#e5d4ff", restart_redis_empty),
    Fault("partition", "instance cut off (partition)", "#d4f0d4", cut_off_instance,
          weight=0.2),
    Fault("clock jump", "Redis clock jumped", "#fff3b0", jump_redis_clock),
)
# In the order above, which the seeded draws depend on.
RANDOM_FAULTS = [fault for fault in FAULTS if fault.weight > 0]
ONCE_FAULTS = [fault for fault in FAULTS if fault.weight == 0]
