"""`FencedLock`: a Redis lock on one or more resources that issues fencing tokens.

A lease covers every resource asked for, or none; its token comes from a
counter that only grows, drawn in the same atomic step. Stores accept a write
only if they have accepted no higher token for that document, which makes a
holder that outlived its lease harmless::

    A: acquire -> token 33 ....... paused past its lease ....... write(33) -> refused
    B:                  acquire -> token 34 -> write(34) -> accepted

Waiting is fair and quiet: a waiter joins a FIFO queue per resource (one
global ticket order per key space, so several resources cannot deadlock) and
sleeps on its own wake list (BLPOP). A release hands the lease straight to the
first live waiter (new token, full ttl) and pushes the token onto its wake
list, so the waiter's BLPOP returns its lease; the remaining lease time of the
lock in its way, and a capped poll, cover holders that died without releasing.

This is the asyncio layer; `fencing.sync` is the blocking one. Both run the
logic of `fencing.core` and the scripts of `fencing.scripts`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, AsyncIterator, Awaitable, Callable, Generator, TypeVar

from fencing.clients import (
    ASYNCIO, CLIENT_ERRORS, NO_SCRIPT, check_client, memory_info_args, warn_about_eviction)
from fencing.core import NOTIFY, RETRYABLE, WAIT, LockBase, Step, lock_error, token_of
from fencing.errors import LockBusy, LockError
from fencing.keys import LeaseKeys
from fencing.lease import Lease

log = logging.getLogger(__name__)

T = TypeVar("T")


class FencedLock(LockBase):
    """Leases on sets of resources, each with a fencing token, in one Redis.

    `redis` is a `redis.asyncio.Redis` or `RedisCluster` (decoded responses
    or not), or valkey-py's asyncio client; a blocking client raises TypeError
    here (it belongs to `fencing.sync.FencedLock`). Every call to Redis is
    bounded in time: by `op_timeout` seconds if given, else by the client's
    `socket_timeout` (waiting blocks on BLPOP for at most half of it), else by
    5 seconds, retries included. A Redis that is down or slow raises
    `LockUnavailable`, never hangs.

    A call that may not have reached Redis, or whose answer was lost (a
    connection error, a timeout), is sent again a few times within that
    bound, unless the client retries by itself (see `fencing.core`): every
    call is idempotent, an acquire too (it keeps its lease id). So after Redis
    restarts, the dead connections in the pool cost no call: the first that
    meets one drops the pool's idle connections and tries again.

    `ttl_ms` is the lease: how long a holder may act without renewing.
    `prefix` names the key space (see `fencing.keys`). `clock` is the monotonic
    clock leases and deadlines are measured on (a seam for tests).
    `max_poll` caps how long a waiter sleeps before it tries again by itself.
    """

    def __init__(self, redis: Any, ttl_ms: int = 10_000, *, prefix: str = "fencing",
                 clock: Callable[[], float] = time.monotonic, max_poll: float = 0.5,
                 op_timeout: float | None = None) -> None:
        check_client(redis, ASYNCIO)
        super().__init__(redis, ttl_ms, prefix, clock, max_poll, op_timeout)
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
        cancel: whatever a cancelled or failed call may have taken (a lease
        handed to it as it gave up included) is released.
        """
        keys = self._core.check_acquire(resources, timeout, floor)
        lease_id = self._core.new_lease_id()
        try:
            lease = await self._run(self._core.acquiring(keys, lease_id, timeout, floor or 0))
        except BaseException as exc:
            await self._clean_up(keys, lease_id, wait=not isinstance(exc, LockError))
            raise
        return self._core.acquired(lease, keys)

    async def release(self, lease: Lease) -> bool:
        """Delete the lease's locks if it still holds every one; True if it did.

        Never deletes a lock another holder owns: ownership is checked in the
        same script that deletes. A waiter first in line gets the resources at
        once. The call finishes even if the caller is cancelled meanwhile, and
        may be repeated.
        """
        lease.mark_released()
        try:
            return await self._run(self._core.releasing(lease))
        except asyncio.CancelledError:
            # The script may or may not have run; running it again is harmless.
            await self._clean_up(self._core.lease_keys(lease), lease.lease_id)
            raise

    async def extend(self, lease: Lease) -> bool:
        """Renew the lease to a full `ttl_ms`; False (and `lease.lost`) if it was lost."""
        if lease.lost:
            return False
        started = self.clock()
        locks = self._core.lease_keys(lease).locks
        done = await self._call(
            lambda: self._script(self._extend, locks, (lease.lease_id, self.ttl_ms)))
        return self._core.extended(lease, done, started)

    async def holder(self, resource: str) -> int | None:
        """The token of the lease holding `resource` now, or None if nobody holds it."""
        key = self._core.keys((resource,)).locks[0]
        return token_of(await self._call(lambda: self.redis.get(key)))

    @contextlib.asynccontextmanager
    async def hold(self, *resources: str, timeout: float | None = None, floor: int | None = None,
                   keep_alive: bool = False, max_hold: float | None = None
                   ) -> AsyncIterator[Lease]:
        """`async with lock.hold(...) as lease:` acquire, act, release.

        Raises `LockBusy` if not acquired within `timeout`. With
        `keep_alive=True` a task bound to this block renews the lease every
        third of its ttl, for at most `max_hold` seconds if given. The lease
        is `lost` once it can no longer be held: at its expiry if not renewed,
        or when a renewal finds it gone or is refused (see
        `Lease.ensure_held`, `Lease.wait_lost`). Renewal stops when the block
        exits, before the release. A release that fails because Redis is down
        is logged, not raised: the lease then ends by its ttl.
        """
        lease = await self.acquire(*resources, timeout=timeout, floor=floor)
        if lease is None:
            raise LockBusy(tuple(resources), timeout)
        renewer = asyncio.create_task(self.keep_alive(lease, max_hold)) if keep_alive else None
        try:
            yield lease
        finally:
            if renewer is not None:
                renewer.cancel()
                await asyncio.gather(renewer, return_exceptions=True)
            try:
                await self.release(lease)
            except LockError as exc:
                self._core.release_failed(lease, exc)

    async def close(self) -> None:
        """Wait for the clean-ups of cancelled or failed acquires (bounded); call before
        closing the Redis client. The lock does not own the client and leaves it open."""
        if self._cleanups:
            await asyncio.wait(set(self._cleanups), timeout=10)

    # -- private: Redis calls ----------------------------------------------------------

    async def _run(self, steps: Generator[Step, Any, T]) -> T:
        """Drive `LockCore.acquiring`, `releasing` or `leaving`: make each call it yields,
        send it the answer."""
        step: Step = next(steps)
        while True:
            kind, keys, args = step
            result: Any = None
            if kind is WAIT:
                result = await self._call(lambda: self.redis.blpop([keys], timeout=args),
                                          extra=args)
            elif kind is NOTIFY:
                with contextlib.suppress(LockError):
                    result = await self._call(
                        lambda: self._script(self._scripts[kind], keys, args))
            else:
                result = await self._call(lambda: self._script(self._scripts[kind], keys, args))
            try:
                step = steps.send(result)
            except StopIteration as done:
                return done.value

    async def _script(self, script: Any, keys: tuple[str, ...], args: tuple[Any, ...]) -> Any:
        """EVALSHA, and the source once if Redis does not know the script (it restarted).

        What redis-py's Script object does, without the wrapper's cost on every call."""
        try:
            return await self.redis.evalsha(script.sha, len(keys), *keys, *args)
        except NO_SCRIPT:  # EVAL runs the source and caches it: one round trip, not two
            return await self.redis.eval(script.script, len(keys), *keys, *args)

    async def _clean_up(self, keys: LeaseKeys, lease_id: str, wait: bool = True) -> None:
        """After a cancelled or failed acquire: release what it may have taken, leave the queues.

        The acquire script may have run even though its answer never arrived,
        and a release may have handed the lease to this waiter meanwhile. A
        lease id is never reused, so this deletes only what that call took.

        A cancelled call waits for its clean-up (one round trip, within the
        call's time bound) rather than leave it to a task of its own: a task
        still pending when `asyncio.run` closes the loop is destroyed with the
        LEAVE unsent ("Task was destroyed but it is pending"), while
        `asyncio.run` waits for the cancelled call itself. Cancelled again
        while it waits, the clean-up goes on in a task that `close()` waits
        for. A call that failed (`wait=False`: Redis unreachable, most likely
        for the LEAVE too) raises at once and leaves the clean-up to that task.

        Sent after redis-py closed the connection of the call it cleans up
        after, the LEAVE still travels on another connection: held back in the
        network, that call could reach Redis after it and take the resources
        for a lease id nobody holds. That breaks no guarantee: no holder acts
        on that lease, it ends by its ttl, and its place in line by
        `liveness_ms`. It only delays the next holder, as a client that died
        holding the lease would.
        """
        async def clean_up() -> None:
            with contextlib.suppress(LockError):
                await self._run(self._core.leaving(keys, lease_id))

        try:
            task = asyncio.get_running_loop().create_task(clean_up())
        except RuntimeError:  # the loop is closing: the lease ttl bounds the rest
            return
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)
        if wait:
            await asyncio.shield(task)

    async def keep_alive(self, lease: Lease, max_hold: float | None = None, *,
                         extend: Callable[[Lease], Awaitable[bool]] | None = None) -> None:
        """The renewals of `hold(keep_alive=True)`, for a caller that runs them itself.

        Renews the lease every third of its ttl until a renewal finds it lost
        or is refused (`lease.lost` is set), `max_hold` seconds have passed, or
        the task is cancelled. A renewal that meets `LockUnavailable` is tried
        again at the next turn while the lease has time left. `extend`
        (default: this lock's) lets a wrapper observe each renewal; it must
        renew as `FencedLock.extend` does.
        """
        core = self._core
        renew = extend or self.extend
        give_up_at = core.give_up_at(max_hold)
        while True:
            await asyncio.sleep(core.renew_every)
            if not core.renewal_due(lease, give_up_at):
                return
            try:
                if not await renew(lease):
                    return
            except Exception as exc:  # a renewal that failed for any reason: see renewal_failed
                if core.renewal_failed(lease, exc):
                    return

    async def _set_up_client(self) -> None:
        """Let the client set itself up once, before calls run side by side.

        redis-py's async RedisCluster discovers the cluster on first use; left to
        the first calls of many tasks at once, that discovery broke the
        connections of calls in flight ("Connection closed by server",
        tests/fencing with the cluster backend; cf. redis-py issue #3935).
        And check, once, that Redis will not evict the lock's keys.
        """
        async with self._set_up_lock:
            if not self._set_up:
                initialize = getattr(self.redis, "initialize", None)
                if initialize is not None:
                    await initialize()
                await self._check_eviction_policy()
                self._set_up = True

    async def _check_eviction_policy(self) -> None:
        """Warn if Redis may evict the lock's keys (see `warn_about_eviction`). Redis
        unreachable: the error goes on, and the next call checks again."""
        try:
            info = await self.redis.info(**memory_info_args(self.redis))
        except RETRYABLE:
            raise
        except Exception as exc:  # INFO refused (ACL) or unknown (a proxy): nothing to tell
            log.debug("could not read Redis's maxmemory-policy: %r", exc)
            return
        warn_about_eviction(info)

    async def _call(self, make: Callable[[], Awaitable[T]], extra: float = 0.0) -> T:
        """One Redis call, bounded in time, retried if it may not have run (see the
        class docstring), its failures mapped to `LockError`s."""
        task = asyncio.current_task()
        cancels = task.cancelling() if task is not None else 0
        started = self.clock()
        try:
            try:
                result = await self._once(make, self.op_timeout, extra)
            except RETRYABLE as exc:
                result = await self._retry(make, extra, started, exc)
        except (*CLIENT_ERRORS, *RETRYABLE) as exc:
            raise lock_error(exc) from exc
        if task is not None and task.cancelling() > cancels:
            # The call returned although the task was cancelled during it: before
            # Python 3.12, asyncio.wait_for (redis-py sends each command with it) can
            # drop a cancellation that arrives as its inner task finishes. A cancelled
            # waiter must stop waiting, so raise it here; acquire() then releases
            # whatever this call took.
            raise asyncio.CancelledError()
        return result

    async def _once(self, make: Callable[[], Awaitable[T]], timeout: float | None,
                    extra: float) -> T:
        if timeout is None:
            if not self._set_up:
                await self._set_up_client()
            return await make()
        async with asyncio.timeout(timeout + extra):
            if not self._set_up:
                await self._set_up_client()
            return await make()

    async def _retry(self, make: Callable[[], Awaitable[T]], extra: float, started: float,
                     error: BaseException) -> T:
        for delay in self._core.retries(started, error):
            await self._pause_before_retry(delay)
            try:
                return await self._once(make, self._core.remaining_budget(started), extra)
            except RETRYABLE as exc:
                error = exc
        raise error

    async def _pause_before_retry(self, delay: float) -> None:
        pool = self._idle_connections()
        if pool is not None:
            await pool.disconnect(inuse_connections=False)
        if delay:
            await asyncio.sleep(delay)
