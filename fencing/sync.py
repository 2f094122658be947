"""`FencedLock` for blocking code: the same lock on a `redis.Redis` or sync `RedisCluster`.

::

    from fencing.sync import FencedLock

    lock = FencedLock(redis.Redis(...), ttl_ms=10_000)
    lease = lock.acquire("a", "b", timeout=2.0)     # Lease or None
    with lock.hold("a", timeout=2.0, keep_alive=True) as lease:   # LockBusy if not acquired
        ...          # keep_alive renews from a thread bound to this block; stops on exit

Same methods, semantics, keys and scripts as `fencing.FencedLock`: a lease
taken by one excludes the other, and tokens keep growing across both. Waiting
blocks on the waiter's wake list (BLPOP), never polls at full speed.

How the twins stay one lock: both are thin I/O layers over `fencing.core`
(sans-I/O: the acquire loop is a generator that yields each Redis call and
receives its answer; the retry rule and every result's meaning live there)
and run the scripts of `fencing.scripts` on the keys of `fencing.keys`. This
module only sends calls and sleeps. Code generated from the async module by
textual substitution (httpcore's unasync) was the other choice; it was not
taken because the layers differ beyond `async`/`await`: here clean-up runs
inline, also under KeyboardInterrupt, and renewal is a thread, where the
async lock uses background tasks and checks for dropped cancellations.

Safe under KeyboardInterrupt (or any exception) in the middle of an acquire
or a release: whatever the interrupted call may have taken, a lease handed to
the waiter included, is released before the exception goes on. The lock is
safe to share between threads (redis-py's client is); a `Lease` belongs to
the thread that acts on it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any, Callable, Generator, Generic, Iterator, TypeVar

from fencing.clients import (
    BLOCKING, CLIENT_ERRORS, NO_SCRIPT, check_client, memory_info_args, warn_about_eviction)
from fencing.core import NOTIFY, RETRYABLE, WAIT, LockBase, Step, lock_error, token_of
from fencing.errors import LeaseLost, LockBusy, LockError, LockUnavailable
from fencing.keys import LeaseKeys
from fencing.lease import Lease

log = logging.getLogger(__name__)

T = TypeVar("T")

__all__ = ["FencedLock", "Lease", "LeaseLost", "LockBusy", "LockError", "LockUnavailable"]


class FencedLock(LockBase):
    """Leases on sets of resources, each with a fencing token, in one Redis; blocking.

    `redis` is a `redis.Redis` or `redis.cluster.RedisCluster`, or valkey-py's
    blocking client; an asyncio client raises TypeError here (it belongs to
    `fencing.FencedLock`). Every call to
    Redis is bounded in time, as in `fencing.FencedLock`: by `op_timeout`
    seconds if given, else by the client's `socket_timeout`, else by 5
    seconds. Give the client a `socket_timeout` (and a
    `socket_connect_timeout`): calls then run on the calling thread and
    waiting blocks on BLPOP for at most half of it. Otherwise, or with
    `op_timeout`, each call runs on a thread of its own that the caller waits
    for: a socket read without a timeout never returns from a frozen Redis.
    Calls that may not have reached Redis are retried within that bound unless
    the client retries by itself; see `fencing.core`. Arguments as for
    `fencing.FencedLock`.
    """

    def __init__(self, redis: Any, ttl_ms: int = 10_000, *, prefix: str = "fencing",
                 clock: Callable[[], float] = time.monotonic, max_poll: float = 0.5,
                 op_timeout: float | None = None) -> None:
        check_client(redis, BLOCKING)
        super().__init__(redis, ttl_ms, prefix, clock, max_poll, op_timeout)
        socket_timeout = _socket_timeout(redis)
        # A call runs on a thread of its own only when the client's socket timeout does not
        # bound it within op_timeout: that costs a thread per call.
        self._checked_server = False
        self._check_lock = threading.Lock()
        self._thread_timeout = None if socket_timeout and (
            self.op_timeout is None or socket_timeout <= self.op_timeout) else self.op_timeout

    def acquire(self, *resources: str, timeout: float | None = None,
                floor: int | None = None) -> Lease | None:
        """Take every resource, or none; return the `Lease`, or None if not taken.

        As `fencing.FencedLock.acquire`. Interrupted (KeyboardInterrupt) or
        failed, it releases whatever it may have taken before raising.
        """
        keys = self._core.check_acquire(resources, timeout, floor)
        lease_id = self._core.new_lease_id()
        try:
            lease = self._run(self._core.acquiring(keys, lease_id, timeout, floor or 0))
        except BaseException as exc:
            self._clean_up(keys, lease_id, after=_abandoned(exc))
            raise
        return self._core.acquired(lease, keys)

    def release(self, lease: Lease) -> bool:
        """Delete the lease's locks if it still holds every one; True if it did.

        Never deletes a lock another holder owns; may be repeated. Interrupted,
        it still releases (by lease id) before raising.
        """
        lease.mark_released()
        try:
            return self._run(self._core.releasing(lease))
        except BaseException as exc:
            if not isinstance(exc, LockError):  # interrupted: the script may not have run
                self._clean_up(self._core.lease_keys(lease), lease.lease_id)
            raise

    def extend(self, lease: Lease) -> bool:
        """Renew the lease to a full `ttl_ms`; False (and `lease.lost`) if it was lost."""
        if lease.lost:
            return False
        started = self.clock()
        locks = self._core.lease_keys(lease).locks
        done = self._call(lambda: self._script(self._extend, locks, (lease.lease_id, self.ttl_ms)))
        return self._core.extended(lease, done, started)

    def holder(self, resource: str) -> int | None:
        """The token of the lease holding `resource` now, or None if nobody holds it."""
        key = self._core.keys((resource,)).locks[0]
        return token_of(self._call(lambda: self.redis.get(key)))

    @contextlib.contextmanager
    def hold(self, *resources: str, timeout: float | None = None, floor: int | None = None,
             keep_alive: bool = False, max_hold: float | None = None) -> Iterator[Lease]:
        """`with lock.hold(...) as lease:` acquire, act, release.

        Raises `LockBusy` if not acquired within `timeout`. With
        `keep_alive=True` a thread bound to this block renews the lease every
        third of its ttl, for at most `max_hold` seconds if given. The lease
        is `lost` once it can no longer be held: at its expiry if not renewed,
        or when a renewal finds it gone or is refused (see
        `Lease.ensure_held`, `Lease.wait_lost_blocking`). The thread stops when
        the block exits, before the release. A release that fails because
        Redis is down is logged, not raised: the lease then ends by its ttl.
        """
        lease = self.acquire(*resources, timeout=timeout, floor=floor)
        if lease is None:
            raise LockBusy(tuple(resources), timeout)
        stop = threading.Event()
        renewer = None
        if keep_alive:
            renewer = threading.Thread(target=self._keep_alive, args=(lease, max_hold, stop),
                                       name=f"fencing-keep-alive-{lease.token}", daemon=True)
            renewer.start()
        try:
            yield lease
        finally:
            if renewer is not None:
                stop.set()
                renewer.join()
            try:
                self.release(lease)
            except LockError as exc:
                self._core.release_failed(lease, exc)

    def close(self) -> None:
        """Nothing to wait for (clean-ups run inline); kept for the async lock's API. The
        lock does not own the client and leaves it open."""

    # -- private: Redis calls ----------------------------------------------------------

    def _run(self, steps: Generator[Step, Any, T]) -> T:
        """Drive `LockCore.acquiring`, `releasing` or `leaving`: make each call it yields,
        send it the answer."""
        step: Step = next(steps)
        while True:
            kind, keys, args = step
            result: Any = None
            if kind is WAIT:
                result = self._call(lambda: self.redis.blpop([keys], timeout=args), extra=args)
            elif kind is NOTIFY:
                with contextlib.suppress(LockError):
                    result = self._call(lambda: self._script(self._scripts[kind], keys, args))
            else:
                result = self._call(lambda: self._script(self._scripts[kind], keys, args))
            try:
                step = steps.send(result)
            except StopIteration as done:
                return done.value

    def _script(self, script: Any, keys: tuple[str, ...], args: tuple[Any, ...]) -> Any:
        """EVALSHA, and the source once if Redis does not know the script (it restarted).

        What redis-py's Script object does, without the wrapper's cost on every call."""
        try:
            return self.redis.evalsha(script.sha, len(keys), *keys, *args)
        except NO_SCRIPT:  # EVAL runs the source and caches it: one round trip, not two
            return self.redis.eval(script.script, len(keys), *keys, *args)

    def _clean_up(self, keys: LeaseKeys, lease_id: str, after: _Call[Any] | None = None) -> None:
        """After an interrupted or failed acquire: release what it may have taken (a lease
        handed to it included), leave the queues. A lease id is never reused.

        `after`: the acquire's call that was given up on, still waiting for Redis (frozen,
        or slow). The clean-up then runs once that call has its answer, on its thread:
        sent now, it could reach Redis first (another connection) and leave nothing to
        clean, and the call would then take the resources for nobody until the ttl."""
        def leave() -> None:
            with contextlib.suppress(LockError):
                self._run(self._core.leaving(keys, lease_id))

        if after is None:
            leave()
            return
        after.then(leave)
        # And one now, in the background: behind a frozen Redis's socket buffers it usually
        # lands right after the call, so a newcomer need not wait for the answer's return.
        threading.Thread(target=leave, name="fencing-clean-up", daemon=True).start()

    def _keep_alive(self, lease: Lease, max_hold: float | None, stop: threading.Event) -> None:
        core = self._core
        give_up_at = core.give_up_at(max_hold)
        while not stop.wait(core.renew_every):
            if not core.renewal_due(lease, give_up_at):
                return
            try:
                if not self.extend(lease):
                    return
            except Exception as exc:  # a renewal that failed for any reason: see renewal_failed
                if core.renewal_failed(lease, exc):
                    return

    def _call(self, make: Callable[[], T], extra: float = 0.0) -> T:
        """One Redis call, bounded in time, retried if it may not have run, its failures
        mapped to `LockError`s."""
        started = self.clock()
        try:
            try:
                if not self._checked_server:
                    self._check_server()
                return self._once(make, self._thread_timeout, extra)
            except RETRYABLE as exc:
                return self._retry(make, extra, started, exc)
        except (*CLIENT_ERRORS, *RETRYABLE) as exc:
            raise lock_error(exc) from exc

    def _check_server(self) -> None:
        """Warn, once, if Redis may evict the lock's keys (see `warn_about_eviction`). Redis
        unreachable: the error goes on, and the next call checks again."""
        with self._check_lock:
            if self._checked_server:
                return
            try:
                info = self._once(lambda: self.redis.info(**memory_info_args(self.redis)),
                                  self._thread_timeout, 0.0)
            except RETRYABLE:
                raise
            except Exception as exc:  # INFO refused (ACL) or unknown (a proxy)
                log.debug("could not read Redis's maxmemory-policy: %r", exc)
            else:
                warn_about_eviction(info)
            self._checked_server = True

    def _once(self, make: Callable[[], T], timeout: float | None, extra: float) -> T:
        """`make()`, on this thread if the client's socket timeout bounds it, else on a
        thread of its own that this one waits for at most `timeout` (+ `extra`, a BLPOP's
        own wait) seconds: a blocking socket read without a timeout waits for good on a
        frozen Redis, and only the socket's owner could cut it short.

        A call given up on is left to finish on its daemon thread when Redis answers or the
        connection dies (it holds one connection of the pool until then); what it may have
        taken ends by its ttl, as for any call whose answer was lost."""
        if timeout is None:
            return make()
        call = _Call(make)
        return call.result(timeout + extra)

    def _retry(self, make: Callable[[], T], extra: float, started: float,
               error: BaseException) -> T:
        for delay in self._core.retries(started, error):
            self._pause_before_retry(delay)
            try:
                bound = self._thread_timeout and self._core.remaining_budget(started)
                return self._once(make, bound, extra)
            except RETRYABLE as exc:
                error = exc
        raise error

    def _pause_before_retry(self, delay: float) -> None:
        pool = self._idle_connections()
        if pool is not None:
            pool.disconnect(inuse_connections=False)
        if delay:
            time.sleep(delay)


def _socket_timeout(redis: Any) -> float | None:
    """The socket timeout of the client's connections (a cluster client's too), or None."""
    holder = getattr(redis, "connection_pool", None) or getattr(redis, "nodes_manager", None)
    timeout = (getattr(holder, "connection_kwargs", None) or {}).get("socket_timeout")
    return float(timeout) if timeout else None


class CallAbandoned(TimeoutError):
    """A call Redis did not answer in time; it goes on, on its thread, until Redis does."""

    def __init__(self, call: _Call[Any], timeout: float) -> None:
        super().__init__(f"Redis did not answer within {timeout:g}s")
        self.call = call


def _abandoned(exc: BaseException) -> _Call[Any] | None:
    """The call given up on behind a failed acquire's error, if that is why it failed."""
    while exc is not None and not isinstance(exc, CallAbandoned):
        exc = exc.__cause__  # type: ignore[assignment]
    return exc.call if exc is not None else None


class _Call(Generic[T]):
    """One call made on a daemon thread of its own, waited for with a timeout."""

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._done = threading.Event()
        self._value: T | None = None
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._then: list[Callable[[], None]] = []
        threading.Thread(target=self._run, name="fencing-call", daemon=True).start()

    def _run(self) -> None:
        try:
            self._value = self._make()
        except BaseException as exc:  # handed to the waiting thread
            self._error = exc
        with self._lock:
            self._done.set()
            follow_ups, self._then = self._then, []
        for follow_up in follow_ups:
            follow_up()

    def then(self, follow_up: Callable[[], None]) -> None:
        """Run `follow_up` once the call has its answer (or failed): now, if it has."""
        with self._lock:
            if not self._done.is_set():
                self._then.append(follow_up)
                return
        follow_up()

    def result(self, timeout: float) -> T:
        deadline = time.monotonic() + timeout
        try:
            answered = self._done.wait(timeout)
        except BaseException as exc:
            # Interrupted (KeyboardInterrupt): let the call in flight land, within its
            # bound, before the caller cleans up after it, so that the clean-up cannot
            # reach Redis before the call it cleans up after.
            if not self._done.wait(max(0.0, deadline - time.monotonic())):
                raise exc from CallAbandoned(self, timeout)
            raise
        if not answered:
            raise CallAbandoned(self, timeout)
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]
