"""`FencedLock`: a Redis lock on one or more resources that issues fencing tokens.

A lease covers every resource asked for, or none; its token comes from a
counter that only grows, drawn in the same atomic step. Stores accept a write
only if they have accepted no higher token for that document, which makes a
holder that outlived its lease harmless::

    A: acquire -> token 33 ....... paused past its lease ....... write(33) -> refused
    B:                  acquire -> token 34 -> write(34) -> accepted

Waiting is fair and quiet: a waiter joins a FIFO queue per resource (one
global ticket order per key space, so several resources cannot deadlock),
sleeps on its own wake list (BLPOP) and is woken by the release that lets it
in; a capped back-off, and the remaining lease time of the lock in its way,
cover holders that died without releasing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from typing import Any, AsyncIterator, Awaitable, Callable, TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from fencing import scripts
from fencing.errors import LockBusy, LockError, LockUnavailable
from fencing.keys import LeaseKeys
from fencing.lease import Lease

log = logging.getLogger(__name__)

T = TypeVar("T")

_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, TimeoutError, OSError)


class FencedLock:
    """Leases on sets of resources, each with a fencing token, in one Redis.

    `redis` is a `redis.asyncio.Redis` (decoded responses or not). Every call
    to Redis is bounded in time: by `op_timeout` seconds if given, else by the
    client's `socket_timeout` (waiting blocks on BLPOP for at most half of it),
    else by 5 seconds. A Redis that is down or slow raises
    `LockUnavailable`, never hangs.

    `ttl_ms` is the lease: how long a holder may act without renewing.
    `prefix` names the key space (see `fencing.keys`). `clock` is the monotonic
    clock leases and deadlines are measured on (a seam for tests).
    `max_poll` caps the back-off between tries of a waiter nobody woke.
    """

    def __init__(self, redis: Any, ttl_ms: int = 10_000, *, prefix: str = "fencing",
                 clock: Callable[[], float] = time.monotonic, max_poll: float = 0.5,
                 op_timeout: float | None = None) -> None:
        if ttl_ms <= 0:
            raise ValueError(f"ttl_ms must be positive, got {ttl_ms}")
        if not prefix or "{" in prefix or "}" in prefix:
            raise ValueError(f"prefix must be non-empty and without braces, got {prefix!r}")
        self.redis = redis
        self.ttl_ms = int(ttl_ms)
        self.prefix = prefix
        self.clock = clock
        socket_timeout = _socket_timeout(redis)
        # The client's socket timeout already bounds every call; a timer of our
        # own on top would cost each call a scheduled callback for nothing.
        self.op_timeout = op_timeout if op_timeout is not None else (
            None if socket_timeout else 5.0)
        self.max_poll = min(max_poll, socket_timeout / 2) if socket_timeout else max_poll
        self._liveness_ms = int(self.max_poll * 2000) + 1000
        self._acquire = redis.register_script(scripts.ACQUIRE)
        self._release = redis.register_script(scripts.RELEASE)
        self._extend = redis.register_script(scripts.EXTEND)
        self._leave = redis.register_script(scripts.LEAVE)
        self._cleanups: set[asyncio.Task[None]] = set()
        self._set_up = False
        self._set_up_lock = asyncio.Lock()

    # -- public: check arguments, then make the calls -------------------------------

    async def acquire(self, *resources: str, timeout: float | None = None,
                      floor: int | None = None) -> Lease | None:
        """Take every resource, or none; return the `Lease`, or None if not taken.

        With `timeout=None`, one try. With `timeout=T`, wait up to T seconds in
        line (first come, first served). `floor=N` makes the token greater
        than N even if Redis lost its counter: pass the highest token a store
        reported (a 409 `stale_token` carries it) to get past it. Safe to
        cancel: whatever a cancelled or failed call may have taken is released.
        """
        names = _check_resources(resources)
        if timeout is not None and timeout < 0:
            raise ValueError(f"timeout must be >= 0, got {timeout}")
        if floor is not None and (not isinstance(floor, int) or floor < 0):
            raise ValueError(f"floor must be a non-negative int, got {floor!r}")
        keys = LeaseKeys.of(self.prefix, names)
        lease_id = secrets.token_hex(16)
        try:
            return await self._acquire_loop(keys, lease_id, timeout, floor or 0)
        except BaseException:
            self._clean_up_later(keys, lease_id)
            raise

    async def release(self, lease: Lease) -> bool:
        """Delete the lease's locks if it still holds every one; True if it did.

        Never deletes a lock another holder owns: ownership is checked in the
        same script that deletes. The call finishes even if the caller is
        cancelled meanwhile, and may be repeated.
        """
        lease.mark_released()
        try:
            return await self._do_release(lease)
        except asyncio.CancelledError:
            # The script may or may not have run; running it again is harmless.
            self._clean_up_later(LeaseKeys.of(self.prefix, lease.resources), lease.lease_id)
            raise

    async def extend(self, lease: Lease) -> bool:
        """Renew the lease to a full `ttl_ms`; False (and `lease.lost`) if it was lost."""
        if lease.lost:
            return False
        started = self.clock()
        done = await self._call(self._extend(
            keys=LeaseKeys.of(self.prefix, lease.resources).locks,
            args=[lease.lease_id, self.ttl_ms]))
        if done == scripts.Outcome.DONE:
            lease.expires_at = started + self.ttl_ms / 1000
            log.debug("extended lease %s on %s", lease.token, lease.resources)
            return True
        lease.mark_lost()
        log.warning("lease %s on %s was lost before it could be extended",
                    lease.token, lease.resources)
        return False

    async def holder(self, resource: str) -> int | None:
        """The token of the lease holding `resource` now, or None if nobody holds it."""
        (name,) = _check_resources((resource,))
        value = await self._call(self.redis.get(LeaseKeys.of(self.prefix, (name,)).locks[0]))
        if value is None:
            return None
        text = value.decode() if isinstance(value, bytes) else str(value)
        return int(text.split(":", 1)[0])

    @contextlib.asynccontextmanager
    async def hold(self, *resources: str, timeout: float | None = None, floor: int | None = None,
                   keep_alive: bool = False, max_hold: float | None = None
                   ) -> AsyncIterator[Lease]:
        """`async with lock.hold(...) as lease:` acquire, act, release.

        Raises `LockBusy` if not acquired within `timeout`. With
        `keep_alive=True` a task bound to this block renews the lease every
        third of its ttl, for at most `max_hold` seconds if given; when a
        renewal finds the lease lost it sets `lease.lost` (see
        `Lease.ensure_held`, `Lease.wait_lost`). Renewal stops when the block
        exits, before the release. A release that fails because Redis is down
        is logged, not raised: the lease then ends by its ttl.
        """
        lease = await self.acquire(*resources, timeout=timeout, floor=floor)
        if lease is None:
            raise LockBusy(tuple(resources), timeout)
        renewer = asyncio.create_task(self._keep_alive(lease, max_hold)) if keep_alive else None
        try:
            yield lease
        finally:
            if renewer is not None:
                renewer.cancel()
                await asyncio.gather(renewer, return_exceptions=True)
            try:
                await self.release(lease)
            except LockError as exc:
                log.warning("could not release lease %s on %s: %s", lease.token,
                            lease.resources, exc)

    async def close(self) -> None:
        """Wait for the clean-ups of cancelled or failed acquires (bounded); call before
        closing the Redis client. The lock does not own the client and leaves it open."""
        if self._cleanups:
            await asyncio.wait(set(self._cleanups), timeout=10)

    # -- private: one Redis call each ---------------------------------------------------

    async def _acquire_loop(self, keys: LeaseKeys, lease_id: str,
                            timeout: float | None, floor: int) -> Lease | None:
        deadline = None if timeout is None else self.clock() + timeout
        backoff = 0.02
        queued = False
        while True:
            started = self.clock()
            wait = deadline is not None and started < deadline
            result = await self._try_acquire(keys, lease_id, floor, wait)
            token = scripts.acquired_token(result)
            if token is not None:
                log.debug("acquired %s with token %s", keys.resources, token)
                return Lease(token=token, resources=keys.resources,
                             expires_at=started + self.ttl_ms / 1000,
                             lease_id=lease_id, clock=self.clock)
            if not wait:
                if queued:
                    await self._leave_queues(keys, lease_id)
                log.debug("busy: %s", keys.resources)
                return None
            queued = True
            assert deadline is not None
            pause = min(backoff, deadline - self.clock())
            expires_in = scripts.busy_expires_in(result)
            if expires_in is not None:  # the lock in the way ends by itself then
                pause = min(pause, expires_in + 0.001)
            await self._wait_for_wake(keys.space.wake(lease_id), pause)
            backoff = min(backoff * 2, self.max_poll)

    async def _try_acquire(self, keys: LeaseKeys, lease_id: str, floor: int, wait: bool) -> int:
        return int(await self._call(self._acquire(
            keys=keys.acquire,
            args=[self.ttl_ms, floor, lease_id, self._liveness_ms if wait else 0])))

    async def _wait_for_wake(self, wake_key: str, pause: float) -> None:
        if pause >= 0.001:
            await self._call(self.redis.blpop([wake_key], timeout=pause), extra=pause)

    async def _do_release(self, lease: Lease) -> bool:
        done = await self._call(self._release(
            keys=LeaseKeys.of(self.prefix, lease.resources).release, args=[lease.lease_id]))
        released = bool(done == scripts.Outcome.DONE)
        if released:
            log.debug("released lease %s on %s", lease.token, lease.resources)
        else:
            log.warning("lease %s on %s had already expired or been taken over; nothing released",
                        lease.token, lease.resources)
        return released

    async def _leave_queues(self, keys: LeaseKeys, lease_id: str) -> None:
        await self._call(self._leave(keys=keys.leave, args=[lease_id]))

    def _clean_up_later(self, keys: LeaseKeys, lease_id: str) -> None:
        """After a cancelled or failed acquire: release what it may have taken, leave the queues.

        The acquire script may have run even though its answer never arrived.
        A lease id is never reused, so this deletes only what that call took.
        """
        async def clean_up() -> None:
            with contextlib.suppress(LockError):
                lease = Lease(token=0, resources=keys.resources, expires_at=0.0,
                              lease_id=lease_id, clock=self.clock)
                await self._do_release(lease)
                await self._leave_queues(keys, lease_id)

        try:
            task = asyncio.get_running_loop().create_task(clean_up())
        except RuntimeError:  # the loop is closing: the lease ttl bounds the rest
            return
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    async def _keep_alive(self, lease: Lease, max_hold: float | None) -> None:
        give_up_at = None if max_hold is None else self.clock() + max_hold
        interval = self.ttl_ms / 3000
        while True:
            await asyncio.sleep(interval)
            if give_up_at is not None and self.clock() >= give_up_at:
                log.warning("lease %s on %s held past max_hold=%ss: no longer renewed",
                            lease.token, lease.resources, max_hold)
                return
            try:
                if not await self.extend(lease):
                    return
            except LockUnavailable as exc:
                log.warning("could not renew lease %s: %s", lease.token, exc)
                if not lease.held:
                    lease.mark_lost()
                    return

    async def _set_up_client(self) -> None:
        """Let the client set itself up once, before calls run side by side.

        redis-py's async RedisCluster discovers the cluster on first use; left to
        the first calls of many tasks at once, that discovery broke the
        connections of calls in flight ("Connection closed by server",
        tests/fencing with the cluster backend; cf. redis-py issue #3935).
        """
        async with self._set_up_lock:
            if not self._set_up:
                initialize = getattr(self.redis, "initialize", None)
                if initialize is not None:
                    await initialize()
                self._set_up = True

    async def _call(self, awaitable: Awaitable[T], extra: float = 0.0) -> T:
        """One Redis call, bounded in time, its failures mapped to `LockError`s."""
        task = asyncio.current_task()
        cancels = task.cancelling() if task is not None else 0
        try:
            if self.op_timeout is None:
                if not self._set_up:
                    await self._set_up_client()
                result = await awaitable
            else:
                async with asyncio.timeout(self.op_timeout + extra):
                    if not self._set_up:
                        await self._set_up_client()
                    result = await awaitable
        except _UNAVAILABLE as exc:
            raise LockUnavailable(f"Redis unavailable: {exc or type(exc).__name__}") from exc
        except RedisError as exc:
            raise LockError(f"Redis refused the lock operation: {exc}") from exc
        if task is not None and task.cancelling() > cancels:
            # The call returned although the task was cancelled during it: before
            # Python 3.12, asyncio.wait_for (redis-py sends each command with it) can
            # drop a cancellation that arrives as its inner task finishes. A cancelled
            # waiter must stop waiting (PITFALLS: cancellation), so raise it here;
            # acquire() then releases whatever this call took.
            raise asyncio.CancelledError()
        return result


def _check_resources(resources: tuple[str, ...]) -> tuple[str, ...]:
    if not resources:
        raise ValueError("name at least one resource")
    for name in resources:
        if not isinstance(name, str) or not name:
            raise ValueError(f"resource names are non-empty strings, got {name!r}")
    if len(set(resources)) != len(resources):
        raise ValueError(f"resource named twice: {resources}")
    return tuple(resources)


def _socket_timeout(redis: Any) -> float | None:
    pool = getattr(redis, "connection_pool", None)
    kwargs = getattr(pool, "connection_kwargs", {}) or {}
    timeout = kwargs.get("socket_timeout")
    return float(timeout) if timeout else None
