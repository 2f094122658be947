"""The one place that knows how the lock talks to Redis: which calls each operation makes.

The explorer never sends a command of its own devising. An acquire is the
lock's own sans-I/O loop (`LockCore.acquiring`), each Redis call it yields
becoming one `Call` the explorer may send, hold back or drop; release, extend
and leave are the calls the lock makes with the scripts it registered. Every
operation is a generator of `Call`s that receives each call's reply and
returns what the lock would return, so an operation that comes to need a
second call (a notification after RELEASE, say) changes only its generator here.

A waiter's BLPOP is not sent as a blocking call: `execute` pops without
blocking, and the explorer keeps the client blocked until something arrives or
the client's clock passes the BLPOP's timeout (see `machine`). The key names
(`lock_key`, `allowed_leftovers`) follow `fencing.keys`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Generator

from fencing import scripts
from fencing.core import WAIT, Step
from fencing.keys import KeySpace, LeaseKeys
from fencing.lease import Lease
from fencing.sync import FencedLock

PREFIX = "sx"
# Resources share one explicit tag, so that any of them may be locked together under
# every key scheme (untagged resources may land in different slots).
RESOURCES = ("{r}a", "{r}b")


@dataclass(frozen=True)
class ClientSettings:
    """A client's lock: its lease ttl and how long a waiter sleeps before polling again."""

    ttl_ms: int
    max_poll: float


# Mixed on purpose: short leases beside long ones, slow pollers beside fast ones.
CLIENTS = (ClientSettings(1000, 0.1), ClientSettings(3000, 2.0), ClientSettings(3000, 0.5),
           ClientSettings(1000, 2.0))


@dataclass(frozen=True)
class Call:
    """One Redis call an operation asks for: a script run, or a pop from a wake list."""

    name: str                    # ACQUIRE, RELEASE, EXTEND, LEAVE or WAIT
    keys: tuple[str, ...]
    args: tuple[Any, ...] = ()
    script: Any = None           # the redis-py Script the lock registered
    wait_s: float = 0.0          # WAIT: the BLPOP's timeout

    def __str__(self) -> str:
        if self.name == "WAIT":
            return f"WAIT {self.keys[0].rsplit(':', 1)[-1]} {self.wait_s:g}s"
        return f"{self.name} {' '.join(map(str, self.args))}"


Operation = Generator[Call, Any, Any]


def make_lock(redis: Any, settings: ClientSettings, clock: Callable[[], float]) -> FencedLock:
    return FencedLock(redis, ttl_ms=settings.ttl_ms, prefix=PREFIX, clock=clock,
                      max_poll=settings.max_poll)


def lease_keys(lock: FencedLock, resources: tuple[str, ...]) -> LeaseKeys:
    return lock._core.check_acquire(resources, None, None)


def acquiring(lock: FencedLock, resources: tuple[str, ...], lease_id: str,
              timeout: float | None, floor: int) -> Operation:
    """`FencedLock.acquire`, call by call: the core's own loop."""
    steps = lock._core.acquiring(lease_keys(lock, resources), lease_id, timeout, floor)
    return (yield from _calls(lock, steps))


def releasing(lock: FencedLock, lease: Lease) -> Operation:
    """`FencedLock.release`: True if it still held the lease."""
    lease.mark_released()
    core = lock._core
    if hasattr(core, "releasing"):  # the core's own steps (RELEASE, then any NOTIFY)
        return (yield from _calls(lock, core.releasing(lease)))
    keys = lease_keys(lock, lease.resources)
    done = yield Call("RELEASE", keys.acquire, (lease.lease_id,), _script(lock, "release"))
    return core.released(lease, done)


def extending(lock: FencedLock, lease: Lease) -> Operation:
    """`FencedLock.extend`: True if renewed; marks the lease lost otherwise."""
    started = lock.clock()
    keys = lease_keys(lock, lease.resources)
    done = yield Call("EXTEND", keys.locks, (lease.lease_id, lock.ttl_ms), lock._extend)
    return lock._core.extended(lease, done, started)


def leaving(lock: FencedLock, resources: tuple[str, ...], lease_id: str) -> Operation:
    """What a cancelled acquire leaves behind it: the lock's clean-up (LEAVE)."""
    keys = lease_keys(lock, resources)
    core = lock._core
    if hasattr(core, "leaving"):  # the core's own steps (LEAVE, then any NOTIFY)
        yield from _calls(lock, core.leaving(keys, lease_id))
        return None
    yield Call("LEAVE", keys.acquire, (lease_id,), _script(lock, "leave"))
    return None


def _calls(lock: FencedLock, steps: Generator[Step, Any, Any]) -> Operation:
    """A core generator's steps as `Call`s; returns what the generator returns."""
    step = next(steps)
    while True:
        kind, keys, args = step
        if kind == WAIT:
            wake = (keys,) if isinstance(keys, str) else tuple(keys)
            call = Call("WAIT", wake, wait_s=float(args))
        else:
            call = Call(str(kind).upper(), tuple(keys), tuple(args), _script(lock, kind))
        reply = yield call
        try:
            step = steps.send(reply)
        except StopIteration as done:
            return done.value


def _script(lock: FencedLock, kind: str) -> Any:
    """The redis-py Script the lock registered for a step of this kind."""
    registered = getattr(lock, "_scripts", None)  # one per kind of step, when the lock has it
    return registered[kind] if registered is not None else getattr(lock, f"_{kind}")


def execute(redis: Any, call: Call) -> tuple[bool, Any]:
    """Send one call; (False, None) for a WAIT that found nothing (the client stays blocked)."""
    if call.name != "WAIT":
        return True, call.script(keys=list(call.keys), args=list(call.args), client=redis)
    for key in call.keys:
        value = redis.lpop(key)
        if value is not None:
            return True, (key.encode(), value)  # what BLPOP returns
    return False, None


def wait_ms(call: Call) -> int:
    """How long a WAIT blocks before it returns nothing, in whole milliseconds."""
    return max(1, math.ceil(call.wait_s * 1000))


def acquire_request(call: Call) -> tuple[str, int, int] | None:
    """For an ACQUIRE: (lease id, floor, liveness ms); > 0 joins or stays in line,
    0 one try, < 0 leaves."""
    if call.name != "ACQUIRE":
        return None
    _ttl, floor, lease_id, live = call.args[:4]  # then, in some versions, the KEYS layout
    if not _joins_line(call):
        live = 0  # the fast part of the layout alone: the script never joins the line
    return str(lease_id), int(floor), int(live)


def _joins_line(call: Call) -> bool:
    """False for an ACQUIRE that carries only the keys of its fast path (no wake key), in
    the versions that make that call first (their LeaseKeys has `fast`)."""
    if "fast" not in getattr(LeaseKeys, "__slots__", ()):
        return True
    return any(":wake:" in str(key) for key in call.keys)


def acquired_token(reply: Any) -> int | None:
    """ACQUIRE's reply: the token, or None when busy."""
    return scripts.acquired_token(reply)


def leaving_id(call: Call) -> str | None:
    """The lease id a LEAVE takes out of every line."""
    return str(call.args[0]) if call.name == "LEAVE" else None


def lock_key(lock: FencedLock, resource: str) -> str:
    return lease_keys(lock, (resource,)).locks[0]


def holder_of(value: bytes | None) -> tuple[int, str] | None:
    """A lock key's value, "<token>:<lease id>", as (token, lease id)."""
    if value is None:
        return None
    token, lease_id = value.decode().split(":", 1)
    return int(token), lease_id


def allowed_leftovers(resources: tuple[str, ...]) -> set[str]:
    """The keys the key scheme (`fencing.keys`) lets outlive every client and every TTL:
    a counter per tag where the scheme keeps one for good; none where every key expires."""
    counters = getattr(KeySpace, "counters", None)
    if counters is None:
        return set()
    return {KeySpace.of(PREFIX, (name,)).counters for name in resources}
