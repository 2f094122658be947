"""A capacity model from measured CPU per update: how far each tier goes, and what a load needs.

Scale-out cannot be measured on a 2-core machine, so it is planned from what one
run measured: the CPU seconds each tier (orders, invoices, the MongoDB-wire
server, Redis) spent per successful update. Then, for each tier:

- one core of it sustains `1 / cpu_seconds_per_update` updates per second;
- with one process of each tier (each is one Python or Redis process, so it
  uses at most one core), the tier with the highest CPU per update saturates
  first, at its per-core rate;
- on N cores given to the whole system, spread over the tiers as each needs,
  the ceiling is `N / sum of all tiers' CPU per update`;
- a load of L updates per second needs `ceil(L * cpu_seconds_per_update)` cores
  (instances, one core each) of every tier.

This ignores what a bigger machine changes (a real mongod uses many cores, the
network is no longer loopback, contention on hot orders): it is a plan computed
from figures, not a promise.
"""

from __future__ import annotations

import math
from typing import Any

TIERS = ("orders", "invoices", "mongo", "redis")
CORES = (2, 8, 32)
LOADS = (100, 1000)


def tier_of(process: str) -> str:
    """ "fenced-1/orders-0" -> "orders"; "mongo" and "redis" are their own tiers."""
    return process.split("/")[-1].rsplit("-", 1)[0]


def cpu_per_update(cell: dict[str, Any]) -> dict[str, float]:
    """CPU seconds each tier spent per successful update in one benchmark cell."""
    spent = {tier: 0.0 for tier in TIERS}
    for process, seconds in cell["cpu"].items():
        if tier_of(process) in spent:
            spent[tier_of(process)] += seconds
    return {tier: seconds / cell["ok"] for tier, seconds in spent.items()} if cell["ok"] else {}


def model(cpu: dict[str, float]) -> dict[str, Any]:
    """The plan for one strategy, from its CPU seconds per update by tier."""
    per_core = {tier: 1 / seconds for tier, seconds in cpu.items() if seconds > 0}
    first = min(per_core, key=lambda tier: per_core[tier])
    total = sum(cpu.values())
    return {
        "cpu_ms_per_update": {tier: round(seconds * 1000, 3) for tier, seconds in cpu.items()},
        "updates_per_s_per_core": {tier: round(rate, 1) for tier, rate in per_core.items()},
        "saturates_first": first,
        "one_process_each_updates_per_s": round(per_core[first], 1),
        "updates_per_s_on_cores": {str(n): round(n / total, 1) for n in CORES},
        "cores_for_load": {str(load): {tier: math.ceil(load * seconds)
                                       for tier, seconds in cpu.items()} for load in LOADS},
    }


def capacity(cells: list[dict[str, Any]], scenario: str,
             variants: dict[str, str]) -> dict[str, Any]:
    """`variants` maps a strategy's name to its cell's variant in `scenario`."""
    by_variant = {cell["variant"]: cell for cell in cells if cell["scenario"] == scenario}
    return {name: model(cpu_per_update(by_variant[variant]))
            for name, variant in variants.items() if variant in by_variant}


def markdown(plans: dict[str, Any]) -> str:
    """The performance page's tables (docs/services/performance.md): one row per tier and
    strategy, then the plans."""
    names = list(plans)
    lines = ["| tier | " + " | ".join(f"{name}: CPU ms / update | {name}: updates/s per core"
                                      for name in names) + " |",
             "|---|" + "---:|---:|" * len(names)]
    for tier in TIERS:
        cells = []
        for name in names:
            plan = plans[name]
            cells.append(f"{plan['cpu_ms_per_update'][tier]:.3f}")
            rate = plan["updates_per_s_per_core"].get(tier)
            cells.append(f"{rate:.1f}" if rate is not None else "-")
        lines.append(f"| {tier} | " + " | ".join(cells) + " |")
    lines += ["", "| | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    lines.append("| one process of each tier: saturates first | " + " | ".join(
        f"{plans[name]['saturates_first']} at {plans[name]['one_process_each_updates_per_s']:.1f}"
        " updates/s" for name in names) + " |")
    for cores in CORES:
        lines.append(f"| {cores} cores, spread as needed: updates/s | " + " | ".join(
            f"{plans[name]['updates_per_s_on_cores'][str(cores)]:.1f}" for name in names)
            + " |")
    for load in LOADS:
        lines.append(f"| {load} updates/s: cores of orders / invoices / mongo / redis | "
                     + " | ".join(" / ".join(str(plans[name]["cores_for_load"][str(load)][tier])
                                             for tier in TIERS) for name in names) + " |")
    return "\n".join(lines)
