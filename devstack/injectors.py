"""The faults themselves, one coroutine each, for `make chaos` and the e2e tests alike.

Each does one fault to one target and returns when it is over (the target back up,
the link healed); whoever calls it picks the target and records the fault.
"""

from __future__ import annotations

import asyncio

from devstack.clock import FakeClock
from devstack.links import Link
from devstack.process import ServerProcess


async def freeze(victim: ServerProcess, seconds: float) -> None:
    """SIGSTOP, `seconds` frozen (a GC pause, a stopped VM), then SIGCONT."""
    victim.pause()
    try:
        await asyncio.sleep(seconds)
    finally:
        victim.resume()


async def kill_and_restart(victim: ServerProcess) -> None:
    """SIGKILL (no clean-up, as in a power cut), then start it again and wait until it
    answers; the start runs in a thread so the caller's load goes on meanwhile."""
    victim.kill()
    await asyncio.get_running_loop().run_in_executor(None, victim.start)


async def cut_off(link: Link, seconds: float) -> None:
    """The link blackholed for `seconds`: what was sent meanwhile arrives at the heal."""
    link.cut()
    try:
        await asyncio.sleep(seconds)
    finally:
        link.heal()


def jump_clock(clock: FakeClock, seconds: float) -> None:
    """The server's wall clock moved `seconds` forward at once (its leases end early)."""
    clock.jump(seconds)
