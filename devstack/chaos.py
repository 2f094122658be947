"""`make chaos`: the same bounded workload and the same faults against two lock strategies.

For each strategy, on a Redis and a MongoDB-wire server of its own: 2 invoices
and 3 orders instances, LOCK_TTL_MS=400, and a small pause inside every
critical section (a stand-in for real work). While 8 clients send updates and
deletes (`devstack.workload`), a fault injector:

- freezes a random orders instance (SIGSTOP) for twice the lease, then SIGCONT;
- kills one (SIGKILL) and starts it again;
- once, kills Redis and starts it again empty.

Then it waits a lease time plus a repair interval and runs the independent
checker, which looks only at what HTTP shows. Strategies:

- **naive (UNSAFE)**: the Go original: SET NX with a TTL and the value "1",
  the invoice checks only that a lock key exists, unconditional writes, and a
  failed request deletes whatever lock is there. Selected with
  DLOCK_UNSAFE_NAIVE=1, which needs DLOCK_TEST_MODE=1;
- **fenced**: this project: FencedLock leases, fencing tokens checked where
  the writes land, intents and the repairer.

Exit status 0 when the fenced strategy shows no anomaly. Options: --calls N,
--seconds S, --seed N, --logs DIR (service logs; a temporary folder otherwise).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import sys
import tempfile
import time
from pathlib import Path

from devstack.deployment import Deployment
from devstack.mongo_server import MongoServer
from devstack.redis_server import RedisServer
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
        self.redis = RedisServer(log_path=str(self.logs / "redis.log"))
        self.mongo = MongoServer(str(self.logs / "mongo-data"),
                                 log_path=str(self.logs / "mongo.log"))
        self.extra_env = extra_env
        self.invoices: list[ServiceProcess] = []
        self.orders: list[ServiceProcess] = []

    def start(self) -> None:
        self.redis.start()
        self.mongo.start()
        env = {"REDIS_URL": self.redis.url, "MONGO_URL": self.mongo.url,
               "LOCK_TTL_MS": str(TTL_MS), "REDIS_TIMEOUT_MS": "500", "HTTP_TIMEOUT_MS": "2000",
               "MONGO_TIMEOUT_MS": "3000", "DLOCK_TEST_MODE": "1",
               "DLOCK_FAULTS": "after_lock=sleep:20,after_invoice_write=sleep:20",
               "PYTHONUNBUFFERED": "1", "INVOICES_API_KEY": secrets.token_urlsafe(32),
               **self.extra_env}
        deployment = Deployment.build(env, invoices=2, orders=3, logs=self.logs)
        self.invoices, self.orders = deployment.invoices, deployment.orders
        deployment.start()

    def stop(self) -> None:
        for server in [*self.orders, *self.invoices, self.mongo, self.redis]:
            server.stop()

    def up(self) -> list[str]:
        return [o.url for o in self.orders if o.running and not o.frozen]


async def inject_faults(stage: Stage, rng: random.Random, until: float,
                        log: list[str]) -> None:
    """Faults until `until`, then one last freeze of every instance but orders-0 that
    spans the end of the load: whatever those held is written last."""
    loop = asyncio.get_running_loop()
    redis_restarted = False
    started = time.monotonic()
    while time.monotonic() < until - 1.0:
        await asyncio.sleep(rng.uniform(0.2, 0.6))
        victim = rng.choice(stage.orders[1:])  # orders-0 stays up for the checker
        if not redis_restarted and time.monotonic() - started > (until - started) / 3:
            stage.redis.kill()
            await loop.run_in_executor(None, stage.redis.start)
            redis_restarted = True
            log.append("redis restarted empty")
        elif rng.random() < 0.8:
            victim.pause()
            await asyncio.sleep(2 * TTL_MS / 1000)
            victim.resume()
            log.append(f"froze {victim.url} for {2 * TTL_MS} ms")
        else:
            victim.kill()
            await loop.run_in_executor(None, victim.start)
            log.append(f"killed and restarted {victim.url}")
    await asyncio.sleep(max(0.0, until - 0.5 - time.monotonic()))
    for victim in stage.orders[1:]:
        victim.pause()
    await asyncio.sleep(2 * TTL_MS / 1000)
    for victim in stage.orders[1:]:
        victim.resume()
    log.append(f"froze orders-1 and orders-2 for {2 * TTL_MS} ms across the end of the load")


async def run_strategy(name: str, logs: Path, calls: int, seconds: float,
                       seed: int) -> tuple[Report, list[str]]:
    stage = Stage(name, STRATEGIES[name], logs)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, stage.start)
    try:
        orders = await create_orders(stage.orders[0].url, 30)
        workload = Workload(stage.up, orders, clients=8, max_calls=calls, max_seconds=seconds,
                            delete_share=0.02, deletable=3, seed=seed)
        faults: list[str] = []
        await asyncio.gather(workload.run(), inject_faults(
            stage, random.Random(seed), time.monotonic() + seconds, faults))
        for instance in stage.orders:
            instance.resume()
        await asyncio.sleep((TTL_MS + 2 * REPAIR_MS) / 1000 + 1.0)
        report = await check(workload, stage.orders[0].url, stage.invoices[0].url)
        return report, faults
    finally:
        await loop.run_in_executor(None, stage.stop)


def print_table(results: dict[str, tuple[Report, list[str]]]) -> None:
    header = (f"{'strategy':<16}{'calls':>7}{'acked':>7}{'disagreeing':>13}"
              f"{'lost updates':>14}{'stale writes':>14}{'anomalies':>11}")
    print("\n" + header)
    print("-" * len(header))
    for name, (report, _) in results.items():
        print(f"{name:<16}{report.calls:>7}{report.acknowledged:>7}"
              f"{len(report.disagreeing):>13}{len(report.lost_updates):>14}"
              f"{len(report.stale_writes):>14}{report.anomalies:>11}")
    for name, (report, faults) in results.items():
        print(f"\n{name}: {len(faults)} faults injected, the last: {faults[-1]}")
        for line in (report.disagreeing[:2] + report.lost_updates[:2] + report.stale_writes[:2]):
            print(f"  {line}")


async def main_async(args: argparse.Namespace) -> int:
    logs = Path(args.logs) if args.logs else Path(tempfile.mkdtemp(prefix="chaos-"))
    results = {}
    for name in STRATEGIES:
        print(f"running {name}: up to {args.calls} calls in {args.seconds:.0f}s, "
              f"with pauses, crashes and a Redis restart ...", flush=True)
        results[name] = await run_strategy(name, logs, args.calls, args.seconds, args.seed)
    print_table(results)
    print(f"\nservice logs: {logs}")
    return 0 if results["fenced"][0].anomalies == 0 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--logs", default=None)
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
