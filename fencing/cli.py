"""`python -m fencing`: take a real lease by hand, or look at one.

::

    $ python -m fencing --redis-url redis://127.0.0.1:6379/0 hold invoice:7 --ttl-ms 60000
    41                                  <- the token, alone on the first line
    holding invoice:7 for 60000 ms (SIGTERM or Ctrl-C releases it)
    released

    $ python -m fencing inspect invoice:7
    resource: invoice:7
    token: 41                           <- "none" when nobody holds it
    remaining_ms: 57311
    waiting: 0

`hold` keeps the lease until `--ttl-ms` have passed (the lease's own length, so
it is never renewed) or until SIGTERM or Ctrl-C, then releases it. It is how a
person gets a token a store will accept, to send with curl or Postman. Exit
status: 0 once released, 1 if the resources are held by someone else (after
`--wait` seconds, if given, or a signal during the wait) or Redis cannot be
reached, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from typing import Any, Sequence

import redis.asyncio as aredis
from redis.exceptions import RedisError

from fencing import __version__
from fencing.errors import LockError
from fencing.keys import KeySpace
from fencing.lock import FencedLock

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
# Every call to Redis from the command line gives up after this long.
REDIS_TIMEOUT_S = 2.0


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fencing",
        description="Take a lease with a fencing token by hand, or see who holds one.")
    parser.add_argument("--version", action="version", version=f"redis-fencing {__version__}")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", DEFAULT_REDIS_URL),
                        help="the Redis the lock lives in (default: $REDIS_URL, else %(default)s)")
    parser.add_argument("--prefix", default="fencing",
                        help="the lock's key prefix, as the lock's users set it "
                             "(default: %(default)s)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    hold = commands.add_parser(
        "hold", help="take a lease, print its token, hold it, release it",
        description="Take a lease on every RESOURCE (all or none), print its token alone "
                    "on the first line, hold it until MS have passed or SIGTERM or Ctrl-C, "
                    "then release it.")
    hold.add_argument("resources", nargs="+", metavar="RESOURCE")
    hold.add_argument("--ttl-ms", type=positive_int, default=60_000, metavar="MS",
                      help="how long to hold the lease (its ttl; default: %(default)s)")
    hold.add_argument("--wait", type=non_negative_float, default=None, metavar="SECONDS",
                      help="wait up to this long in line if it is held (default: one try)")
    hold.add_argument("--floor", type=positive_int, default=None, metavar="N",
                      help="a token greater than N even if Redis lost its counter")

    inspect = commands.add_parser(
        "inspect", help="who holds a resource, for how long, and how many wait",
        description="Print the token holding RESOURCE (or none), the ms its lease has "
                    "left, and how many wait in line for it.")
    inspect.add_argument("resource", metavar="RESOURCE")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return asyncio.run(hold(args) if args.command == "hold" else inspect(args))
    except ValueError as exc:
        # The lock checks its arguments (prefix, resource names, hash tags) before
        # it calls Redis: a bad one is a usage error, and nothing was taken.
        parser.error(str(exc))
    except (LockError, RedisError, OSError) as exc:
        print(f"python -m fencing: {exc}", file=sys.stderr)
        return 1


def connect(url: str) -> Any:
    return aredis.Redis.from_url(url, socket_timeout=REDIS_TIMEOUT_S,
                                 socket_connect_timeout=REDIS_TIMEOUT_S)


async def hold(args: argparse.Namespace) -> int:
    client = connect(args.redis_url)
    try:
        lock = FencedLock(client, ttl_ms=args.ttl_ms, prefix=args.prefix)
    except ValueError:
        await client.aclose()
        raise
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        # A signal while waiting in line ends the wait (the lock leaves the queues).
        acquiring = asyncio.ensure_future(
            lock.acquire(*args.resources, timeout=args.wait, floor=args.floor))
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({acquiring, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not acquiring.done():
            acquiring.cancel()
            await asyncio.gather(acquiring, return_exceptions=True)
            print("python -m fencing: stopped while waiting; nothing taken", file=sys.stderr)
            return 1
        lease = acquiring.result()
        if lease is None:
            holders = [f"{name} by token {await lock.holder(name)}" for name in args.resources]
            print(f"python -m fencing: busy: held {', '.join(holders)}", file=sys.stderr)
            return 1
        print(lease.token, flush=True)
        print(f"holding {' '.join(lease.resources)} for {args.ttl_ms} ms "
              "(SIGTERM or Ctrl-C releases it)", flush=True)
        try:
            await asyncio.wait_for(stop.wait(), lease.remaining())
        except TimeoutError:
            pass
        released = await lock.release(lease)
        print("released" if released else "the lease had ended already", flush=True)
        return 0
    finally:
        await lock.close()
        await client.aclose()


async def inspect(args: argparse.Namespace) -> int:
    space = KeySpace.of(args.prefix, (args.resource,))
    client = connect(args.redis_url)
    lock = FencedLock(client, prefix=args.prefix)
    try:
        token = await lock.holder(args.resource)
        remaining_ms = await client.pttl(space.lock(args.resource))
        waiting = await client.zcount(space.queue(args.resource), "-inf", "(inf")  # no sentinel
    finally:
        await client.aclose()
    print(f"resource: {args.resource}")
    print(f"token: {'none' if token is None else token}")
    print(f"remaining_ms: {max(remaining_ms, 0) if token is not None else 0}")
    print(f"waiting: {waiting}")
    return 0
