"""The capacity model of `make bench-http` (benchmarks/http_capacity.py): its arithmetic on
a hand-made example, then against the recorded run (docs/benchmarks/http.json) and the
tables of the performance page (docs/services/performance.md), so that neither can drift
from the figures they come from."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from benchmarks import http_capacity

ROOT = Path(__file__).parent.parent.parent
RECORDED = json.loads((ROOT / "docs" / "benchmarks" / "http.json").read_text())


def test_the_model_on_figures_worked_by_hand() -> None:
    plan = http_capacity.model({"orders": 0.004, "invoices": 0.002, "mongo": 0.010,
                                "redis": 0.0005})
    assert plan["updates_per_s_per_core"] == {"orders": 250.0, "invoices": 500.0,
                                              "mongo": 100.0, "redis": 2000.0}
    assert plan["saturates_first"] == "mongo"
    assert plan["one_process_each_updates_per_s"] == 100.0
    # 16.5 ms of CPU per update in all: 2 / 0.0165 = 121.2, 8 / 0.0165 = 484.8
    assert plan["updates_per_s_on_cores"] == {"2": 121.2, "8": 484.8, "32": 1939.4}
    assert plan["cores_for_load"]["1000"] == {"orders": 4, "invoices": 2, "mongo": 10,
                                              "redis": 1}
    assert plan["cores_for_load"]["100"] == {"orders": 1, "invoices": 1, "mongo": 1,
                                             "redis": 1}


def test_cpu_per_update_sums_each_tiers_processes() -> None:
    cell = {"ok": 200, "cpu": {"fenced/orders-0": 0.4, "fenced/orders-1": 0.6,
                               "fenced/invoices-0": 0.2, "mongo": 2.0, "redis": 0.1}}
    assert http_capacity.cpu_per_update(cell) == pytest.approx(
        {"orders": 0.005, "invoices": 0.001, "mongo": 0.01, "redis": 0.0005})


@pytest.mark.parametrize("strategy", ["fenced", "naive"])
def test_the_recorded_plan_follows_from_the_recorded_cpu(strategy: str) -> None:
    plan = RECORDED["capacity"][strategy]
    variant = {"fenced": "fenced", "naive": "naive (UNSAFE)"}[strategy]
    cell = next(c for c in RECORDED["cells"]
                if c["scenario"] == "cost of safety: update" and c["variant"] == variant)
    cpu = {tier: sum(s for p, s in cell["cpu"].items() if http_capacity.tier_of(p) == tier)
           / cell["ok"] for tier in http_capacity.TIERS}
    for tier, seconds in cpu.items():
        assert plan["cpu_ms_per_update"][tier] == pytest.approx(seconds * 1000, abs=0.001)
        if seconds:
            assert plan["updates_per_s_per_core"][tier] == pytest.approx(1 / seconds, abs=0.05)
    busiest = max(cpu, key=lambda tier: cpu[tier])
    assert plan["saturates_first"] == busiest
    assert plan["one_process_each_updates_per_s"] == pytest.approx(1 / cpu[busiest], abs=0.05)
    for cores, rate in plan["updates_per_s_on_cores"].items():
        assert rate == pytest.approx(int(cores) / sum(cpu.values()), abs=0.05)
    for load, cores_needed in plan["cores_for_load"].items():
        assert cores_needed == {tier: math.ceil(int(load) * s) for tier, s in cpu.items()}
    per_update = RECORDED["cost_of_an_update"]["per_update"][strategy]
    assert per_update["cpu_ms_per_update"] == plan["cpu_ms_per_update"]


def test_the_performance_page_shows_the_recorded_plan() -> None:
    page = (ROOT / "docs" / "services" / "performance.md").read_text()
    assert http_capacity.markdown(RECORDED["capacity"]) in page
