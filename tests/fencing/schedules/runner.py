"""Running the explorer: a fixed budget (the test), a bounded search (`make explore`), and
the replay of a printed schedule."""

from __future__ import annotations

import contextlib
import logging
import re
import time
from typing import Iterator

from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.fencing.schedules.machine import ScheduleMachine
from tests.fencing.schedules.model import Violation
from tests.fencing.schedules.world import World


def explorer_settings(schedules: int, steps: int, derandomize: bool = False) -> settings:
    """Hypothesis's settings for a run: no deadline (a step waits on Redis), no example
    database (a run is its own record: the schedule it prints), every bug reported."""
    return settings(max_examples=schedules, stateful_step_count=steps, deadline=None,
                    database=None, derandomize=derandomize, report_multiple_bugs=True,
                    suppress_health_check=list(HealthCheck))


@contextlib.contextmanager
def quiet_lock() -> Iterator[None]:
    """The lock warns of every lease it finds expired: here that is most steps."""
    logger = logging.getLogger("fencing")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def run(schedules: int, steps: int, derandomize: bool = False) -> None:
    """Search `schedules` schedules of at most `steps` steps on the current World."""
    with quiet_lock():
        run_state_machine_as_test(ScheduleMachine,
                                  settings=explorer_settings(schedules, steps, derandomize))


def explore(seconds: float, batch: int, steps: int) -> int:
    """Search batch after batch, each from a new random seed, until `seconds` have passed or
    a schedule fails (Hypothesis prints it, shrunk); say how much was tried."""
    started = time.monotonic()
    ScheduleMachine.schedules_run = ScheduleMachine.steps_run = 0
    status = 0
    with World.started():
        try:
            while time.monotonic() - started < seconds:
                run(batch, steps)
                print(f"{ScheduleMachine.schedules_run} schedules, {ScheduleMachine.steps_run} "
                      f"steps, {time.monotonic() - started:.0f} s", flush=True)
        except Exception:
            status = 1
            raise
        finally:
            print(f"explored {ScheduleMachine.schedules_run} schedules, "
                  f"{ScheduleMachine.steps_run} steps, in {time.monotonic() - started:.0f} s: "
                  f"{'a schedule failed (above)' if status else 'no invariant failed'}",
                  flush=True)
    return status


def schedule_code(text: str) -> str:
    """The Python of a printed schedule: from `state = ScheduleMachine()` on, as printed by
    Hypothesis (in a failure report, pytest's output or a file)."""
    lines = []
    for line in text.splitlines():
        line = re.sub(r"^[\s|E>]*", "", line)  # pytest's margins
        if line.startswith("state = ScheduleMachine()"):
            lines = []
        if line.startswith("state"):
            lines.append(line)
    if not lines:
        raise ValueError("no schedule found: expected lines from `state = ScheduleMachine()`")
    return "\n".join(lines) + "\n"


def replay(text: str) -> int:
    """Run a printed schedule on a fresh server; 0 if every invariant held."""
    namespace = {"ScheduleMachine": ScheduleMachine}
    with World.started(), quiet_lock():
        try:
            exec(compile(schedule_code(text), "<schedule>", "exec"), namespace)
        except Violation as violation:
            print(f"the schedule breaks an invariant: {violation}", flush=True)
            return 1
    print("the schedule ran to its end: every invariant held", flush=True)
    return 0
