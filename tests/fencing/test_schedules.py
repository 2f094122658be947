"""The lock's guarantees over schedules a search picks, not over a few written by hand.

`test_the_lock_keeps_its_guarantees_over_explored_schedules` runs the schedule
explorer (tests/fencing/schedules) for a fixed budget: the same schedules every
run (derandomized), about a minute on a quiet machine. `make explore` searches
longer, from fresh seeds. A failure prints the shrunk schedule; put it in a
file and run it again with `SCHEDULE=<file> pytest tests/fencing/test_schedules.py
-k replay` or `python -m tests.fencing.schedules replay <file>`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from tests.fencing.schedules import runner
from tests.fencing.schedules.world import World

# The fixed budget: schedules x steps at most, about a minute on two idle cores.
SCHEDULES = 150
STEPS = 100


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with World.started(tmp_path_factory.mktemp("explorer")) as started:
        yield started


# A pass takes about a minute; a failure is shrunk too (Hypothesis stops at five minutes).
@pytest.mark.timeout(480)
def test_the_lock_keeps_its_guarantees_over_explored_schedules(world: World) -> None:
    runner.run(SCHEDULES, STEPS, derandomize=True)


@pytest.mark.skipif(not os.environ.get("SCHEDULE"), reason="set SCHEDULE=<file> to replay one")
def test_replay_a_printed_schedule(world: World) -> None:
    text = Path(os.environ["SCHEDULE"]).read_text(encoding="utf-8")
    namespace = {"ScheduleMachine": runner.ScheduleMachine}
    with runner.quiet_lock():
        exec(compile(runner.schedule_code(text), os.environ["SCHEDULE"], "exec"), namespace)
