"""What one lock cycle costs redis-server, in instructions: `python -m benchmarks.lock_server_cost`.

Rates on a shared 2-core machine move by tens of percent from run to run; the
instructions redis-server executes for a cycle do not: valgrind's callgrind
counts them, and the count is the same for the same binary and the same calls,
whatever else the machine runs. For each lock, redis-server runs under
callgrind twice, serving LOW and then HIGH cycles of one client (a new key
each cycle, acquire then release, as `make bench-lock`'s first scenario); the
difference over HIGH - LOW is one cycle's cost, start-up and shut-down
cancelling out. Sync clients make the calls: an async client sends the same.

That is the server's half of a 1-client cycle, where client and server run in
turn; the client's half is the benchmark's `cli us` column. `make bench-lock`
prints this table after its own (valgrind is needed; without it, a line says so).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import tempfile
from typing import Any

import redis

from benchmarks import lock_contenders
from benchmarks.lock_contenders import Contender
from devstack import RedisServer

LOCKS = ("FencedLock sync, 1 res", "FencedLock sync, 2 res", "redis-py sync Lock",
         "floor sync: Lua SET NX + INCR", "floor sync: SET NX PX + CAD")
LOW, HIGH = 200, 1200


class CountedRedis(RedisServer):
    """redis-server under callgrind, which writes its count to `out` when the server exits."""

    start_timeout = 60.0  # valgrind starts slowly

    def __init__(self, out: str) -> None:
        super().__init__()
        self.out = out

    def command(self) -> list[str]:
        return ["valgrind", "--tool=callgrind", f"--callgrind-out-file={self.out}",
                *super().command()]


def instructions(lock: str, cycles: int) -> int:
    """Every instruction redis-server ran from its start to its shutdown, having served
    `cycles` cycles of `lock` (and the scripts' loading) to one client."""
    with tempfile.TemporaryDirectory() as workdir:
        out = os.path.join(workdir, "callgrind.out")
        server = CountedRedis(out)
        with server:
            with redis.Redis.from_url(server.url, socket_timeout=60) as client:
                contender = _contender(lock, client)
                for n in range(cycles):
                    handle = contender.acquire(f"cost-{n}", 10)
                    if handle is None:
                        raise RuntimeError(f"{lock}: a lock on a fresh key was refused")
                    contender.release(handle)
            server.stop(timeout=60)  # SIGTERM: Redis shuts down, callgrind writes its count
        with open(out) as data:
            found = re.search(r"^(?:summary|totals): (\d+)", data.read(), re.MULTILINE)
        if found is None:
            raise RuntimeError("callgrind wrote no summary")
        return int(found.group(1))


def _contender(lock: str, client: redis.Redis) -> Contender:
    (built,) = lock_contenders.build(None, client, {lock})
    if not isinstance(built, Contender):
        raise RuntimeError(f"{lock}: {built.reason}")
    return built


def per_cycle(lock: str, low: int = LOW, high: int = HIGH) -> float:
    return (instructions(lock, high) - instructions(lock, low)) / (high - low)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="also write the figures there")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("redis-server's instructions per cycle: valgrind not found, not measured")
        return
    costs: dict[str, Any] = {lock: per_cycle(lock) for lock in LOCKS}
    reference = costs["redis-py sync Lock"]
    print("redis-server instructions per cycle (callgrind; 1 client, a new key each cycle):")
    for lock, cost in costs.items():
        print(f"  {lock:32} {cost:9,.0f}   {cost / reference:5.2f}x redis-py's Lock")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"cycles": [LOW, HIGH], "instructions_per_cycle": costs}, out, indent=2)
            out.write("\n")


if __name__ == "__main__":
    main()
