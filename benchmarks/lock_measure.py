"""What one measurement of `benchmarks.lock` counts, and how its clients run.

Round trips are counted in the client: each command or pipeline a counting
connection writes to its socket is one (one EVALSHA is one). Client CPU is
this process's (every thread); redis-server's comes from INFO cpu.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import redis
import redis.asyncio as aredis

from benchmarks import lock_contenders
from benchmarks.lock_contenders import Contender

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
