"""Where the lock's tests run: one redis-server, or a Redis Cluster of three masters;
and which lock: the async one, or the sync one behind the same API.

A target is a redis:// URL, or "cluster:" and the URL of one node of a cluster;
`client_for` makes the matching redis.asyncio client, `sync_client_for` the
blocking one (also in contender processes). `InThreads` lets every async test
drive the sync lock: each call runs, blocking for real, in a thread of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Any, AsyncIterator, Awaitable, Callable, TypeVar

import redis
import redis.asyncio as aredis
import redis.cluster
from redis.asyncio.cluster import RedisCluster

from fencing import Lease, scripts
from fencing.core import SCRIPTS
from fencing.keys import KeySpace, LeaseKeys
from fencing.sync import FencedLock as SyncFencedLock

CLUSTER = "cluster:"
T = TypeVar("T")


def client_for(target: str, socket_timeout: float = 2.0,
               socket_connect_timeout: float = 1.0) -> Any:
    if target.startswith(CLUSTER):
        return RedisCluster.from_url(target[len(CLUSTER):], socket_timeout=socket_timeout,
                                     socket_connect_timeout=socket_connect_timeout)
    return aredis.Redis.from_url(target, socket_timeout=socket_timeout,
                                 socket_connect_timeout=socket_connect_timeout)


def sync_client_for(target: str, socket_timeout: float = 2.0,
                    socket_connect_timeout: float = 1.0) -> Any:
    if target.startswith(CLUSTER):
        return redis.cluster.RedisCluster.from_url(
            target[len(CLUSTER):], socket_timeout=socket_timeout,
            socket_connect_timeout=socket_connect_timeout)
    return redis.Redis.from_url(target, socket_timeout=socket_timeout,
                                socket_connect_timeout=socket_connect_timeout)


class InThreads:
    """The sync lock with the async lock's methods: each call blocks a worker thread.

    `redis` is an async client to the same Redis, for the tests' own checks;
    the lock's settings (`prefix`, `ttl_ms`, `max_poll`, ...) are the sync lock's.
    """

    def __init__(self, lock: SyncFencedLock, inspect: Any) -> None:
        self.sync = lock
        self.redis = inspect
        self._threads = ThreadPoolExecutor(max_workers=48, thread_name_prefix="sync-lock")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sync, name)

    async def _in_thread(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(
            self._threads, functools.partial(call, *args, **kwargs))

    async def acquire(self, *resources: str, timeout: float | None = None,
                      floor: int | None = None) -> Lease | None:
        return await self._in_thread(self.sync.acquire, *resources, timeout=timeout, floor=floor)

    async def release(self, lease: Lease) -> bool:
        return await self._in_thread(self.sync.release, lease)

    async def extend(self, lease: Lease) -> bool:
        return await self._in_thread(self.sync.extend, lease)

    async def holder(self, resource: str) -> int | None:
        return await self._in_thread(self.sync.holder, resource)

    @contextlib.asynccontextmanager
    async def hold(self, *resources: str, **options: Any) -> AsyncIterator[Lease]:
        block = self.sync.hold(*resources, **options)
        lease = await self._in_thread(block.__enter__)
        try:
            yield lease
        except BaseException as exc:
            if not await self._in_thread(block.__exit__, type(exc), exc, exc.__traceback__):
                raise
        else:
            await self._in_thread(block.__exit__, None, None, None)

    async def close(self) -> None:
        self.sync.close()
        self._threads.shutdown(wait=True)


class FakeClock:
    """The lock's clock seam: time moves when the test says, and `step` seconds at each
    read (so a deadline arrives after a known number of tries, however fast the machine)."""

    def __init__(self, step: float = 0.0) -> None:
        self.now = 1000.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def queued(lock: Any, resource: str, count: int = 1) -> None:
    """Returns once `count` waiters are in line for `resource` (bounded)."""
    queue = KeySpace.of(lock.prefix, (resource,)).queue(resource)
    for _ in range(1000):
        if await lock.redis.zcount(queue, "-inf", "(inf") >= count:  # not the sentinel
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"fewer than {count} waiters queued for {resource}")


# What a hand-over costs when nobody polls: the waiter's ACQUIRE with the fast path's keys
# (busy), its ACQUIRE with every key (joins the line); the holder's RELEASE with the fast
# path's keys (it took the lock on the fast path: someone waits now), its RELEASE with
# every key, that one's NOTIFY; the BLPOP that returned the lease. A poll adds two.
HANDED_OVER_CALLS = 6


async def wait_for_a_release(lock: Any, resource: str) -> tuple[Lease, Lease, int]:
    """A holder, and a waiter that gets `resource` when the holder releases it: the holder's
    lease, the waiter's, and how many script and BLPOP calls Redis saw meanwhile."""
    await warm_scripts(lock.redis)  # Redis learns the scripts (a NOSCRIPT is a call too)
    holder = await lock.acquire(resource)
    assert holder is not None
    before = await command_calls(lock.redis, "evalsha", "eval", "blpop")

    async def release_later() -> None:
        await queued(lock, resource)
        await lock.release(holder)

    releaser = asyncio.create_task(release_later())
    lease = await lock.acquire(resource, timeout=20)
    await releaser
    assert lease is not None
    return holder, lease, await command_calls(lock.redis, "evalsha", "eval", "blpop") - before


def acquire_script(lock: Any) -> Callable[..., Awaitable[Any]]:
    """ACQUIRE as the lock sends it, for a lease id the test picks (a waiter the test drives
    step by step): `await acquire(keys, lease_id, liveness_ms, ttl_ms=5_000)`."""
    script = lock.redis.register_script(scripts.ACQUIRE)

    async def acquire(keys: LeaseKeys, lease_id: str, liveness_ms: int,
                      ttl_ms: int = 5_000) -> Any:
        return await script(keys=keys.with_wake(lease_id),
                            args=[ttl_ms, 0, lease_id, liveness_ms, *keys.layout])
    return acquire


async def warm_scripts(client: Any) -> None:
    """Loads the lock's scripts into Redis (every master of a cluster)."""
    for source in SCRIPTS.values():
        await client.script_load(source)


async def command_calls(client: Any, *commands: str) -> int:
    """How many times Redis ran these commands, summed over every node."""
    if isinstance(client, RedisCluster):
        per_node = await client.info("commandstats", target_nodes=RedisCluster.ALL_NODES)
        stats = list(per_node.values())
    else:
        stats = [await client.info("commandstats")]
    return sum(int(node.get(f"cmdstat_{name}", {}).get("calls", 0))
               for node in stats for name in commands)


async def keys(client: Any, pattern: str) -> set[str]:
    """Every key matching `pattern`, on every node."""
    if isinstance(client, RedisCluster):
        found = await client.keys(pattern, target_nodes=RedisCluster.ALL_NODES)
    else:
        found = await client.keys(pattern)
    return {key.decode() if isinstance(key, bytes) else key for key in found}
