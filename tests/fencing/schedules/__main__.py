"""`python -m tests.fencing.schedules explore [--seconds S]` searches schedules for a bounded
time and says how many it tried; `python -m tests.fencing.schedules replay FILE` runs one
printed schedule again (the lines Hypothesis printed, from `state = ScheduleMachine()`)."""

from __future__ import annotations

import argparse
import sys

from tests.fencing.schedules.machine import ScheduleMachine
from tests.fencing.schedules.model import INVARIANTS
from tests.fencing.schedules.runner import explore, replay


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fencing.schedules")
    commands = parser.add_subparsers(dest="command", required=True)
    search = commands.add_parser("explore", help="search schedules for a bounded time")
    search.add_argument("--seconds", type=float, default=300.0,
                        help="stop starting new batches after this long (default 300)")
    search.add_argument("--batch", type=int, default=300, help="schedules per batch")
    search.add_argument("--steps", type=int, default=100, help="steps per schedule at most")
    search.add_argument("--skip", action="append", default=[], choices=INVARIANTS,
                        help="an invariant not to check, to look past a known failure")
    search.add_argument("--no-shrink", action="store_true",
                        help="minimize a failure without Hypothesis's shrinking (minutes sooner)")
    again = commands.add_parser("replay", help="run a printed schedule again")
    again.add_argument("file", help="a file holding the printed schedule")
    args = parser.parse_args(argv)
    if args.command == "explore":
        ScheduleMachine.skipped = frozenset(args.skip)
        return explore(args.seconds, args.batch, args.steps, shrink=not args.no_shrink)
    return replay(open(args.file, encoding="utf-8").read())


if __name__ == "__main__":
    sys.exit(main())
