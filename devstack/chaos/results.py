"""What the chaos runs add up to: the table printed, summary.json, and the verdict."""

from __future__ import annotations

from devstack.chaos.run import Run


def print_table(results: dict[str, Run]) -> None:
    header = (f"{'strategy':<16}{'calls':>7}{'acked':>7}{'disagreeing':>13}"
              f"{'lost updates':>14}{'stale writes':>14}{'anomalies':>11}")
    print("\n" + header)
    print("-" * len(header))
    for name, run in results.items():
        report = run.report
        print(f"{name:<16}{report.calls:>7}{report.acknowledged:>7}"
              f"{len(report.disagreeing):>13}{len(report.lost_updates):>14}"
              f"{len(report.stale_writes):>14}{report.anomalies:>11}")
    for name, run in results.items():
        print(f"\n{name}: {len(run.history.faults)} faults injected; "
              f"{run.scenario_anomalies} anomalies in the paused-holder scenario")
        report = run.report
        for anomaly in (report.disagreeing[:2] + report.lost_updates[:2]
                        + report.stale_writes[:2]):
            print(f"  {anomaly}")


def summary(results: dict[str, Run]) -> dict[str, dict[str, int]]:
    return {name: {"anomalies": run.report.anomalies, "calls": run.report.calls,
                   "acknowledged": run.report.acknowledged,
                   "disagreeing": len(run.report.disagreeing),
                   "lost_updates": len(run.report.lost_updates),
                   "stale_writes": len(run.report.stale_writes),
                   "faults": len(run.history.faults),
                   "scenario_anomalies": run.scenario_anomalies}
            for name, run in results.items()}


def demonstrated(results: dict[str, Run]) -> bool:
    """What the demo exists to show: the naive lock breaks, the fenced one holds."""
    return (results["fenced"].report.anomalies == 0
            and results["naive (UNSAFE)"].report.anomalies >= 1)
