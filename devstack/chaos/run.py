"""One strategy's chaos run, phase by phase: stage up, the paused holder, load and faults,
settling, the check; the history written whatever happens."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from devstack import scenarios
from devstack.chaos.schedule import inject_faults
from devstack.chaos.stage import REPAIR_MS, STRATEGIES, TTL_MS, Stage
from devstack.history import History
from devstack.workload import Report, Workload, check, create_orders


@dataclass
class Run:
    name: str
    report: Report
    history: History
    phase: str = "starting"
    started: float = field(default_factory=time.monotonic)

    scenario_order: str | None = None

    @property
    def scenario_anomalies(self) -> int:
        return sum(1 for anomaly in self.report.all if anomaly.order == self.scenario_order)


async def progress(run: Run, workload: Workload, every: float = 1.0) -> None:
    """A line a second: no minute of silence."""
    while True:
        await asyncio.sleep(every)
        print(f"  {run.name:<15} {time.monotonic() - run.started:5.1f}s  {run.phase:<16}"
              f"{workload.calls:>6} calls {len(run.history.faults):>4} faults", flush=True)


async def run_strategy(name: str, logs: Path, calls: int, seconds: float, seed: int) -> Run:
    stage = Stage(name, STRATEGIES[name], logs, scenarios.instance_env())
    history = History(names=stage.names)
    workload = Workload(stage.up, [], clients=8, max_calls=calls, max_seconds=seconds,
                        delete_share=0.02, deletable=3, seed=seed, history=history)
    run = Run(name, Report(0, 0, 0, [], [], []), history)
    ticking = asyncio.ensure_future(progress(run, workload))
    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(None, stage.start)
        run.phase = "paused holder"
        history.start_clock()
        history.note("phase", name=run.phase)
        scenario_order = await scenarios.paused_holder(stage, workload)
        run.scenario_order = scenario_order["id"]
        run.phase = "creating orders"
        workload.orders.extend(await create_orders(stage.orders[0].url, 30))
        run.phase = "load and faults"
        history.note("phase", name=run.phase)
        await asyncio.gather(workload.run(), inject_faults(
            stage, random.Random(seed), time.monotonic() + seconds, history))
        for instance in stage.orders:
            instance.resume()
        workload.orders.append(scenario_order)
        run.phase = "settling"
        history.note("phase", name=run.phase)
        await asyncio.sleep((TTL_MS + 2 * REPAIR_MS) / 1000 + 1.0)
        run.phase = "checking"
        history.note("phase", name=run.phase)
        run.report = await check(workload, stage.orders[0].url, stage.invoices[0].url)
        for anomaly in run.report.all:
            scripted = anomaly.order == run.scenario_order
            # The scenario's anomaly is drawn where it happened: A's late write.
            history.note("anomaly", order=anomaly.order, kind=anomaly.kind,
                         detail=anomaly.detail,
                         at=scenarios.late_write_end(history) if scripted else anomaly.at,
                         explain=scenarios.EXPLAIN if scripted else None)
        return run
    finally:
        ticking.cancel()
        await loop.run_in_executor(None, stage.stop)
        history.tokens_from_logs(stage.service_logs(), {
            order["invoice_id"]: order["id"] for order in workload.orders})
        history.write(stage.logs / "history.jsonl")
