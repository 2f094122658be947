"""`make bench-http`: both services over HTTP, measured side by side in one run.

One redis-server and one SecantusDB serve every deployment (each with its own
database and key prefix); deployments are driven one at a time, and compared
variants alternate round by round, so that a noisy machine hits both alike.
The load generator is a bounded asyncio loop in this process (libcurl client,
kept-alive connections): a person would use wrk or locust, but they cannot
follow an order's id from a create to its update, and this keeps the whole
benchmark to one command with nothing more to install. It shares the 2 cores
with the servers; the CPU each process used is reported next to the figures.

Scenarios:
- create / get / update / delete at concurrency 1, 16, 64 on many orders;
- update on 4 hot orders at 16 and 64: 423s, successful updates per second;
- the cost of safety: fenced vs the naive lock of `make chaos`, same updates;
- keep-alive between orders and invoices: HTTP_CLIENT=curl vs simple;
- scale-out: 1, 2 and 4 orders instances on the same updates;
- where the time of one update goes, from trace spans (in-process, traced).

Prints a table, writes docs/benchmarks/http.json and docs/benchmarks/http.png.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from tornado.httpclient import AsyncHTTPClient

from devstack import MongoServer, RedisServer, ServiceProcess
from devstack.deployment import Deployment
from devstack.http import request as send
from devstack.process import cpu_seconds
from benchmarks import http_capacity
from devstack.workload import BASE_US, ITEM, USER
from servicekit.validate import format_micros


OP_KINDS = ("insert", "query", "update", "delete", "getmore")
SAFETY = "cost of safety: update"
STRATEGIES = {"fenced": "fenced", "naive": "naive (UNSAFE)"}


@dataclass
class Cell:
    scenario: str
    variant: str
    concurrency: int
    seconds: float = 0.0
    calls: int = 0
    ok: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)
    mongo_ops: dict[str, int] = field(default_factory=dict)

    @property
    def ok_per_s(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("latencies_ms")
        data.update(ok_per_s=round(self.ok_per_s, 1), p50_ms=round(self.pct(0.50), 2),
                    p95_ms=round(self.pct(0.95), 2), p99_ms=round(self.pct(0.99), 2),
                    mongo_ops_per_call=round(sum(self.mongo_ops.values()) / self.calls, 2)
                    if self.calls else 0.0)
        return data


class Bench:
    def __init__(self, seconds: float, workdir: Path) -> None:
        self.seconds = seconds
        self.workdir = workdir
        self.redis = RedisServer()
        self.mongo = MongoServer(str(workdir / "mongo"))
        self.processes: dict[str, ServiceProcess] = {}
        self.ticks = itertools.count(1)
        self.cells: list[Cell] = []
        self.mongo_client: Any = None

    async def opcounters(self) -> dict[str, int]:
        """The MongoDB-wire server's own count of what it served, by kind."""
        if self.mongo_client is None:
            from pymongo import AsyncMongoClient
            self.mongo_client = AsyncMongoClient(self.mongo.url, timeoutMS=10_000)
        status = await self.mongo_client.admin.command("serverStatus")
        return {kind: int(status["opcounters"].get(kind, 0)) for kind in OP_KINDS}

    def start(self) -> None:
        self.redis.start()
        self.mongo.start()
        key = "bench-key-0123456789abcdef"
        # The repairer passes once a minute: its queries would blur the operation counts.
        common = {"REDIS_URL": self.redis.url, "MONGO_URL": self.mongo.url,
                  "INVOICES_API_KEY": key, "LOG_FORMAT": "json", "REPAIR_INTERVAL_MS": "60000"}
        # "fenced" serves the per-operation cells and scale-out; the three 1 + 1 layouts
        # are compared with one another, on databases of the same size.
        layouts = {"fenced": ({}, 2, 4), "fenced-1": ({}, 1, 1),
                   "simple-http": ({"HTTP_CLIENT": "simple"}, 1, 1),
                   "naive": ({"DLOCK_TEST_MODE": "1", "DLOCK_UNSAFE_NAIVE": "1"}, 1, 1)}
        for name, (extra, invoices, orders) in layouts.items():
            env = {**common, **extra, "MONGO_DB": f"bench_{name.replace('-', '_')}",
                   "LOCK_PREFIX": f"bench-{name}"}
            deployment = Deployment.build(env, counts={"invoices": invoices, "orders": orders},
                                          logs=self.workdir, log_prefix=f"{name}-")
            for kind, instances in deployment.instances.items():
                for i, process in enumerate(instances):
                    process.start()
                    self.processes[f"{name}/{kind}-{i}"] = process

    def stop(self) -> None:
        for process in self.processes.values():
            process.stop()
        self.mongo.stop()
        self.redis.stop()

    def url(self, name: str) -> str:
        return str(self.processes[name].url)

    async def create_orders(self, base: str, count: int) -> list[str]:
        ids: list[str] = []

        async def worker() -> None:
            while len(ids) < count:
                status, body = await send("POST", f"{base}/orders", {
                    "user_id": USER, "item_id": ITEM, "quantity": 1, "value": 1}, timeout=20)
                if status == 201:
                    ids.append(body["id"])

        await asyncio.gather(*(worker() for _ in range(16)))
        return ids[:count]

    async def drive(self, cell: Cell, bases: list[str],
                    request: Callable[[str, random.Random], tuple[str, str, Any] | None],
                    ok: tuple[int, ...], max_calls: int = 100_000) -> Cell:
        """`cell.concurrency` clients send `request(...)` until the time or calls run out."""
        rng = random.Random(len(self.cells))
        deadline = time.monotonic() + self.seconds
        calls = itertools.count()
        statuses: dict[str, int] = {}
        deployments = {name.split("/")[0] for name, p in self.processes.items()
                       if p.url in bases}
        pids = {name: p.pid for name, p in self.processes.items()
                if name.split("/")[0] in deployments and ("invoices" in name or p.url in bases)}
        pids.update(mongo=self.mongo.pid, redis=self.redis.pid)
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        ops_before = await self.opcounters()

        async def client() -> None:
            while time.monotonic() < deadline and next(calls) < max_calls:
                planned = request(rng.choice(bases), rng)
                if planned is None:
                    return
                method, url, body = planned
                started = time.perf_counter()
                status, _ = await send(method, url, body, timeout=20)
                cell.latencies_ms.append((time.perf_counter() - started) * 1000)
                status = status or 0  # no answer at all
                statuses[str(status)] = statuses.get(str(status), 0) + 1
                if status in ok:
                    cell.ok += 1

        started = time.monotonic()
        await asyncio.gather(*(client() for _ in range(cell.concurrency)))
        cell.seconds += time.monotonic() - started
        for status, count in statuses.items():
            cell.statuses[status] = cell.statuses.get(status, 0) + count
        cell.calls = sum(cell.statuses.values())
        for name, pid in pids.items():
            used = cpu_seconds(pid) - cpu_before[name]
            cell.cpu[name] = round(cell.cpu.get(name, 0.0) + used, 2)
        ops_after = await self.opcounters()
        for kind in OP_KINDS:
            cell.mongo_ops[kind] = cell.mongo_ops.get(kind, 0) + ops_after[kind] - ops_before[kind]
        return cell

    def update(self, ids: list[str]) -> Callable[[str, random.Random], tuple[str, str, Any]]:
        def make(base: str, rng: random.Random) -> tuple[str, str, Any]:
            update_us = BASE_US + next(self.ticks) * 1000
            return ("PATCH", f"{base}/orders/{rng.choice(ids)}",
                    {"update_time": format_micros(update_us), "quantity": rng.randint(1, 50)})
        return make

    async def run(self) -> None:
        try:
            await self.scenarios()
        finally:
            if self.mongo_client is not None:
                await self.mongo_client.close()

    async def scenarios(self) -> None:
        # The cost of safety first: SecantusDB's CPU per operation grew over a run (from
        # 1.8 ms in the first cells to 19 ms in the last, in one measured run), and this
        # comparison is what the figures for the capacity model come from.
        fenced1 = self.url("fenced-1/orders-0")
        fenced1_orders = await self.create_orders(fenced1, 300)
        await self.side_by_side(SAFETY, {
            "fenced": ([fenced1], fenced1_orders),
            "naive (UNSAFE)": ([self.url("naive/orders-0")],
                               await self.create_orders(self.url("naive/orders-0"), 300))}, 16)
        fenced0 = self.url("fenced/orders-0")
        many = await self.create_orders(fenced0, 300)
        hot = many[:4]
        created: list[str] = []

        def create(base: str, rng: random.Random) -> tuple[str, str, Any]:
            return ("POST", f"{base}/orders", {"user_id": USER, "item_id": ITEM,
                                               "quantity": rng.randint(1, 9), "value": 2.5})

        def get(base: str, rng: random.Random) -> tuple[str, str, Any]:
            return "GET", f"{base}/orders/{rng.choice(many)}", None

        def delete(base: str, rng: random.Random) -> tuple[str, str, Any] | None:
            return ("DELETE", f"{base}/orders/{created.pop()}", None) if created else None

        for concurrency in (1, 16, 64):
            cell = await self.drive(Cell("create", "fenced", concurrency), [fenced0], create,
                                    (201,))
            self.cells.append(cell)
        created.extend(await self.create_orders(fenced0, 600))
        random.Random(1).shuffle(created)
        for concurrency in (1, 16, 64):
            self.cells.append(await self.drive(Cell("get", "fenced", concurrency), [fenced0],
                                               get, (200,)))
            self.cells.append(await self.drive(Cell("update", "fenced", concurrency),
                                               [fenced0], self.update(many[4:]), (200,)))
            self.cells.append(await self.drive(Cell("delete", "fenced", concurrency),
                                               [fenced0], delete, (204,), max_calls=200))
        for concurrency in (16, 64):
            self.cells.append(await self.drive(Cell("update, 4 hot orders", "fenced",
                                                    concurrency), [fenced0], self.update(hot),
                                               (200,)))
        await self.side_by_side("keep-alive to invoices: update", {
            "curl (keep-alive)": ([fenced1], fenced1_orders),
            "simple (new connection)": ([self.url("simple-http/orders-0")],
                                        await self.create_orders(
                                            self.url("simple-http/orders-0"), 300))}, 16)
        await self.side_by_side("scale-out: update", {
            f"{n} orders instance{'s' if n > 1 else ''}": (
                [self.url(f"fenced/orders-{i}") for i in range(n)], many[4:])
            for n in (1, 2, 4)}, 64)

    async def side_by_side(self, scenario: str,
                           variants: dict[str, tuple[list[str], list[str]]],
                           concurrency: int, rounds: int = 3) -> None:
        cells = {name: Cell(scenario, name, concurrency) for name in variants}
        for round_number in range(rounds):
            order = list(variants)
            if round_number % 2:
                order.reverse()
            for name in order:
                bases, ids = variants[name]
                await self.drive(cells[name], bases, self.update(ids), (200,))
        self.cells.extend(cells.values())


async def breakdown(updates: int = 150) -> dict[str, float]:
    """Median milliseconds per part of one update, from the spans of an in-process run."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from devstack.http import call
    from devstack.in_process import Stack, StackSettings
    from servicekit.tracing import instrument

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    instrument()
    with tempfile.TemporaryDirectory() as data:
        redis, mongo = RedisServer(), MongoServer(data)
        redis.start()
        mongo.start()
        AsyncHTTPClient.configure(None)
        stack = await Stack.start(StackSettings(
            mongo_url=mongo.url, redis_url=redis.url, mongo_db="breakdown",
            lock_prefix="breakdown", repair_interval_ms=0, http_client="simple"))
        try:
            order = await stack.create_order()
            parts: dict[str, list[float]] = {}
            for n in range(updates):
                exporter.clear()
                await call("PATCH", f"{stack.orders_url}/orders/{order['id']}",
                           {"update_time": format_micros(BASE_US + n * 1000),
                            "quantity": 2 + n % 5})
                spans = exporter.get_finished_spans()
                for name, value in split(spans).items():
                    parts.setdefault(name, []).append(value)
        finally:
            await stack.stop()
            mongo.stop()
            redis.stop()
    return {name: round(statistics.median(values), 3) for name, values in parts.items()}


def split(spans: Any) -> dict[str, float]:
    """One update's spans, summed by part."""
    def ms(span: Any) -> float:
        return float((span.end_time - span.start_time) / 1e6)

    children: dict[int, list[Any]] = {}
    for span in spans:
        if span.parent is not None:
            children.setdefault(span.parent.span_id, []).append(span)

    def under(root: Any) -> list[Any]:
        found, stack = [], [root]
        while stack:
            for child in children.get(stack.pop().context.span_id, []):
                found.append(child)
                stack.append(child)
        return found

    server = next(s for s in spans if s.name == "PATCH /orders/{raw_id}")
    invoice_server = next(s for s in spans if s.name == "PATCH /invoices/{raw_id}")
    hop = next(s for s in under(server) if s.name == "PATCH")
    in_invoices = {s.context.span_id for s in under(invoice_server)}
    acquires = [s for s in under(server) if s.name == "acquire lease"]
    in_acquire = {s.context.span_id for a in acquires for s in under(a)}
    redis = [s for s in spans if s.name.split()[0] in ("EVALSHA", "GET", "SCRIPT")]
    mongo = [s for s in spans if "." in s.name and s.kind.name == "CLIENT"]
    release_and_check = [s for s in redis if s.context.span_id not in in_acquire]
    lock_path = sum(ms(s) for s in acquires) + sum(ms(s) for s in release_and_check)
    orders_redis = sum(ms(s) for s in redis if s.context.span_id not in in_invoices)
    orders_mongo = sum(ms(s) for s in mongo if s.context.span_id not in in_invoices)
    total = ms(server)
    return {"update, total": total, "lock path (acquire + holder check + release)": lock_path,
            "redis, all calls": sum(ms(s) for s in redis),
            "mongodb, all calls": sum(ms(s) for s in mongo),
            "invoice hop (client span)": ms(hop), "invoices server": ms(invoice_server),
            "orders' own python": total - orders_redis - orders_mongo - ms(hop)}


def report(cells: list[Cell], parts: dict[str, float]) -> dict[str, Any]:
    print(f"\n{'scenario':<34}{'variant':<26}{'conc':>5}{'ok/s':>9}{'p50 ms':>9}{'p95 ms':>9}"
          f"{'p99 ms':>9}  statuses")
    for cell in cells:
        print(f"{cell.scenario:<34}{cell.variant:<26}{cell.concurrency:>5}"
              f"{cell.ok_per_s:>9.0f}{cell.pct(.5):>9.1f}{cell.pct(.95):>9.1f}"
              f"{cell.pct(.99):>9.1f}  {dict(sorted(cell.statuses.items()))}")
    by = {(c.scenario, c.variant): c for c in cells}

    def ratio(scenario: str, a: str, b: str, what: str = "ok_per_s") -> float:
        x, y = by[scenario, a], by[scenario, b]
        if what == "ok_per_s":
            return round(x.ok_per_s / y.ok_per_s, 2) if y.ok_per_s else 0.0
        return round(x.pct(.5) / y.pct(.5), 2) if y.pct(.5) else 0.0

    ratios = {
        "fenced / naive, update throughput": ratio("cost of safety: update", "fenced",
                                                   "naive (UNSAFE)"),
        "fenced / naive, update p50 latency": ratio("cost of safety: update", "fenced",
                                                    "naive (UNSAFE)", "p50"),
        "curl / simple, update throughput": ratio("keep-alive to invoices: update",
                                                  "curl (keep-alive)",
                                                  "simple (new connection)"),
        "2 / 1 orders instances, update throughput": ratio(
            "scale-out: update", "2 orders instances", "1 orders instance"),
        "4 / 1 orders instances, update throughput": ratio(
            "scale-out: update", "4 orders instances", "1 orders instance"),
    }
    hot_cells = [c for c in cells if c.scenario == "update, 4 hot orders"]
    for cell in hot_cells:
        ratios[f"hot orders at {cell.concurrency}: p99 / p50"] = round(
            cell.pct(.99) / cell.pct(.5), 1) if cell.pct(.5) else 0.0
    if parts:
        ratios["lock path / update median"] = round(
            parts["lock path (acquire + holder check + release)"] / parts["update, total"], 2)
    print()
    for name, value in ratios.items():
        print(f"{name:<52}{value:>8}")
    if parts:
        print("\nwhere one update's time goes (medians of traced in-process updates, ms):")
        for name, value in parts.items():
            print(f"  {name:<50}{value:>8.2f}")
    safety = safety_table(cells)
    plans = http_capacity.capacity([c.summary() for c in cells], SAFETY, STRATEGIES)
    if plans:
        print("\ncapacity model from these figures (benchmarks/http_capacity.py):")
        print(http_capacity.markdown(plans))
    scale = [c for c in cells if c.scenario == "scale-out: update"]
    if scale:
        print("\nCPU seconds per process during the scale-out runs (all rounds):")
        for cell in scale:
            busiest = sorted(cell.cpu.items(), key=lambda item: -item[1])[:4]
            print(f"  {cell.variant:<24} over {cell.seconds:.1f}s: "
                  + ", ".join(f"{name} {used:.1f}" for name, used in busiest))
    return {"cells": [c.summary() for c in cells], "ratios": ratios, "breakdown_ms": parts,
            "cost_of_an_update": safety, "capacity": plans}


def safety_table(cells: list[Cell]) -> dict[str, Any]:
    """Fenced beside naive, per successful update: CPU of each process, MongoDB operations;
    and MongoDB operations per call of each operation at one client."""
    by = {(c.scenario, c.variant): c for c in cells}
    table: dict[str, Any] = {}
    for name, variant in STRATEGIES.items():
        cell = by.get((SAFETY, variant))
        if cell is None or not cell.ok:
            continue
        cpu = http_capacity.cpu_per_update(cell.summary())
        table[name] = {"updates_per_s": round(cell.ok_per_s, 1),
                       "cpu_ms_per_update": {tier: round(value * 1000, 3)
                                             for tier, value in cpu.items()},
                       "mongo_ops_per_update": round(sum(cell.mongo_ops.values()) / cell.ok, 2)}
    per_call = {c.scenario: round(sum(c.mongo_ops.values()) / c.calls, 2)
                for c in cells if c.concurrency == 1 and c.calls}
    print(f"\n{'per successful update, c=16':<30}" + "".join(f"{name:>12}" for name in table))
    rows = [("updates/s", [t["updates_per_s"] for t in table.values()])]
    rows += [(f"CPU ms, {tier}", [t["cpu_ms_per_update"][tier] for t in table.values()])
             for tier in http_capacity.TIERS]
    rows.append(("MongoDB operations", [t["mongo_ops_per_update"] for t in table.values()]))
    for label, values in rows:
        print(f"{label:<30}" + "".join(f"{value:>12}" for value in values))
    print("\nMongoDB operations per call, one client (serverStatus opcounters): "
          + ", ".join(f"{op} {n}" for op, n in per_call.items()))
    return {"per_update": table, "mongo_ops_per_call": per_call}


def plot(cells: list[Cell], path: Path) -> None:
    """One panel per scenario: throughput bars, p50 and p99 written on each."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = list(dict.fromkeys(c.scenario for c in cells))
    columns = 4
    rows = -(-len(scenarios) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(16, 4.2 * rows), squeeze=False)
    for ax, scenario in zip(axes.flat, scenarios):
        group = [c for c in cells if c.scenario == scenario]
        one_variant = len({c.variant for c in group}) == 1
        labels = [f"c={c.concurrency}" if one_variant else f"{c.variant}\nc={c.concurrency}"
                  for c in group]
        bars = ax.bar(range(len(group)), [c.ok_per_s for c in group], color="#4477aa")
        for bar, cell in zip(bars, group):
            ax.annotate(f"p50 {cell.pct(.5):.0f}\np99 {cell.pct(.99):.0f} ms",
                        (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=7)
        ax.set_title(scenario, fontsize=10)
        ax.set_xticks(range(len(group)))
        ax.set_xticklabels(labels, fontsize=7)
        ax.set_ylabel("successful calls / s")
        ax.margins(y=0.25)
    for ax in list(axes.flat)[len(scenarios):]:
        ax.axis("off")
    fig.suptitle("orders + invoices over HTTP, one run, 2-core machine (make bench-http)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=1.5, help="per cell and round")
    parser.add_argument("--json", default="docs/benchmarks/http.json")
    parser.add_argument("--plot", default="docs/benchmarks/http.png")
    args = parser.parse_args()
    AsyncHTTPClient.configure("tornado.curl_httpclient.CurlAsyncHTTPClient", max_clients=128)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as workdir:
        bench = Bench(args.seconds, Path(workdir))
        try:
            bench.start()
            asyncio.run(bench.run())
        finally:
            bench.stop()
    parts = asyncio.run(breakdown())
    results = report(bench.cells, parts)
    # Other work on the machine skews every figure: the load average says how much.
    results["machine"] = {"cpus": os.cpu_count(), "load_average_before": load_before,
                          "load_average_after": os.getloadavg()}
    print(f"\nload average (1, 5, 15 min) before {load_before}, after {os.getloadavg()}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2))
    plot(bench.cells, Path(args.plot))
    print(f"\nwrote {args.json} and {args.plot}")


if __name__ == "__main__":
    main()
