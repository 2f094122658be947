"""Fault hooks for tests: crash, stop or delay a process at a named step of a flow.

Off by default and free when off. Turned on only by two variables together,
`DLOCK_TEST_MODE=1` and `DLOCK_FAULTS`, and refused with `--env=production`
(see `servicekit.settings`)::

    DLOCK_FAULTS="before_order_commit=sleep:3000,after_invoice_write=crash"

Each service names the points of its own flows (orders: `orders.faults`;
invoices: `invoice_after_write`) and arms those the spec names. One spec may
serve a whole deployment, so a point of another service is left to it.
Actions: `sleep:<ms>` (an asyncio sleep inside the critical section), `crash`
(SIGKILL to itself: no clean-up, as in a power cut) and `stop` (SIGSTOP to
itself: frozen until someone sends SIGCONT).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
from typing import Collection

log = logging.getLogger(__name__)

_POINT = re.compile(r"[a-z][a-z_]*")


def parse(spec: str) -> dict[str, str]:
    """`point=action,...` as a dict; ValueError naming the first bad item."""
    actions: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        point, _, action = item.partition("=")
        if not _POINT.fullmatch(point):
            raise ValueError(f"bad fault point {point!r}: lower-case letters and underscores")
        if not (action in ("crash", "stop") or action.startswith("sleep:")
                and action[6:].isdigit()):
            raise ValueError(f"unknown fault action {action!r}: crash, stop or sleep:<ms>")
        actions[point] = action
    return actions


class Faults:
    """The actions of `spec` at this service's `points`."""

    def __init__(self, spec: str = "", points: Collection[str] = ()) -> None:
        self.points = frozenset(points)
        given = parse(spec)
        self.actions = {point: action for point, action in given.items()
                        if point in self.points}
        if given.keys() - self.points:
            log.info("fault points of other services, not armed here: %s",
                     ", ".join(sorted(given.keys() - self.points)))

    async def point(self, name: str) -> None:
        if not self.actions:
            return
        action = self.actions.get(name)
        if action is None:
            return
        log.warning("test fault at %s: %s", name, action)
        if action == "crash":
            os.kill(os.getpid(), signal.SIGKILL)
        elif action == "stop":
            os.kill(os.getpid(), signal.SIGSTOP)
        else:
            await asyncio.sleep(int(action[6:]) / 1000)


NO_FAULTS = Faults()
