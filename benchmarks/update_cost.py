"""What one update costs each process, fenced vs naive: `python -m benchmarks.update_cost`.

Runs one orders and one invoices instance per strategy against one Redis and one
SecantusDB. It sends `--updates` PATCHes one at a time and prints, per update,
the wall time, the CPU time of every process (psutil), and MongoDB's
opcounters (serverStatus). With `--no-sync`, SecantusDB runs without
`--sync-on-commit`, to show whether syncing to disk is what costs.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from pymongo import AsyncMongoClient

from devstack import MongoServer, RedisServer
from devstack.deployment import Deployment
from devstack.http import request
from devstack.process import cpu_seconds
from devstack.workload import create_orders

# label -> (name for its database, key prefix and logs; extra environment)
STRATEGIES = {"fenced": ("fenced", {}),
              "naive (UNSAFE)": ("naive", {"DLOCK_TEST_MODE": "1", "DLOCK_UNSAFE_NAIVE": "1"})}


class UnsyncedMongo(MongoServer):
    def command(self) -> list[str]:
        return [arg for arg in super().command() if arg != "--sync-on-commit"]


async def measure(name: str, slug: str, extra: dict[str, str], mongo: MongoServer,
                  redis: RedisServer, logs: str, updates: int) -> None:
    env = {"REDIS_URL": redis.url, "MONGO_URL": mongo.url, "MONGO_DB": f"cost_{slug}",
           "LOCK_PREFIX": f"cost-{slug}", "INVOICES_API_KEY": "cost-key-0123456789",
           "LOG_FORMAT": "json", **extra}
    deployment = Deployment.build(env, logs=Path(logs), log_prefix=f"{slug}-")
    deployment.start()
    orders, invoices = deployment["orders"][0], deployment["invoices"][0]
    client: AsyncMongoClient = AsyncMongoClient(mongo.url, timeoutMS=10_000)
    try:
        ids = [order["id"] for order in await create_orders(orders.url, 5)]
        pids = {"mongo": mongo.pid, "orders": orders.pid, "invoices": invoices.pid,
                "redis": redis.pid}
        ops_before = (await client.admin.command("serverStatus"))["opcounters"]
        cpu_before = {key: cpu_seconds(pid) for key, pid in pids.items()}
        started = time.perf_counter()
        for n in range(updates):
            status, _ = await request("PATCH", f"{orders.url}/orders/{ids[n % len(ids)]}", {
                "update_time": f"2031-01-01T{n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z",
                "quantity": n + 1})
            assert status == 200, status
        wall_ms = (time.perf_counter() - started) / updates * 1000
        cpu_ms = {key: (cpu_seconds(pid) - cpu_before[key]) / updates * 1000
                  for key, pid in pids.items()}
        ops_after = (await client.admin.command("serverStatus"))["opcounters"]
        ops = {key: (ops_after[key] - ops_before[key]) / updates
               for key in ("query", "update", "insert")}
        print(f"{name:16s} {wall_ms:6.2f} ms/update   CPU ms/update: "
              + ", ".join(f"{key} {value:.2f}" for key, value in cpu_ms.items())
              + "   MongoDB ops/update: "
              + ", ".join(f"{key} {value:.1f}" for key, value in ops.items()))
    finally:
        await client.close()
        deployment.stop()


async def main(updates: int, sync: bool) -> None:
    work = tempfile.mkdtemp(prefix="update-cost-")
    mongo = (MongoServer if sync else UnsyncedMongo)(f"{work}/mongo")
    with mongo, RedisServer() as redis:
        print(f"{updates} sequential updates each; SecantusDB "
              f"{'syncing every commit' if sync else 'without --sync-on-commit'}")
        for name, (slug, extra) in STRATEGIES.items():
            await measure(name, slug, extra, mongo, redis, work, updates)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--no-sync", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.updates, not args.no_sync))
