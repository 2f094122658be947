"""The PNG of `benchmarks.lock`: one panel per scenario, cycles/s per lock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

FAMILIES = [("FencedLock", "#1f77b4"), ("redis-py", "#d62728"), ("floor", "#7f7f7f")]
PEER_COLOUR = "#ff7f0e"


def colour(lock: str) -> str:
    return next((c for prefix, c in FAMILIES if lock.startswith(prefix)), PEER_COLOUR)


def label(row: dict[str, Any]) -> str:
    """What a bar says next to it: the figures that are not its length."""
    parts = [f"{row['cycles_per_s']:,.0f}/s", f"{row['round_trips_per_cycle']:.2f} RT",
             f"p99 {row['p99_ms']:.1f} ms"]
    if row.get("jain") is not None:
        parts.append(f"Jain {row['jain']:.2f}")
    if row.get("timeouts"):
        parts.append(f"{row['timeouts']} t/o")
    return ", ".join(parts)


def plot(data: dict[str, Any], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    titles = list(dict.fromkeys(row["scenario"] for row in data["rows"]))
    fig, axes = plt.subplots(len(titles), 1, figsize=(12, 4.2 * len(titles)))
    for ax, title in zip(axes if len(titles) > 1 else [axes], titles):
        rows = [r for r in data["rows"] if r["scenario"] == title]
        names = [r["lock"] for r in rows]
        rates = [r.get("cycles_per_s") or 0.0 for r in rows]
        # Whiskers: the slowest and the fastest round, around the median the bar shows.
        low = [rate - min(r.get("rounds_cycles_per_s") or [rate]) for r, rate in zip(rows, rates)]
        high = [max(r.get("rounds_cycles_per_s") or [rate]) - rate for r, rate in zip(rows, rates)]
        ax.barh(names, rates, color=[colour(n) for n in names], xerr=[low, high],
                error_kw={"elinewidth": 0.8, "capsize": 2, "ecolor": "#333333"})
        ax.invert_yaxis()
        # Room on the right for the labels, inside the axes so the layout keeps its width.
        top = max((rate + up for rate, up in zip(rates, high)), default=0.0) or 1.0
        ax.set_xlim(0, top * 2.0)
        for y, row in enumerate(rows):
            text = label(row) if row["available"] else "not available here"
            ax.text(rates[y] + high[y] + top * 0.02, y, text, va="center", fontsize=8,
                    clip_on=True)
        ax.set_title(title, fontsize=11, loc="left")
        ax.set_xlabel("acquire+release cycles per second (median of "
                      f"{data['settings']['rounds']} rounds)")
        ax.tick_params(axis="y", labelsize=9)
        ax.grid(axis="x", alpha=0.3)
    before, after = data["settings"].get("load_average_before_after") or (None, None)
    load = f", load average {before:.1f} -> {after:.1f}" if before is not None else ""
    fig.suptitle(f"Locks on one loopback redis-server, {data['machine']['cpus']} CPUs shared "
                 f"by client and server{load}; {data['date']}, commit {data['commit']}",
                 fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
