"""Lock benchmark: FencedLock next to redis-py's Locks, python-redis-lock, pottery and floors.

    python -m benchmarks.lock [--rounds 3] [--seconds 0.5] [--wait-seconds 1.0]
                              [--json docs/benchmarks/lock.json] [--plot docs/benchmarks/lock.png]

Starts its own redis-server on a free loopback port and runs, in one process,
every lock of `benchmarks.lock_contenders` through four scenarios:

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
import dataclasses
import datetime
import json
import os
import platform
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import redis
import redis.asyncio as aredis

from benchmarks import lock_contenders
from benchmarks.lock_contenders import Contender, Unavailable
from devstack import RedisServer

MAX_CYCLES_PER_CLIENT = 200_000  # a measurement ends by time, or by this count
WARM_UP_S = 0.05


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    clients: int
    hot: bool
    timeout: float | None  # None: one try per acquire call
    hold_s: float
    seconds: float  # per lock per round, in `slices` slices run in turn with the others'
    slices: int


def scenarios(seconds: float, wait_seconds: float, wait_timeout: float,
              clients: int = 16, slices: int = 5) -> list[Scenario]:
    """The four scenarios. Waiters run their round in one piece: a slice ends only when
    every waiter got the lock or gave up, which for a polling lock is up to its timeout."""
    ttl = lock_contenders.HOLD_TTL_S
    return [
        Scenario("one", "1 client, a new key each cycle", 1, False, ttl, 0.0, seconds, slices),
        Scenario("distinct", f"{clients} clients, distinct keys", clients, False, ttl, 0.0,
                 seconds, slices),
        Scenario("try", f"try-lock on a hot key, {clients} clients", clients, True,
                 None, 0.0, seconds, slices),
        Scenario("wait", f"{clients} blocking waiters on a hot key, 1 ms held, "
                 f"timeout {wait_timeout:g} s", clients, True, wait_timeout, 0.001,
                 wait_seconds, 1),
    ]


# -- counting round trips ---------------------------------------------------------------

_connections: list[Any] = []  # every counting connection ever made, one user at a time each


class CountedAsyncConnection(aredis.Connection):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sent = 0
        _connections.append(self)

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        self.sent += 1
        await super().send_packed_command(command, check_health)


class CountedConnection(redis.Connection):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sent = 0
        _connections.append(self)

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        self.sent += 1
        super().send_packed_command(command, check_health)


def round_trips() -> int:
    return sum(connection.sent for connection in _connections)


# -- what one measurement records -------------------------------------------------------

def jain_index(counts: Sequence[int]) -> float | None:
    """Jain's fairness index: 1.0 when every client got as many, 1/n when one got all."""
    total = sum(counts)
    if not counts or total == 0:
        return None
    return total * total / (len(counts) * sum(c * c for c in counts))


def percentile(ordered: Sequence[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def server_cpu(probe: redis.Redis) -> float:
    info = probe.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


class Tally:
    """One lock's round in one scenario: the bookkeeping its clients (tasks or threads)
    share, summed over the slices the round is cut into."""

    def __init__(self, scenario: Scenario, tag: str, probe: redis.Redis) -> None:
        self.scenario = scenario
        self.tag = tag
        self.probe = probe
        self.stop_at = 0.0
        self.calls = [0] * scenario.clients
        self.cycles = [0] * scenario.clients
        self.waits: list[float] = []
        self.last: int | None = None  # who took the lock last, in this slice
        self.pairs = self.handoffs = self.timeouts = 0
        self.elapsed = self.client_cpu = self.server_cpu = 0.0
        self.trips = 0
        self.errors: list[BaseException] = []
        self._at: tuple[int, float, float, float] = (0, 0.0, 0.0, 0.0)

    def begin(self, seconds: float) -> None:
        """The clients are ready: count from now on, and stop them `seconds` from now."""
        self.last = None
        self._at = (round_trips(), time.process_time(), server_cpu(self.probe),
                    time.perf_counter())
        self.stop_at = self._at[3] + seconds

    def end(self) -> None:
        trips, cpu, server, started = self._at
        self.elapsed += time.perf_counter() - started
        self.trips += round_trips() - trips
        self.client_cpu += time.process_time() - cpu
        self.server_cpu += server_cpu(self.probe) - server
        if self.errors:
            raise self.errors[0]

    def go_on(self, n: int) -> bool:
        return (not self.errors and self.calls[n] < MAX_CYCLES_PER_CLIENT
                and time.perf_counter() < self.stop_at)

    def key(self, n: int) -> str:
        if self.scenario.hot:
            return f"{self.tag}-hot"
        return f"{self.tag}-{n}-{self.calls[n]}"

    def got(self, n: int, started: float, handle: Any) -> bool:
        """Record one acquire call; True if it took the lock (then hold and release it)."""
        self.waits.append(time.perf_counter() - started)
        self.calls[n] += 1
        if handle is not None:
            self.cycles[n] += 1
            if self.last is not None:
                self.pairs += 1
                self.handoffs += n != self.last
            self.last = n
            return True
        if not self.scenario.hot:
            raise RuntimeError(f"{self.tag}: a lock on a fresh key was refused")
        if self.scenario.timeout is not None:
            self.timeouts += 1
        return False

    def figures(self) -> dict[str, Any]:
        cycles, calls = sum(self.cycles), sum(self.calls)
        per_cycle = max(cycles, 1)
        waits = sorted(self.waits) or [0.0]
        hot = self.scenario.hot
        return {
            "cycles": cycles, "calls": calls, "timeouts": self.timeouts,
            "elapsed_s": self.elapsed,
            "cycles_per_s": cycles / self.elapsed, "calls_per_s": calls / self.elapsed,
            "p50_ms": 1000 * percentile(waits, 0.5), "p99_ms": 1000 * percentile(waits, 0.99),
            "round_trips_per_cycle": self.trips / per_cycle,
            "client_cpu_us_per_cycle": 1e6 * self.client_cpu / per_cycle,
            "server_cpu_us_per_cycle": 1e6 * self.server_cpu / per_cycle,
            "handoff_share": self.handoffs / self.pairs if hot and self.pairs else None,
            "jain": jain_index(self.cycles) if hot else None,
        }


async def drive_async(contender: Contender, tally: Tally, seconds: float) -> None:
    scenario = tally.scenario

    async def client(n: int) -> None:
        while tally.go_on(n):
            started = time.perf_counter()
            handle = await contender.acquire(tally.key(n), scenario.timeout)
            if tally.got(n, started, handle):
                if scenario.hold_s:
                    await asyncio.sleep(scenario.hold_s)
                await contender.release(handle)
    tally.begin(seconds)
    await asyncio.gather(*(client(n) for n in range(scenario.clients)))
    tally.end()


def drive_sync(contender: Contender, tally: Tally, seconds: float) -> None:
    scenario = tally.scenario
    start = threading.Barrier(scenario.clients + 1, timeout=10)

    def client(n: int) -> None:
        try:
            start.wait()
            while tally.go_on(n):
                started = time.perf_counter()
                handle = contender.acquire(tally.key(n), scenario.timeout)
                if tally.got(n, started, handle):
                    if scenario.hold_s:
                        time.sleep(scenario.hold_s)
                    contender.release(handle)
        except BaseException as exc:  # raised again in the main thread, by end()
            tally.errors.append(exc)
    threads = [threading.Thread(target=client, args=(n,), daemon=True)
               for n in range(scenario.clients)]
    for thread in threads:  # started before the count begins: their start is not measured
        thread.start()
    tally.begin(seconds)
    start.wait()
    for thread in threads:
        thread.join()
    tally.end()


async def measure(contender: Contender, tally: Tally, seconds: float) -> None:
    """One slice of a lock's round: its clients run for `seconds`, then finish their cycle."""
    if contender.flavour == "async":
        await drive_async(contender, tally, seconds)
    else:
        drive_sync(contender, tally, seconds)


# -- rounds, medians, ratios --------------------------------------------------------------

@dataclass
class Row:
    scenario: Scenario
    lock: str
    flavour: str
    note: str = ""
    reason: str = ""  # why the row could not run, if it did not
    rounds: list[dict[str, Any]] = field(default_factory=list)

    def median(self) -> dict[str, Any] | None:
        """The median round by cycles/s, with how far the rounds spread around it."""
        if not self.rounds:
            return None
        rates = sorted(r["cycles_per_s"] for r in self.rounds)
        middle = sorted(self.rounds, key=lambda r: r["cycles_per_s"])[len(self.rounds) // 2]
        spread = (rates[-1] - rates[0]) / middle["cycles_per_s"] if middle["cycles_per_s"] else 0
        return {**middle, "spread": spread}


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


def figures_of(rows: list[Row], scenario: str, lock: str) -> dict[str, Any] | None:
    """The median round of `lock` in the scenario keyed `scenario`, None if it did not run."""
    for row in rows:
        if row.scenario.key == scenario and row.lock == lock:
            return row.median()
    return None


def ratios(rows: list[Row]) -> dict[tuple[str, str], dict[str, float | None]]:
    """Per (scenario, lock): cycles/s over redis-py's asyncio Lock's and over the floor's
    of the same flavour (the minimal Lua SET NX + INCR lock)."""
    def rate(scenario: str, lock: str) -> float | None:
        found = figures_of(rows, scenario, lock)
        return found["cycles_per_s"] if found else None

    out: dict[tuple[str, str], dict[str, float | None]] = {}
    for row in rows:
        key = row.scenario.key
        mine = rate(key, row.lock)
        floor = lock_contenders.FLOOR_ASYNC if row.flavour == "async" else \
            lock_contenders.FLOOR_SYNC
        against = {"vs_redis_py_async": rate(key, lock_contenders.REDIS_PY_ASYNC),
                   "vs_floor": rate(key, floor)}
        out[(key, row.lock)] = {name: (mine / base if mine is not None and base else None)
                                for name, base in against.items()}
    return out


# Ours against redis-py's Lock of the same kind, and the floor of that kind.
PAIRS = [("async", "FencedLock async", lock_contenders.REDIS_PY_ASYNC, lock_contenders.FLOOR_ASYNC),
         ("sync", "FencedLock sync", "redis-py sync Lock", lock_contenders.FLOOR_SYNC)]


def summary(rows: list[Row]) -> list[str]:
    """FencedLock against redis-py's Lock, scenario by scenario, as one line each."""
    lines: list[str] = []
    n = max((row.scenario.clients for row in rows), default=0)
    for flavour, ours, theirs, floor in PAIRS:
        one, two = f"{ours}, 1 res", f"{ours}, 2 res"

        def get(scenario: str, lock: str) -> dict[str, Any]:
            return figures_of(rows, scenario, lock) or {}
        if not get("one", one) or not get("one", theirs):
            lines.append(f"{one}: not measured here")
            continue

        def x(scenario: str, field: str, a: str = one, b: str = theirs) -> str:
            mine, base = get(scenario, a).get(field), get(scenario, b).get(field)
            return f"{mine / base:.2f}x" if mine is not None and base else "-"
        wait_ours, wait_theirs = get("wait", one), get("wait", theirs)
        lines += [
            f"{one} / {theirs}, cycles/s:",
            f"  1 client, a new key each cycle   {x('one', 'cycles_per_s')}"
            f" (vs the {flavour} Lua floor: {x('one', 'cycles_per_s', b=floor)})",
            f"  {n} clients, distinct keys        {x('distinct', 'cycles_per_s')}",
            f"  2 resources vs 1 (1, {n} clients) {x('one', 'cycles_per_s', two, one)}, "
            f"{x('distinct', 'cycles_per_s', two, one)}",
            f"  try-lock on a hot key            {x('try', 'cycles_per_s')}",
            f"  {n} waiters: cycles/s             {x('wait', 'cycles_per_s')}",
        ]
        if wait_ours and wait_theirs:
            def both(field: str, fmt: str) -> str:
                return " vs ".join("-" if f.get(field) is None else fmt.format(f[field])
                                   for f in (wait_ours, wait_theirs))
            lines += [
                f"  {n} waiters: wait p99             {x('wait', 'p99_ms')}"
                f" ({both('p99_ms', '{:.0f} ms')})",
                f"  {n} waiters: timeouts             {both('timeouts', '{}')}",
                f"  {n} waiters: round trips / acq.   {both('round_trips_per_cycle', '{:.2f}')}",
                f"  {n} waiters: hand-offs            {both('handoff_share', '{:.2f}')}",
                f"  {n} waiters: Jain's index         {both('jain', '{:.2f}')}",
            ]
    return lines


# -- output --------------------------------------------------------------------------------

COLUMNS = [("cycles/s", "cycles_per_s", "{:.0f}"), ("x rpy", "vs_redis_py_async", "{:.2f}"),
           ("x floor", "vs_floor", "{:.2f}"), ("calls/s", "calls_per_s", "{:.0f}"),
           ("p50 ms", "p50_ms", "{:.2f}"), ("p99 ms", "p99_ms", "{:.2f}"),
           ("RT/cyc", "round_trips_per_cycle", "{:.2f}"),
           ("cli us", "client_cpu_us_per_cycle", "{:.0f}"),
           ("srv us", "server_cpu_us_per_cycle", "{:.0f}"),
           ("handoff", "handoff_share", "{:.2f}"), ("Jain", "jain", "{:.2f}"),
           ("t/o", "timeouts", "{:d}"), ("spread", "spread", "{:.0%}")]


def table(rows: list[Row]) -> str:
    found = ratios(rows)
    lines: list[str] = []
    header = f"{'lock':30}" + "".join(f"{title:>9}" for title, _, _ in COLUMNS)
    for scenario in dict.fromkeys(row.scenario for row in rows):
        lines += ["", f"== {scenario.title}", header]
        for row in rows:
            if row.scenario is not scenario:
                continue
            median = row.median()
            if median is None:
                lines.append(f"{row.lock:30} {row.reason}")
                continue
            values = {**median, **found[(scenario.key, row.lock)]}
            if not scenario.hot or scenario.timeout is None:
                values["timeouts"] = None
            cells = ["-" if values[key] is None else fmt.format(values[key])
                     for _, key, fmt in COLUMNS]
            lines.append(f"{row.lock:30}" + "".join(f"{cell:>9}" for cell in cells))
    return "\n".join(lines[1:])


def commit() -> str | None:
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=5, cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def report(rows: list[Row], settings: dict[str, Any], server: str | None = None
           ) -> dict[str, Any]:
    found = ratios(rows)
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(), "redis_py": redis.__version__,
                    "redis_server": server},
        "settings": settings,
        "summary": summary(rows),
        "scenarios": [dataclasses.asdict(scenario)
                      for scenario in dict.fromkeys(row.scenario for row in rows)],
        "rows": [{"scenario": row.scenario.title, "scenario_key": row.scenario.key,
                  "clients": row.scenario.clients, "lock": row.lock, "flavour": row.flavour,
                  "note": row.note, "available": not row.reason, "reason": row.reason or None,
                  **(row.median() or {}), **found[(row.scenario.key, row.lock)],
                  "rounds_cycles_per_s": [r["cycles_per_s"] for r in row.rounds]}
                 for row in rows],
    }


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
    load_before = os.getloadavg()[0]  # what else ran on the machine: see the README
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
