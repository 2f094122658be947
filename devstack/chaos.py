"""`make chaos`: the same bounded workload and the same faults against two lock strategies.

For each strategy, on a Redis and a MongoDB-wire server of its own: 2 invoices
and 3 orders instances, LOCK_TTL_MS=400, and a small pause inside every
critical section (a stand-in for real work). The run has three phases:

1. **paused holder**, on a quiet system: the scripted scenario of
   `devstack.scenarios`, on an order and two orders instances of its own, which
   breaks the naive lock by construction;
2. **load and faults**: while 8 clients send updates and deletes
   (`devstack.workload`), a fault injector freezes a random orders instance
   (SIGSTOP) for twice the lease, kills one (SIGKILL) and starts it again, or
   cuts one off from Redis, MongoDB or its invoices (a blackholed link of
   `devstack.links`) for twice the lease; once it kills Redis and starts it
   again empty, and once it jumps Redis's clock forward past the lease
   (libfaketime, `devstack.clock`); at the end it freezes all but orders-0
   across the end of the load;
3. **check**: after a lease time plus a repair interval, the independent
   checker, which looks only at what HTTP shows.

Strategies:

- **naive (UNSAFE)**: the Go original: SET NX with a TTL and the value "1",
  the invoice checks only that a lock key exists, unconditional writes, and a
  failed request deletes whatever lock is there. Selected with
  DLOCK_UNSAFE_NAIVE=1, which needs DLOCK_TEST_MODE=1;
- **fenced**: this project: FencedLock leases, fencing tokens checked where
  the writes land, intents and the repairer.

Every operation and fault goes to `<dir>/<strategy>/history.jsonl`, and the
report to `<dir>/report.html` with `<dir>/summary.json` beside it. Exit status
0 when the demonstration held: the fenced strategy shows no anomaly and the
naive one at least one. Options: --calls N, --seconds S, --seed N, --logs DIR
(where the histories, the report and the service logs go; a new temporary
folder otherwise).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Awaitable, Callable

from devstack import injectors, scenarios
from devstack.clock import FakeClock
from devstack.deployment import Deployment
from devstack.history import History
from devstack.links import Link
from devstack.mongo_server import MongoServer
from devstack.redis_server import RedisServer
from devstack.report import write_report
from devstack.service import ServiceProcess
from devstack.workload import Report, Workload, check, create_orders

TTL_MS = 400
REPAIR_MS = 300
STRATEGIES = {
    "naive (UNSAFE)": {"DLOCK_UNSAFE_NAIVE": "1", "REPAIR_INTERVAL_MS": "0"},
    "fenced": {"REPAIR_INTERVAL_MS": str(REPAIR_MS)},
}


class Stage:
    """Redis, MongoDB and the service instances of one strategy's run."""

    def __init__(self, name: str, extra_env: dict[str, str], logs: Path) -> None:
        self.logs = logs / name.split()[0]
        self.logs.mkdir(parents=True, exist_ok=True)
        self.clock = FakeClock(self.logs / "redis-clock")
        self.redis = RedisServer(log_path=str(self.logs / "redis.log"), clock=self.clock)
        self.mongo = MongoServer(str(self.logs / "mongo-data"),
                                 log_path=str(self.logs / "mongo.log"))
        self.extra_env = extra_env
        self.invoices: list[ServiceProcess] = []
        self.orders: list[ServiceProcess] = []
        self.scenario: tuple[ServiceProcess, ServiceProcess] | None = None
        self.names: dict[str, str] = {}
        # Every orders instance but orders-0 (the checker's) reaches Redis, MongoDB
        # and its invoices through links a fault can cut.
        self.links: dict[str, dict[str, Link]] = {}

    def start(self) -> None:
        self.redis.start()
        self.mongo.start()
        env = {"REDIS_URL": self.redis.url, "MONGO_URL": self.mongo.url,
               "LOCK_TTL_MS": str(TTL_MS), "REDIS_TIMEOUT_MS": "500", "HTTP_TIMEOUT_MS": "2000",
               "MONGO_TIMEOUT_MS": "3000", "DLOCK_TEST_MODE": "1",
               "DLOCK_FAULTS": "after_lock=sleep:20,after_invoice_write=sleep:20",
               "PYTHONUNBUFFERED": "1", "INVOICES_API_KEY": secrets.token_urlsafe(32),
               **self.extra_env}
        cut_off = [{"redis": Link.toward(self.redis.url, name=f"orders-{i} to redis").start(),
                    "mongo": Link.toward(self.mongo.url, name=f"orders-{i} to mongo").start(),
                    "invoices": Link(name=f"orders-{i} to invoices").start()}
                   for i in (1, 2)]
        deployment = Deployment.build(env, invoices=2, orders=3, logs=self.logs, orders_env=[
            {}, *({"REDIS_URL": links["redis"].through(self.redis.url),
                   "MONGO_URL": links["mongo"].through(self.mongo.url),
                   "INVOICES_URL": f"http://{links['invoices'].address}"} for links in cut_off)])
        self.invoices, self.orders = deployment.invoices, deployment.orders
        for i, links in enumerate(cut_off, start=1):
            invoices = self.invoices[i % len(self.invoices)]
            links["invoices"].target = (invoices.host, invoices.port)
            self.links[f"orders-{i}"] = links
        for module, instances in (("invoices", self.invoices), ("orders", self.orders)):
            for i, instance in enumerate(instances):
                self.names[instance.url] = f"{module}-{i}"
        holder, successor = scenarios.instance_env()
        self.scenario = (
            self._service("orders", "scenario-A",
                          {**env, "INVOICES_URL": self.invoices[0].url, **holder}),
            self._service("orders", "scenario-B",
                          {**env, "INVOICES_URL": self.invoices[1].url, **successor}))
        deployment.start()
        for instance in self.scenario:
            instance.start()

    def _service(self, module: str, name: str, env: dict[str, str]) -> ServiceProcess:
        port_variable = "ORDERS_PORT" if module == "orders" else "INVOICES_PORT"
        instance = ServiceProcess(module, port_variable, env,
                                  log_path=str(self.logs / f"{name}.log"))
        self.names[instance.url] = name
        return instance

    def stop(self) -> None:
        for server in [*self.orders, *(self.scenario or ()), *self.invoices, self.mongo,
                       self.redis]:
            server.stop()
        for links in self.links.values():
            for link in links.values():
                link.stop()

    def up(self) -> list[str]:
        return [o.url for o in self.orders if o.running and not o.frozen]

    def service_logs(self) -> list[Path]:
        return sorted(self.logs.glob("*-*.log"))


# -- faults -------------------------------------------------------------------------------
#
# An injector does one fault and records it in the history. Another kind of fault
# (a network partition, a clock jump) is one more function with this signature,
# added to RANDOM_FAULTS (drawn at random, by weight) or ONCE_FAULTS (once a run).

Injector = Callable[[Stage, random.Random, History], Awaitable[None]]


async def freeze_instance(stage: Stage, rng: random.Random, history: History) -> None:
    victim = rng.choice(stage.orders[1:])  # orders-0 stays up for the checker
    started = history.now()
    await injectors.freeze(victim, 2 * TTL_MS / 1000)
    history.fault("freeze", stage.names[victim.url], started,
                  f"SIGSTOP for {2 * TTL_MS} ms (twice the lease), then SIGCONT")


async def kill_instance(stage: Stage, rng: random.Random, history: History) -> None:
    victim = rng.choice(stage.orders[1:])
    started = history.now()
    await injectors.kill_and_restart(victim)
    history.fault("kill", stage.names[victim.url], started, "SIGKILL, then started again")


async def restart_redis_empty(stage: Stage, rng: random.Random, history: History) -> None:
    started = history.now()
    await injectors.kill_and_restart(stage.redis)
    history.fault("redis restart", "redis", started,
                  "SIGKILL, started again empty: the lock keys and the token counter are gone")


async def cut_off_instance(stage: Stage, rng: random.Random, history: History) -> None:
    victim = rng.choice(sorted(stage.links))
    toward = rng.choice(sorted(stage.links[victim]))
    started = history.now()
    await injectors.cut_off(stage.links[victim][toward], 2 * TTL_MS / 1000)
    history.fault("partition", victim, started,
                  f"its link to {toward} blackholed for {2 * TTL_MS} ms (twice the lease): "
                  "what it sent meanwhile arrives at the heal")


async def jump_redis_clock(stage: Stage, rng: random.Random, history: History) -> None:
    started = history.now()
    injectors.jump_clock(stage.clock, 2 * TTL_MS / 1000)
    history.fault("clock jump", "redis", started,
                  f"Redis's wall clock jumped {2 * TTL_MS} ms forward: every lease it held "
                  "expired at once, early")


RANDOM_FAULTS: list[tuple[float, Injector]] = [
    (0.6, freeze_instance), (0.2, kill_instance), (0.2, cut_off_instance)]
ONCE_FAULTS: list[Injector] = [restart_redis_empty, jump_redis_clock]


async def inject_faults(stage: Stage, rng: random.Random, until: float,
                        history: History) -> None:
    """Faults until `until` (ONCE_FAULTS spread over the run), then one last freeze of
    every instance but orders-0 that spans the end of the load: whatever those held is
    written last."""
    started = time.monotonic()
    once = list(ONCE_FAULTS)
    weights = [weight for weight, _ in RANDOM_FAULTS]
    while time.monotonic() < until - 1.0:
        await asyncio.sleep(rng.uniform(0.2, 0.6))
        # The k-th of the n once-faults comes (k + 1) / (n + 2) of the way through.
        done = (time.monotonic() - started) / (until - started)
        if once and done * (len(ONCE_FAULTS) + 2) >= len(ONCE_FAULTS) - len(once) + 1:
            await once.pop(0)(stage, rng, history)
        else:
            [(_, injector)] = rng.choices(RANDOM_FAULTS, weights)
            await injector(stage, rng, history)
    for injector in once:  # a run too short to reach them
        await injector(stage, rng, history)
    await asyncio.sleep(max(0.0, until - 0.5 - time.monotonic()))
    frozen_at = history.now()
    for victim in stage.orders[1:]:
        victim.pause()
    await asyncio.sleep(2 * TTL_MS / 1000)
    for victim in stage.orders[1:]:
        victim.resume()
        history.fault("freeze", stage.names[victim.url], frozen_at,
                      f"SIGSTOP for {2 * TTL_MS} ms across the end of the load")


# -- one strategy -------------------------------------------------------------------------

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
    stage = Stage(name, STRATEGIES[name], logs)
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


async def main_async(args: argparse.Namespace) -> int:
    logs = Path(args.logs) if args.logs else Path(tempfile.mkdtemp(prefix="chaos-"))
    logs.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in STRATEGIES:
        print(f"running {name}: the paused-holder scenario, then up to {args.calls} calls in "
              f"{args.seconds:.0f}s with pauses, crashes and a Redis restart ...", flush=True)
        results[name] = await run_strategy(name, logs, args.calls, args.seconds, args.seed)
    print_table(results)
    held = demonstrated(results)
    (logs / "summary.json").write_text(json.dumps(summary(results), indent=2) + "\n")
    report = write_report(logs / "report.html", {name: run.history for name, run in
                                                 results.items()}, held)
    print(f"\nhistories and service logs: {logs}")
    print("the demonstration held: the naive lock broke, the fenced one did not" if held else
          "the demonstration did NOT hold (see the table above)")
    print(f"report: {report}")
    return 0 if held else 1


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0].strip('"` '),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=3000, help="at most this many calls")
    parser.add_argument("--seconds", type=float, default=15.0,
                        help="at most this long for the load, per strategy")
    parser.add_argument("--seed", type=int, default=7, help="of the load and the faults")
    parser.add_argument("--logs", default=None,
                        help="folder for histories, report and service logs")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
