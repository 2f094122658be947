"""The locks `benchmarks.lock` puts side by side, each behind the same two calls.

A contender takes a base key name and a timeout (None: one try; T: wait up to
T seconds) and returns a handle, or None if it did not get the lock; release
takes that handle. Async contenders run on one `redis.asyncio.Redis`, sync
ones on one `redis.Redis` shared by threads. Each uses its own key names, so
rows never see each other's keys. A peer library that is not installed (the
`bench` extra) gives a row marked "not available" instead of failing the run.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from dataclasses import dataclass
from typing import Any, Callable

from fencing import FencedLock

HOLD_TTL_S = 10  # every lease outlives a measurement: expiry never decides a row

# The floors: what any Redis lock pays at least, two round trips per cycle.
LUA_ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('INCR', KEYS[2])
end
return 0
"""
COMPARE_AND_DELETE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
FLOOR_POLL_S = 0.001  # a floor that has to wait polls hard


@dataclass
class Contender:
    name: str
    flavour: str  # "async" or "sync"
    acquire: Callable[[str, float | None], Any]  # (key, timeout) -> handle | None
    release: Callable[[Any], Any]
    close: Callable[[], Any] | None = None
    note: str = ""


@dataclass
class Unavailable:
    name: str
    flavour: str
    reason: str


Factory = Callable[[Any, Any], Contender]  # (async client, sync client) -> Contender


def _names(key: str, resources: int) -> tuple[str, ...]:
    return tuple(f"{key}-{i}" for i in range(resources))


def fenced_async(resources: int) -> Factory:
    def make(aclient: Any, sclient: Any) -> Contender:
        lock = FencedLock(aclient, ttl_ms=HOLD_TTL_S * 1000, prefix=f"bench-fa{resources}")

        async def acquire(key: str, timeout: float | None) -> Any:
            return await lock.acquire(*_names(key, resources), timeout=timeout)

        async def release(lease: Any) -> None:
            await lock.release(lease)
        return Contender(f"FencedLock async, {resources} res", "async", acquire, release,
                         lock.close)
    return make


def fenced_sync(resources: int) -> Factory:
    def make(aclient: Any, sclient: Any) -> Contender:
        # Until the sync twin exists here mypy cannot find it; then the ignore is unused.
        from fencing.sync import (  # type: ignore[import-not-found,import-untyped,unused-ignore]
            FencedLock as SyncFencedLock)
        lock = SyncFencedLock(sclient, ttl_ms=HOLD_TTL_S * 1000, prefix=f"bench-fs{resources}")

        def acquire(key: str, timeout: float | None) -> Any:
            return lock.acquire(*_names(key, resources), timeout=timeout)
        return Contender(f"FencedLock sync, {resources} res", "sync", acquire, lock.release,
                         getattr(lock, "close", None))
    return make


def redis_py_async(aclient: Any, sclient: Any) -> Contender:
    async def acquire(key: str, timeout: float | None) -> Any:
        lock = aclient.lock(f"redis-py:{key}", timeout=HOLD_TTL_S,
                            blocking=timeout is not None, blocking_timeout=timeout)
        return lock if await lock.acquire() else None

    async def release(lock: Any) -> None:
        await lock.release()
    return Contender("redis-py asyncio Lock", "async", acquire, release,
                     note="waiters poll every 0.1 s")


def redis_py_sync(aclient: Any, sclient: Any) -> Contender:
    def acquire(key: str, timeout: float | None) -> Any:
        lock = sclient.lock(f"redis-py-sync:{key}", timeout=HOLD_TTL_S,
                            blocking=timeout is not None, blocking_timeout=timeout)
        return lock if lock.acquire() else None
    return Contender("redis-py sync Lock", "sync", acquire, lambda lock: lock.release(),
                     note="waiters poll every 0.1 s")


def python_redis_lock(aclient: Any, sclient: Any) -> Contender:
    import redis_lock  # type: ignore[import-untyped]

    # It logs a warning per failed try: on a hot key that floods stderr and
    # measures the log handler rather than the lock.
    logging.getLogger("redis_lock").setLevel(logging.ERROR)

    def acquire(key: str, timeout: float | None) -> Any:
        lock = redis_lock.Lock(sclient, f"prl:{key}", expire=HOLD_TTL_S)
        if timeout is None:
            return lock if lock.acquire(blocking=False) else None
        # It takes whole seconds only (0 would mean "wait forever").
        return lock if lock.acquire(timeout=max(1, math.ceil(timeout))) else None
    return Contender("python-redis-lock", "sync", acquire, lambda lock: lock.release(),
                     note="waiters BLPOP a signal list")


def pottery_sync(aclient: Any, sclient: Any) -> Contender:
    from pottery import Redlock

    def acquire(key: str, timeout: float | None) -> Any:
        lock = Redlock(key=f"pottery:{key}", masters={sclient}, auto_release_time=HOLD_TTL_S)
        got = lock.acquire(blocking=False) if timeout is None else lock.acquire(timeout=timeout)
        return lock if got else None
    return Contender("pottery Redlock, 1 master", "sync", acquire, lambda lock: lock.release(),
                     note="waiters retry after 0-0.2 s")


def pottery_async(aclient: Any, sclient: Any) -> Contender:
    from pottery import AIORedlock

    async def acquire(key: str, timeout: float | None) -> Any:
        lock = AIORedlock(key=f"pottery-aio:{key}", masters={aclient},
                          auto_release_time=HOLD_TTL_S)
        got = await (lock.acquire(blocking=False) if timeout is None
                     else lock.acquire(timeout=timeout))
        return lock if got else None

    async def release(lock: Any) -> None:
        await lock.release()
    return Contender("pottery AIORedlock, 1 master", "async", acquire, release,
                     note="waiters retry after 0-0.2 s")


def floor_async(lua: bool) -> Factory:
    def make(aclient: Any, sclient: Any) -> Contender:
        tag = "floor-lua" if lua else "floor-set"
        take_script = aclient.register_script(LUA_ACQUIRE)
        release_script = aclient.register_script(COMPARE_AND_DELETE)

        async def once(lock_key: str, value: str) -> bool:
            if lua:
                return bool(await take_script(keys=[lock_key, f"{tag}:counter"],
                                              args=[value, HOLD_TTL_S * 1000]))
            return bool(await aclient.set(lock_key, value, nx=True, px=HOLD_TTL_S * 1000))

        async def acquire(key: str, timeout: float | None) -> Any:
            lock_key, value = f"{tag}:{key}", os.urandom(8).hex()
            deadline = time.monotonic() + (timeout or 0.0)
            while not await once(lock_key, value):
                if time.monotonic() >= deadline:
                    return None
                await asyncio.sleep(FLOOR_POLL_S)
            return lock_key, value

        async def release(held: tuple[str, str]) -> None:
            await release_script(keys=[held[0]], args=[held[1]])
        return Contender(_floor_name(lua, "async"), "async", acquire, release,
                         note="waiters poll every 1 ms")
    return make


def floor_sync(lua: bool) -> Factory:
    def make(aclient: Any, sclient: Any) -> Contender:
        tag = "floor-lua-sync" if lua else "floor-set-sync"
        take_script = sclient.register_script(LUA_ACQUIRE)
        release_script = sclient.register_script(COMPARE_AND_DELETE)

        def once(lock_key: str, value: str) -> bool:
            if lua:
                return bool(take_script(keys=[lock_key, f"{tag}:counter"],
                                        args=[value, HOLD_TTL_S * 1000]))
            return bool(sclient.set(lock_key, value, nx=True, px=HOLD_TTL_S * 1000))

        def acquire(key: str, timeout: float | None) -> Any:
            lock_key, value = f"{tag}:{key}", os.urandom(8).hex()
            deadline = time.monotonic() + (timeout or 0.0)
            while not once(lock_key, value):
                if time.monotonic() >= deadline:
                    return None
                time.sleep(FLOOR_POLL_S)
            return lock_key, value

        def release(held: tuple[str, str]) -> None:
            release_script(keys=[held[0]], args=[held[1]])
        return Contender(_floor_name(lua, "sync"), "sync", acquire, release,
                         note="waiters poll every 1 ms")
    return make


def _floor_name(lua: bool, flavour: str) -> str:
    return f"floor {flavour}: " + ("Lua SET NX + INCR" if lua else "SET NX PX + CAD")


REDIS_PY_ASYNC = "redis-py asyncio Lock"
FLOOR_ASYNC = _floor_name(True, "async")
FLOOR_SYNC = _floor_name(True, "sync")

# (row name, flavour, factory): the name is known even when the factory cannot run.
CONTENDERS: list[tuple[str, str, Factory]] = [
    ("FencedLock async, 1 res", "async", fenced_async(1)),
    ("FencedLock async, 2 res", "async", fenced_async(2)),
    ("FencedLock sync, 1 res", "sync", fenced_sync(1)),
    ("FencedLock sync, 2 res", "sync", fenced_sync(2)),
    (REDIS_PY_ASYNC, "async", redis_py_async),
    ("redis-py sync Lock", "sync", redis_py_sync),
    ("python-redis-lock", "sync", python_redis_lock),
    ("pottery AIORedlock, 1 master", "async", pottery_async),
    ("pottery Redlock, 1 master", "sync", pottery_sync),
    (FLOOR_ASYNC, "async", floor_async(True)),
    (_floor_name(False, "async"), "async", floor_async(False)),
    (FLOOR_SYNC, "sync", floor_sync(True)),
    (_floor_name(False, "sync"), "sync", floor_sync(False)),
]


def build(aclient: Any, sclient: Any, only: set[str] | None = None
          ) -> list[Contender | Unavailable]:
    """Every contender (or just those named in `only`), or why it cannot run here."""
    built: list[Contender | Unavailable] = []
    for name, flavour, factory in CONTENDERS:
        if only is not None and name not in only:
            continue
        try:
            built.append(factory(aclient, sclient))
        except ImportError as exc:
            built.append(Unavailable(name, flavour, f"not available: {exc}"))
    return built
