"""Lock benchmark: FencedLock next to redis-py's Locks, python-redis-lock, pottery and floors.

    python -m benchmarks.lock [--rounds 3] [--seconds 0.5] [--wait-seconds 1.0]
                              [--json docs/benchmarks/lock.json] [--plot docs/benchmarks/lock.png]

Starts its own redis-server on a free loopback port and runs, in one process,
every lock of `benchmarks.lock_contenders` through four scenarios (what a
measurement counts: `benchmarks.lock_measure`; the output: `benchmarks.lock_report`):

- 1 client, a new key each cycle;
- 16 clients, distinct keys (each a new key each cycle);
- try-lock on one hot key, 16 clients trying without waiting;
- 16 blocking waiters on one hot key, each holding it 1 ms.

A cycle is one acquisition and its release. Async locks run as asyncio tasks
sharing one `redis.asyncio.Redis`, sync ones as threads sharing one
`redis.Redis`. Per row: cycles/s, acquire calls/s, p50/p99 of each acquire
call (a waiter's whole wait, a timed-out one included), and per cycle the
round trips (counted client-side: each command or pipeline written to a
socket is one, so one EVALSHA is one), the client's CPU (this process, all
threads) and redis-server's CPU (INFO cpu). On a hot key also the share of
acquisitions that changed hands, Jain's index over the clients' acquisition
counts, and (waiters) the acquire calls that timed out. Failed tries and
timed-out waits are charged to the cycles that did happen.

A round gives each lock `--seconds` per scenario, cut into slices that the
locks run in turn, in an order that rotates from slice to slice: all meet the
same bursts of noise from the rest of the machine. Each row keeps its median
round (of 3 by default) and says how far the rounds spread.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path
from typing import Iterable

import redis
import redis.asyncio as aredis

from benchmarks import lock_contenders
from benchmarks.lock_contenders import Contender, Unavailable
from benchmarks.lock_measure import (WARM_UP_S, CountedAsyncConnection, CountedConnection, Row,
                                     Scenario, Tally, measure, scenarios)
from benchmarks.lock_report import report, summary, table
from devstack import RedisServer


async def run(url: str, plan: Iterable[Scenario], rounds: int,
              only: set[str] | None = None) -> list[Row]:
    aclient = aredis.Redis.from_url(url, socket_timeout=5.0, socket_connect_timeout=2.0,
                                    connection_class=CountedAsyncConnection)
    sclient = redis.Redis.from_url(url, socket_timeout=5.0, socket_connect_timeout=2.0,
                                   connection_class=CountedConnection)
    probe = redis.Redis.from_url(url, socket_timeout=5.0, socket_connect_timeout=2.0)
    built = lock_contenders.build(aclient, sclient, only)
    rows: list[Row] = []
    try:
        for scenario in plan:
            ready = [c for c in built if isinstance(c, Contender)]
            for c in built:
                rows.append(Row(scenario, c.name, c.flavour, getattr(c, "note", ""),
                                c.reason if isinstance(c, Unavailable) else ""))
            by_name = {row.lock: row for row in rows if row.scenario is scenario}
            for c in ready:  # connections open and scripts load outside the measurements
                await measure(c, Tally(scenario, f"{scenario.key}-warm", probe), WARM_UP_S)
            slices = rounds * scenario.slices
            for number in range(rounds):
                tallies = {c.name: Tally(scenario, f"{scenario.key}-{number}-{i}", probe)
                           for i, c in enumerate(ready)}
                for part in range(scenario.slices):
                    # Rotate who goes first over every slice of every round, so each
                    # lock runs early and late, and all meet the same bursts of noise.
                    shift = (number * scenario.slices + part) * len(ready) // slices
                    for c in ready[shift:] + ready[:shift]:
                        await measure(c, tallies[c.name], scenario.seconds / scenario.slices)
                for c in ready:
                    by_name[c.name].rounds.append(tallies[c.name].figures())
    finally:
        for c in built:
            if isinstance(c, Contender) and c.close is not None:
                closing = c.close()
                if asyncio.iscoroutine(closing):
                    await closing
        await aclient.aclose()
        sclient.close()
        probe.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=0.5,
                        help="per lock per round, uncontended and try-lock")
    parser.add_argument("--wait-seconds", type=float, default=1.0,
                        help="per lock per round, blocking waiters")
    parser.add_argument("--wait-timeout", type=float, default=2.0,
                        help="how long a blocking waiter waits before giving up")
    parser.add_argument("--json", default="docs/benchmarks/lock.json")
    parser.add_argument("--plot", default="docs/benchmarks/lock.png", help="'' for none")
    args = parser.parse_args()
    plan = scenarios(args.seconds, args.wait_seconds, args.wait_timeout)
    load_before = os.getloadavg()[0]  # what else ran: see docs/services/performance.md
    server = RedisServer()
    with server:
        with redis.Redis.from_url(server.url, socket_timeout=5.0) as probe:
            version = str(probe.info("server")["redis_version"])
        rows = asyncio.run(run(server.url, plan, args.rounds))
    load = (load_before, os.getloadavg()[0])
    print(f"redis-server {version}, {args.rounds} rounds, median round per row; "
          f"1-minute load average {load[0]:.1f} before, {load[1]:.1f} after "
          f"on {os.cpu_count()} CPUs\n")
    print(table(rows))
    print("\n" + "\n".join(summary(rows)))
    data = report(rows, {"rounds": args.rounds, "seconds": args.seconds,
                         "wait_seconds": args.wait_seconds, "wait_timeout": args.wait_timeout,
                         "load_average_before_after": load}, version)
    os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
    with open(args.json, "w") as out:
        json.dump(data, out, indent=2)
    print(f"\nwrote {args.json}")
    if args.plot:
        from benchmarks.lock_plot import plot
        plot(data, Path(args.plot))
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
