"""Lock micro benchmark: FencedLock next to redis-py's Lock and a bare SET NX PX lock.

    python -m benchmarks.lock [--seconds 0.5] [--rounds 9] [--json bench-results/lock.json]

Starts its own redis-server on a free loopback port and measures, in one run,
acquire+release cycles per second and p50/p99 cycle latency for each strategy
at 1 and 16 concurrent clients (asyncio tasks sharing one client), with no
contention (a key per client) and on one hot key. Strategies take turns in
every round (who goes first rotates), and each one's median round is kept, so
they share the machine's noise.
On the hot key a cycle's latency includes the time spent waiting for the lock.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from typing import Any, Awaitable, Callable

import redis.asyncio as aredis

from devstack import RedisServer
from fencing import FencedLock

RAW_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

Cycle = Callable[[int], Awaitable[None]]  # one acquire+release by client number n


def fenced(lock: FencedLock, resources: int, hot: bool) -> Cycle:
    async def cycle(n: int) -> None:
        names = [f"r{0 if hot else n}-{i}" for i in range(resources)]
        lease = await lock.acquire(*names, timeout=10)
        assert lease is not None
        await lock.release(lease)
    return cycle


def redis_py_lock(client: Any, hot: bool) -> Cycle:
    async def cycle(n: int) -> None:
        lock = client.lock(f"redis-py:{0 if hot else n}", timeout=10, blocking_timeout=10)
        assert await lock.acquire()
        await lock.release()
    return cycle


def raw_set_nx(client: Any, hot: bool) -> Cycle:
    release = client.register_script(RAW_RELEASE)

    async def cycle(n: int) -> None:
        key, value = f"raw:{0 if hot else n}", os.urandom(8).hex()
        while not await client.set(key, value, nx=True, px=10_000):
            await asyncio.sleep(0.001)  # the floor polls hard: 1 ms
        await release(keys=[key], args=[value])
    return cycle


async def measure(cycle: Cycle, clients: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds

    async def client(n: int) -> None:
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            await cycle(n)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(clients)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {"cycles_per_s": len(latencies) / elapsed,
            "p50_ms": 1000 * latencies[len(latencies) // 2],
            "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
            "cycles": len(latencies)}


async def run(url: str, seconds: float, rounds: int) -> list[dict[str, Any]]:
    client = aredis.Redis.from_url(url, socket_timeout=5.0, socket_connect_timeout=2.0)
    lock = FencedLock(client, ttl_ms=10_000, prefix="bench")
    results = []
    try:
        for hot in (False, True):
            for clients in (1, 16):
                strategies: dict[str, Cycle] = {
                    "FencedLock, 1 resource": fenced(lock, 1, hot),
                    "FencedLock, 2 resources": fenced(lock, 2, hot),
                    "redis-py Lock": redis_py_lock(client, hot),
                    "SET NX PX + Lua release": raw_set_nx(client, hot),
                }
                samples: dict[str, list[dict[str, float]]] = {name: [] for name in strategies}
                names = list(strategies)
                for round_number in range(rounds):
                    # Rotate who goes first, so no strategy always runs on a warmer machine.
                    shift = round_number % len(names)
                    for name in names[shift:] + names[:shift]:
                        samples[name].append(await measure(strategies[name], clients, seconds))
                for name, runs in samples.items():
                    middle = sorted(runs, key=lambda r: r["cycles_per_s"])[len(runs) // 2]
                    results.append({"strategy": name, "clients": clients,
                                    "contention": "hot key" if hot else "none", **middle})
    finally:
        await lock.close()
        await client.aclose()
    return results


def ratios(results: list[dict[str, Any]]) -> dict[str, float]:
    def rate(strategy: str, clients: int, contention: str) -> float:
        return next(r["cycles_per_s"] for r in results if r["strategy"] == strategy
                    and r["clients"] == clients and r["contention"] == contention)

    out = {}
    for clients in (1, 16):
        for contention in ("none", "hot key"):
            tag = f"{clients} clients, {contention}"
            one = rate("FencedLock, 1 resource", clients, contention)
            out[f"FencedLock-1 / redis-py Lock ({tag})"] = one / rate("redis-py Lock", clients,
                                                                      contention)
            out[f"FencedLock-1 / FencedLock-2 ({tag})"] = one / rate("FencedLock, 2 resources",
                                                                     clients, contention)
    return out


def print_table(results: list[dict[str, Any]], found: dict[str, float]) -> None:
    print(f"{'strategy':26} {'clients':>7} {'contention':>10} {'cycles/s':>10} "
          f"{'p50 ms':>8} {'p99 ms':>8}")
    for r in results:
        print(f"{r['strategy']:26} {r['clients']:>7} {r['contention']:>10} "
              f"{r['cycles_per_s']:>10.0f} {r['p50_ms']:>8.3f} {r['p99_ms']:>8.3f}")
    print()
    for name, value in found.items():
        print(f"{name:58} {value:6.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=0.5, help="per strategy per round")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--json", default="bench-results/lock.json")
    args = parser.parse_args()
    with RedisServer() as server:
        results = asyncio.run(run(server.url, args.seconds, args.rounds))
    found = ratios(results)
    print_table(results, found)
    os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
    with open(args.json, "w") as out:
        json.dump({"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                               "platform": platform.platform()},
                   "seconds": args.seconds, "rounds": args.rounds,
                   "results": results, "ratios": found}, out, indent=2)
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
