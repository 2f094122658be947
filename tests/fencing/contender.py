"""One OS process of the contention test: asyncio tasks (or, with the sync lock,
threads) taking overlapping locks.

Run as `python -m tests.fencing.contender TARGET PREFIX SECONDS TASKS SEED [FLAVOR]`
(TARGET: see tests.fencing.backends; FLAVOR: async, the default, or sync); prints
one JSON line per hold: resources, token, start and end on the system-wide
monotonic clock (CLOCK_MONOTONIC is shared by every process on the machine).
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import threading
import time
from typing import Iterator

from fencing import FencedLock, Lease
from fencing.sync import FencedLock as SyncFencedLock
from tests.fencing.backends import client_for, sync_client_for

# One explicit tag: resources locked together share one on a cluster.
A, B, C = "{c}a", "{c}b", "{c}c"
RESOURCE_SETS = [(A,), (B,), (C,), (A, B), (B, C), (A, C), (A, B, C)]
MAX_HOLDS_PER_TASK = 400


def turns(seconds: float, rng: random.Random) -> Iterator[tuple[tuple[str, ...], float]]:
    """The resource sets one task takes, and how long it holds each (bounded in count and time)."""
    stop_at = time.monotonic() + seconds
    for _ in range(MAX_HOLDS_PER_TASK):
        if time.monotonic() >= stop_at:
            return
        yield rng.choice(RESOURCE_SETS), rng.random() * 0.003


def record(holds: list[dict[str, object]], lease: Lease, start: float) -> None:
    holds.append({"resources": list(lease.resources), "token": lease.token, "start": start,
                  "end": time.monotonic(), "held": lease.held})


async def contend(lock: FencedLock, seconds: float, rng: random.Random,
                  holds: list[dict[str, object]]) -> None:
    for resources, hold_for in turns(seconds, rng):
        lease = await lock.acquire(*resources, timeout=2.0)
        if lease is not None:
            start = time.monotonic()
            await asyncio.sleep(hold_for)
            record(holds, lease, start)
            await lock.release(lease)


def contend_in_thread(lock: SyncFencedLock, seconds: float, rng: random.Random,
                      holds: list[dict[str, object]]) -> None:
    for resources, hold_for in turns(seconds, rng):
        lease = lock.acquire(*resources, timeout=2.0)
        if lease is not None:
            start = time.monotonic()
            time.sleep(hold_for)
            record(holds, lease, start)
            lock.release(lease)


def run_sync(url: str, prefix: str, seconds: float, threads: int,
             seed: int) -> list[dict[str, object]]:
    client = sync_client_for(url, socket_timeout=3.0)
    lock = SyncFencedLock(client, ttl_ms=5_000, prefix=prefix)
    holds: list[dict[str, object]] = []
    workers = [threading.Thread(target=contend_in_thread,
                                args=(lock, seconds, random.Random(seed * 100 + n), holds))
               for n in range(threads)]
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        client.close()
    return holds


async def run(url: str, prefix: str, seconds: float, tasks: int,
              seed: int) -> list[dict[str, object]]:
    client = client_for(url, socket_timeout=3.0)
    lock = FencedLock(client, ttl_ms=5_000, prefix=prefix)
    holds: list[dict[str, object]] = []
    try:
        await asyncio.gather(*(contend(lock, seconds, random.Random(seed * 100 + n), holds)
                               for n in range(tasks)))
    finally:
        await lock.close()
        await client.aclose()
    return holds


def main() -> None:
    url, prefix, seconds, tasks, seed = sys.argv[1:6]
    flavor = sys.argv[6] if len(sys.argv) > 6 else "async"
    if flavor == "sync":
        holds = run_sync(url, prefix, float(seconds), int(tasks), int(seed))
    else:
        holds = asyncio.run(run(url, prefix, float(seconds), int(tasks), int(seed)))
    for hold in holds:
        print(json.dumps(hold))


if __name__ == "__main__":
    main()
