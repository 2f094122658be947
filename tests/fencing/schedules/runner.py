"""Running the explorer: a fixed budget (the test), a bounded search (`make explore`), and
the replay of a printed schedule."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
import time
from typing import Iterator

from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.fencing.schedules.machine import ScheduleMachine
from tests.fencing.schedules.model import Violation
from tests.fencing.schedules.world import World


def explorer_settings(schedules: int, steps: int, derandomize: bool = False,
                      shrink: bool = True) -> settings:
    """Hypothesis's settings for a run: no deadline (a step waits on Redis), no example
    database (a run is its own record: the schedule it prints), every bug reported;
    without `shrink`, a failure goes straight to `minimize` (minutes sooner, less small)."""
    phases = tuple(p for p in Phase if shrink or p is not Phase.shrink)
    return settings(max_examples=schedules, stateful_step_count=steps, deadline=None,
                    database=None, derandomize=derandomize, report_multiple_bugs=True,
                    suppress_health_check=list(HealthCheck), phases=phases)


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


def run(schedules: int, steps: int, derandomize: bool = False, shrink: bool = True) -> None:
    """Search `schedules` schedules of at most `steps` steps on the current World."""
    with quiet_lock():
        run_state_machine_as_test(
            ScheduleMachine, settings=explorer_settings(schedules, steps, derandomize, shrink))


OUT = os.path.join(tempfile.gettempdir(), "fencing-explorer-failure")


def explore(seconds: float, batch: int, steps: int, out: str = OUT, shrink: bool = True) -> int:
    """Search batch after batch, each from a new random seed, until `seconds` have passed or
    a schedule fails; say how much was tried. A failing schedule, shrunk by Hypothesis
    and then by `minimize`, is printed and written to `<out>-<n>.txt`."""
    started = time.monotonic()
    ScheduleMachine.schedules_run = ScheduleMachine.steps_run = 0
    ScheduleMachine.first_failure = None
    failures: list[BaseException] = []
    with World.started():
        try:
            while time.monotonic() - started < seconds:
                run(batch, steps, shrink=shrink)
                print(f"{ScheduleMachine.schedules_run} schedules, {ScheduleMachine.steps_run} "
                      f"steps, {time.monotonic() - started:.0f} s", flush=True)
        except Exception as found:
            failures = list(found.exceptions) if isinstance(found, BaseExceptionGroup) \
                else [found]
        tried = (f"explored {ScheduleMachine.schedules_run} schedules, "
                 f"{ScheduleMachine.steps_run} steps, in {time.monotonic() - started:.0f} s")
        if ScheduleMachine.first_failure is not None:
            tried += (" (the first failure after {} schedules, {} steps; the rest shrank it)"
                      .format(*ScheduleMachine.first_failure))
        with quiet_lock():
            for n, failure in enumerate(failures, 1):
                report(failure, f"{out}-{n}.txt")
    print(f"{tried}: {len(failures) or 'no'} failing schedule(s)", flush=True)
    return 1 if failures else 0


def report(failure: BaseException, path: str) -> None:
    """Print a failure's schedule, minimized, and write it to `path` for `replay`."""
    printed = "\n".join(getattr(failure, "__notes__", []))
    print(f"\n== {failure}", flush=True)
    if not isinstance(failure, Violation) or "state = ScheduleMachine()" not in printed:
        print(printed, flush=True)
        return
    code = minimize(schedule_code(printed), failure.invariant)
    with open(path, "w", encoding="utf-8") as file:
        file.write(code)
    print(f"-- the schedule, minimized (in {path}; replay it with "
          f"`python -m tests.fencing.schedules replay {path}`):\n{code}", flush=True)


def minimize(code: str, invariant: str, seconds: float = 120.0) -> str:
    """What Hypothesis's shrinking leaves, smaller: adjacent clock steps merged into one and
    steps dropped, as long as the schedule still breaks the same invariant."""
    lines = code.splitlines()
    head, body, tail = lines[:2], lines[2:-1], lines[-1:]
    deadline = time.monotonic() + seconds

    def breaks(steps: list[str]) -> bool:
        try:
            exec("\n".join(head + steps + tail), {"ScheduleMachine": ScheduleMachine})
        except Violation as violation:
            return violation.invariant == invariant
        return False

    smaller = True
    while smaller and time.monotonic() < deadline:
        smaller = False
        for i in range(len(body) - 1):
            first, second = ADVANCE.match(body[i]), ADVANCE.match(body[i + 1])
            if first and second:
                merged = f"state.advance(ms={int(first[1]) + int(second[1])})"
                if breaks(body[:i] + [merged] + body[i + 2:]):
                    body[i:i + 2], smaller = [merged], True
                    break
        for i in reversed(range(len(body))):
            if i < len(body) and time.monotonic() < deadline and breaks(body[:i] + body[i + 1:]):
                del body[i]
                smaller = True
    return "\n".join(head + body + tail) + "\n"


ADVANCE = re.compile(r"state\.advance\(ms=(\d+)\)$")


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
