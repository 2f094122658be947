"""The table, the summary and the JSON of `benchmarks.lock`."""

from __future__ import annotations

import dataclasses
import datetime
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import redis

from benchmarks import lock_contenders
from benchmarks.lock_measure import Row


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
