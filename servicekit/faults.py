"""Fault hooks for tests: crash, stop or delay a process at a named step of a flow.

Off by default and free when off. Turned on only by two variables together,
`DLOCK_TEST_MODE=1` and `DLOCK_FAULTS`, and refused with `--env=production`
(see `servicekit.settings`)::

    DLOCK_FAULTS="before_order_commit=sleep:3000,after_invoice_write=crash"

Points in orders' update and delete flows: after_lock, after_intent,
after_invoice_write, before_order_commit, before_release. In invoices' writes:
invoice_after_write (stored, not yet answered). Actions:
`sleep:<ms>` (an asyncio sleep inside the critical section), `crash`
(SIGKILL to itself: no clean-up, as in a power cut) and `stop` (SIGSTOP to
itself: frozen until someone sends SIGCONT).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

log = logging.getLogger(__name__)

POINTS = ("after_lock", "after_intent", "after_invoice_write", "before_order_commit",
          "before_release", "invoice_after_write")


class Faults:
    def __init__(self, spec: str = "") -> None:
        self.actions: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in spec.split(","))):
            point, _, action = item.partition("=")
            if point not in POINTS:
                raise ValueError(f"unknown fault point {point!r}; known: {', '.join(POINTS)}")
            if not (action in ("crash", "stop") or action.startswith("sleep:")
                    and action[6:].isdigit()):
                raise ValueError(f"unknown fault action {action!r}: crash, stop or sleep:<ms>")
            self.actions[point] = action

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
