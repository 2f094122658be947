"""`make bench-lock` in a tiny bounded run, so it cannot rot: no timing is asserted,
only what every run must show (every row's fields, the round trips of an
uncontended cycle, the fairness arithmetic)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from pathlib import Path

import pytest

from benchmarks import lock as bench
from benchmarks import lock_measure, lock_report
from benchmarks import lock_contenders
from devstack import RedisServer

FIELDS = ["cycles", "calls", "timeouts", "cycles_per_s", "calls_per_s", "p50_ms", "p99_ms",
          "round_trips_per_cycle", "client_cpu_us_per_cycle", "server_cpu_us_per_cycle"]
TWO_TRIP_LOCKS = ["FencedLock async, 1 res", "FencedLock async, 2 res",
                  "FencedLock sync, 1 res", "FencedLock sync, 2 res",
                  lock_contenders.REDIS_PY_ASYNC, "redis-py sync Lock",
                  lock_contenders.FLOOR_ASYNC, lock_contenders.FLOOR_SYNC]


def fairness(order: list[int], clients: int) -> tuple[float | None, float | None]:
    """Hand-off share and Jain's index of a hot-key tally that saw `order` acquire."""
    scenario = lock_measure.scenarios(1.0, 1.0, 1.0, clients=clients)[2]
    tally = lock_measure.Tally(scenario, "t", probe=None)  # type: ignore[arg-type]  # no Redis here
    for n in order:
        assert tally.got(n, 0.0, handle=object())
    tally.elapsed = 1.0
    figures = tally.figures()
    return figures["handoff_share"], figures["jain"]


def test_fairness_arithmetic() -> None:
    assert fairness([0, 0, 0, 1], 2) == (pytest.approx(1 / 3), pytest.approx(0.8))
    assert fairness([0, 1, 2, 0, 1, 2], 3) == (1.0, 1.0)
    assert fairness([0, 0, 0, 0], 4) == (0.0, 0.25)  # one client got everything: 1/n
    assert fairness([5], 6)[0] is None
    assert lock_measure.jain_index([3, 3, 3, 3]) == 1.0
    assert lock_measure.jain_index([8, 0, 0, 0]) == 0.25  # one client got everything: 1/n
    assert lock_measure.jain_index([2, 1]) == pytest.approx(9 / 10)
    assert lock_measure.jain_index([0, 0]) is None
    assert lock_measure.percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 3.0
    assert lock_measure.percentile([1.0, 2.0], 0.99) == 2.0


@pytest.fixture(scope="module")
def rows(redis_server: RedisServer) -> list[lock_measure.Row]:
    plan = lock_measure.scenarios(seconds=0.03, wait_seconds=0.03, wait_timeout=0.5, clients=3)
    return asyncio.run(bench.run(redis_server.url, plan, rounds=1))


@pytest.mark.slow  # about 10 s of bounded load, shared by these tests
def test_every_row_ran_or_says_why(rows: list[lock_measure.Row]) -> None:
    names = [name for name, _, _ in lock_contenders.CONTENDERS]
    assert {(row.scenario.key, row.lock) for row in rows} == {
        (scenario, name) for scenario in ("one", "distinct", "try", "wait") for name in names}
    for row in rows:
        median = row.median()
        if row.reason:
            assert row.reason.startswith("not available") and median is None, row
            continue
        assert median is not None and all(median[f] is not None for f in FIELDS), row
        assert median["cycles"] > 0, row
        if row.scenario.hot:
            assert 0.0 <= median["handoff_share"] <= 1.0 and 0 < median["jain"] <= 1.0, row
        else:  # a fresh key is always free: every call is a cycle, none timed out
            assert median["calls"] == median["cycles"] and median["timeouts"] == 0, row


@pytest.mark.slow
def test_the_locks_that_must_be_here_ran(rows: list[lock_measure.Row]) -> None:
    ran = {row.lock for row in rows if not row.reason}
    assert {"FencedLock async, 1 res", "FencedLock async, 2 res",
            lock_contenders.REDIS_PY_ASYNC, lock_contenders.FLOOR_ASYNC} <= ran
    if importlib.util.find_spec("fencing.sync") is not None:
        assert {"FencedLock sync, 1 res", "FencedLock sync, 2 res"} <= ran


@pytest.mark.slow
def test_an_uncontended_cycle_is_two_round_trips(rows: list[lock_measure.Row]) -> None:
    # One client: its one connection was opened in the warm-up, so nothing but the
    # lock's own commands is counted (with several, the pool may open one more).
    for row in rows:
        if row.lock in TWO_TRIP_LOCKS and not row.reason and row.scenario.key == "one":
            median = row.median()
            assert median is not None
            assert median["round_trips_per_cycle"] == 2.0, (row.scenario.key, row.lock)


@pytest.mark.slow
def test_the_report_holds_every_row(rows: list[lock_measure.Row], tmp_path: Path) -> None:
    data = json.loads(json.dumps(lock_report.report(rows, {"rounds": 1})))
    assert len(data["rows"]) == len(rows)
    assert data["summary"][0] == "FencedLock async, 1 res / redis-py asyncio Lock, cycles/s:"
    assert not any("None" in line for line in data["summary"])
    text = lock_report.table(rows)
    for row in rows:
        assert row.lock in text and row.scenario.title in text
    if importlib.util.find_spec("matplotlib") is not None:
        from benchmarks.lock_plot import plot
        plot(data, tmp_path / "lock.png")
        assert (tmp_path / "lock.png").stat().st_size > 0
