"""`python -m devstack.chaos` (`make chaos`): both strategies in turn, then the table, the
summary and the report; exit status 0 when the demonstration held."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

import devstack.chaos
from devstack.chaos.results import demonstrated, print_table, summary
from devstack.chaos.run import run_strategy
from devstack.chaos.stage import STRATEGIES
from devstack.report import write_report


async def main_async(args: argparse.Namespace) -> int:
    logs = Path(args.logs) if args.logs else Path(tempfile.mkdtemp(prefix="chaos-"))
    logs.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in STRATEGIES:
        print(f"running {name}: the paused-holder scenario, then up to {args.calls} calls in "
              f"{args.seconds:.0f}s with pauses, crashes and a Redis restart ...", flush=True)
        results[name] = await run_strategy(name, logs, args.calls, args.seconds, args.seed)
    print_table(results)
    held = demonstrated(results)
    (logs / "summary.json").write_text(json.dumps(summary(results), indent=2) + "\n")
    report = write_report(logs / "report.html", {name: run.history for name, run in
                                                 results.items()}, held)
    print(f"\nhistories and service logs: {logs}")
    print("the demonstration held: the naive lock broke, the fenced one did not" if held else
          "the demonstration did NOT hold (see the table above)")
    print(f"report: {report}")
    return 0 if held else 1


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.chaos",
        description=(devstack.chaos.__doc__ or "").split("\n")[0].strip('"` '),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=3000, help="at most this many calls")
    parser.add_argument("--seconds", type=float, default=15.0,
                        help="at most this long for the load, per strategy")
    parser.add_argument("--seed", type=int, default=7, help="of the load and the faults")
    parser.add_argument("--logs", default=None,
                        help="folder for histories, report and service logs")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
