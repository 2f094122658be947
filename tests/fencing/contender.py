"""One OS process of the contention test: asyncio tasks taking overlapping locks.

Run as `python -m tests.fencing.contender TARGET PREFIX SECONDS TASKS SEED` (TARGET:
see tests.fencing.backends); prints one JSON line per hold: resources, token, start
and end on the system-wide monotonic clock (CLOCK_MONOTONIC is shared by every
process on the machine).
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time

from fencing import FencedLock
from tests.fencing.backends import client_for

RESOURCE_SETS = [("a",), ("b",), ("c",), ("a", "b"), ("b", "c"), ("a", "c"), ("a", "b", "c")]
MAX_HOLDS_PER_TASK = 400


async def contend(lock: FencedLock, seconds: float, rng: random.Random,
                  holds: list[dict[str, object]]) -> None:
    stop_at = time.monotonic() + seconds
    for _ in range(MAX_HOLDS_PER_TASK):
        if time.monotonic() >= stop_at:
            return
        resources = rng.choice(RESOURCE_SETS)
        lease = await lock.acquire(*resources, timeout=2.0)
        if lease is None:
            continue
        start = time.monotonic()
        await asyncio.sleep(rng.random() * 0.003)
        end = time.monotonic()
        holds.append({"resources": list(resources), "token": lease.token, "start": start,
                      "end": end, "held": lease.held})
        await lock.release(lease)


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
    for hold in asyncio.run(run(url, prefix, float(seconds), int(tasks), int(seed))):
        print(json.dumps(hold))


if __name__ == "__main__":
    main()
