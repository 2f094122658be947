"""What the async and the sync lock share: every decision, no I/O (sans-I/O).

`fencing.FencedLock` (asyncio) and `fencing.sync.FencedLock` (blocking) are
two thin I/O layers over `LockCore`: it checks arguments, builds keys, says
which script to run with which arguments and what its answer means, and
decides when a failed call may be sent again. The waiting loop of an acquire
is a generator (`LockCore.acquiring`) that yields each Redis call it needs
and receives the answer, so both layers run the very same loop and only
differ in how they send a call and sleep.

Why this and not generating the sync module from the async one by textual
substitution (as httpcore does): the two layers differ in more than
`async`/`await`. The async one checks for dropped cancellations, cleans up in
background tasks and renews from a task; the sync one cleans up inline (even
under KeyboardInterrupt) and renews from a thread. Substitutions would need
exceptions for each of those, while the logic worth sharing (the acquire
loop, the retry rule, the Lua scripts and the key rules) fits a core without
I/O that both import.

Retries are the lock's or the client's, never both. redis-py 8.1 retries
ConnectionError and TimeoutError by itself only when the client was built
with a `Retry` of its own: `Redis(host=...)` and `RedisCluster(...)` retry 10
times by default, `Redis.from_url(...)` and `Sentinel.master_for(...)` not at
all. When the client retries (`client_retries() > 0`), the lock sends each
call once and lets it; when it does not, the lock retries a call that may not
have reached Redis, or whose answer was lost, a few times with a short
back-off, within the call's time budget. Either way only idempotent calls are
retried, which every call of the lock is (see `fencing.scripts`).
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any, Callable, Generator, Iterator

from redis.exceptions import ClusterDownError, ClusterError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from fencing import scripts
from fencing.clients import valkey_errors
from fencing.errors import LockError, LockUnavailable
from fencing.keys import LeaseKeys
from fencing.lease import Lease

log = logging.getLogger("fencing")

# Errors after which a call may not have reached Redis, or its answer was lost
# (BusyLoadingError, a restarted Redis still loading its data, is a ConnectionError;
# a cluster client's ClusterError "TTL exhausted" means every try met a slot on the
# move, ASK or TRYAGAIN, which Redis answers before it runs a script).
RETRYABLE: tuple[type[BaseException], ...] = (
    RedisConnectionError, RedisTimeoutError, TimeoutError, OSError, ClusterDownError,
    TryAgainError, ClusterError,
    *valkey_errors("ConnectionError", "TimeoutError", "ClusterDownError", "TryAgainError",
                   "ClusterError"))
# The pauses before each retry: the first at once (a dead pooled connection
# fails at once and a new one usually works), then back off.
RETRY_DELAYS = (0.0, 0.05, 0.2)

# A step of an acquire, release or leave: (ACQUIRE, KEYS, ARGV) runs the ACQUIRE
# script, and so for RELEASE, LEAVE and NOTIFY (a NOTIFY that fails is let go: the
# waiter finds its grant by itself); (WAIT, wake key, seconds) blocks on the
# waiter's wake list (BLPOP).
ACQUIRE = "acquire"
RELEASE = "release"
LEAVE = "leave"
NOTIFY = "notify"
WAIT = "wait"
Step = tuple[str, Any, Any]
# The shortest pause a waiter sleeps on BLPOP. Redis reads a BLPOP timeout in seconds as a
# long double and truncates it to whole milliseconds: "0.001" is 0.99999... ms, so 0, which
# means block for good (until the socket timeout fails the call). From 0.002 on it is at
# least 1 ms. A shorter pause is not slept: the waiter tries again at once.
MIN_WAIT = 0.002
SCRIPTS = {ACQUIRE: scripts.ACQUIRE, RELEASE: scripts.RELEASE, LEAVE: scripts.LEAVE,
           NOTIFY: scripts.NOTIFY}


class LockCore:
    """The settings of one lock and every decision it makes; see the module docstring."""

    def __init__(self, redis: Any, ttl_ms: int, prefix: str, clock: Callable[[], float],
                 max_poll: float, op_timeout: float | None) -> None:
        if ttl_ms <= 0:
            raise ValueError(f"ttl_ms must be positive, got {ttl_ms}")
        if not prefix or "{" in prefix or "}" in prefix:
            raise ValueError(f"prefix must be non-empty and without braces, got {prefix!r}")
        self.ttl_ms = int(ttl_ms)
        self.ttl = self.ttl_ms / 1000
        self.prefix = prefix
        self.clock = clock
        socket_timeout = _socket_timeout(redis)
        # The client's socket timeout already bounds every call; a timer of our
        # own on top would cost each call a scheduled callback for nothing.
        self.op_timeout = op_timeout if op_timeout is not None else (
            None if socket_timeout else 5.0)
        self.budget = op_timeout or socket_timeout or 5.0
        self.max_poll = min(max_poll, socket_timeout / 2) if socket_timeout else max_poll
        # A waiter refreshes its liveness at least every max_poll; one that
        # stopped (it died) is skipped by the hand-off after this long.
        self.liveness_ms = int(self.max_poll * 2000) + 1000
        self.retry_delays = () if client_retries(redis) > 0 else RETRY_DELAYS
        self.renew_every = self.ttl / 3
        # Several key spaces in one script are fine on one server, not on a cluster.
        self.cluster = getattr(redis, "nodes_manager", None) is not None

    def keys(self, resources: tuple[str, ...]) -> LeaseKeys:
        return LeaseKeys.of(self.prefix, check_resources(resources), self.cluster)

    def lease_keys(self, lease: Lease) -> LeaseKeys:
        """The keys of a lease's resources (checked when it was acquired)."""
        return LeaseKeys.of(self.prefix, lease.resources, self.cluster)

    def check_acquire(self, resources: tuple[str, ...], timeout: float | None,
                      floor: int | None) -> LeaseKeys:
        if timeout is not None and timeout < 0:
            raise ValueError(f"timeout must be >= 0, got {timeout}")
        if floor is not None and (not isinstance(floor, int)
                                  or not 0 <= floor <= scripts.MAX_FLOOR):
            raise ValueError(f"floor must be an int from 0 to {scripts.MAX_FLOOR}, got {floor!r}")
        return self.keys(resources)

    @staticmethod
    def new_lease_id() -> str:
        return os.urandom(16).hex()  # what secrets.token_hex does, one call less

    def acquiring(self, keys: LeaseKeys, lease_id: str, timeout: float | None,
                  floor: int) -> Generator[Step, Any, Lease | None]:
        """The acquire loop: yields each Redis call, receives its answer, returns the Lease.

        A waiter joins the line, then blocks on its wake list until a release
        hands the lease to it (BLPOP returns the token) or wakes it to try
        again. It tries again by itself after `max_poll` at the latest (to
        keep its place: see `liveness_ms`), or when the lock in its way
        expires (its holder died), and gives up at its deadline, leaving the line.
        A wake message is trusted only if its token is above the counter its
        last ACQUIRE saw: a grant made during this turn, not one that ran out
        before it (see `fencing.scripts.ACQUIRE`).

        The first ACQUIRE carries only the keys of its fast path (nothing held,
        nobody in line), a cheaper call; it answers ALL_KEYS when it needs the
        rest (to join the line, to pass a stalled waiter, to renew a lease a
        lost answer granted). A one try held back by a lease ends there.
        """
        clock = self.clock
        started = clock()
        deadline = started if timeout is None else started + timeout
        call_keys = keys.fast  # the first try: the fast path's keys alone
        queued = False
        while True:
            if started < deadline:
                live = self.liveness_ms
            else:
                live = -1 if queued else 0
            full = call_keys is not keys.fast  # only a call with every key joins the line
            queued = queued or (full and live > 0)  # set before the call: its answer may be lost
            answer = yield (ACQUIRE, call_keys,
                            (self.ttl_ms, floor, lease_id, live, *keys.layout))
            if scripts.acquired_token(answer) is not None:
                return self.lease(answer, keys, lease_id, started, waited=full)
            if scripts.needs_all_keys(answer):
                call_keys = keys.with_wake(lease_id)  # the wake key last
                continue
            busy = scripts.busy(answer)
            yield from self.notifying(busy.notes)
            if live <= 0:
                return None
            pause = min(self.max_poll, deadline - clock())
            if busy.expires_in is not None:  # the lock in the way ends by itself then
                pause = min(pause, busy.expires_in + 0.001)
            if pause >= MIN_WAIT:
                token = scripts.granted_token((yield (WAIT, call_keys[-1], pause)),
                                              busy.counter)
                if token is not None:
                    # Granted after the ACQUIRE above ran (its token is above the
                    # counter that ACQUIRE saw), so no earlier than `started`.
                    return self.lease(token, keys, lease_id, started, waited=True)
            started = clock()

    def releasing(self, lease: Lease) -> Generator[Step, Any, bool]:
        """A release: RELEASE, then NOTIFY each waiter it granted or woke; True if released.

        RELEASE carries only the keys of its fast path (nobody waits) first, unless the
        lease was granted after waiting in line: others likely wait too, and the call
        that hands the lease on needs every key."""
        keys = self.lease_keys(lease)
        args = (lease.lease_id, *keys.layout)
        answer = None if lease._waited else (yield (RELEASE, keys.fast, args))
        if answer is None or scripts.needs_all_keys(answer):
            answer = yield (RELEASE, keys.shared, args)
        done, notes = scripts.outcome(answer)
        yield from self.notifying(notes)
        return self.released(lease, done)

    def leaving(self, keys: LeaseKeys, lease_id: str) -> Generator[Step, Any, None]:
        """After a cancelled or failed acquire: LEAVE, then NOTIFY whom it handed on to."""
        _, notes = scripts.outcome(
            (yield (LEAVE, keys.with_wake(lease_id), (lease_id, *keys.layout))))
        yield from self.notifying(notes)

    @staticmethod
    def notifying(notes: scripts.Notes) -> Generator[Step, Any, None]:
        for wake, message in notes:
            yield (NOTIFY, (wake,), (message,))

    def lease(self, token: int, keys: LeaseKeys, lease_id: str, started: float,
              waited: bool = False) -> Lease:
        """The Lease of a granted token, measured from before the call was sent."""
        return Lease(token, keys.resources, started + self.ttl, lease_id, self.clock,
                     _waited=waited)

    def acquired(self, lease: Lease | None, keys: LeaseKeys) -> Lease | None:
        if lease is None:
            log.debug("busy: %s", keys.resources)
        else:
            log.debug("acquired %s with token %s", keys.resources, lease.token)
        return lease

    @staticmethod
    def released(lease: Lease, done: int) -> bool:
        """RELEASE's answer."""
        if done == scripts.Outcome.DONE:
            log.debug("released lease %s on %s", lease.token, lease.resources)
            return True
        log.warning("lease %s on %s had already expired or been taken over; nothing released",
                    lease.token, lease.resources)
        return False

    def extended(self, lease: Lease, done: int, started: float) -> bool:
        """EXTEND's answer, for a call sent at `started`."""
        # An answer that came after the lease's end as the holder counted it renews nothing:
        # the holder may have stopped acting, and a lost lease stays lost.
        if done == scripts.Outcome.DONE and not lease.lost:
            lease.expires_at = started + self.ttl
            log.debug("extended lease %s on %s", lease.token, lease.resources)
            return True
        lease.mark_lost()
        log.warning("lease %s on %s was lost before it could be extended",
                    lease.token, lease.resources)
        return False

    def give_up_at(self, max_hold: float | None) -> float | None:
        """When a keep-alive started now stops renewing."""
        return None if max_hold is None else self.clock() + max_hold

    def renewal_due(self, lease: Lease, give_up_at: float | None) -> bool:
        """False once the keep-alive has held the lease for `max_hold`: it stops renewing."""
        if give_up_at is not None and self.clock() >= give_up_at:
            log.warning("lease %s on %s held past max_hold: no longer renewed",
                        lease.token, lease.resources)
            return False
        return True

    @staticmethod
    def renewal_failed(lease: Lease, exc: BaseException) -> bool:
        """A renewal raised `exc`; True if the keep-alive should stop (the lease is then
        marked lost). Redis unavailable: try again at the next turn while the lease has time
        left. Anything else (a refusal such as NOPERM, a bug) ends the renewals at once,
        and a lease nobody renews is lost: say so now rather than let the holder act on."""
        if isinstance(exc, LockUnavailable) and lease.held:
            log.warning("could not renew lease %s: %s", lease.token, exc)
            return False
        log.warning("lease %s on %s lost: renewal failed: %s",
                    lease.token, lease.resources, exc or type(exc).__name__)
        lease.mark_lost()
        return True

    @staticmethod
    def release_failed(lease: Lease, exc: LockError) -> None:
        log.warning("could not release lease %s on %s: %s", lease.token, lease.resources, exc)

    def retries(self, started: float, error: BaseException) -> Iterator[float]:
        """The pause before each retry of a call sent at `started` that failed with `error`."""
        attempt = 0
        while (delay := self.retry_delay(attempt, started)) is not None:
            attempt += 1
            log.debug("retrying a lock call after %r", error)
            yield delay

    def retry_delay(self, attempt: int, started: float) -> float | None:
        """Seconds to wait before retrying a failed call (`attempt` retries done), or None."""
        if attempt >= len(self.retry_delays):
            return None
        delay = self.retry_delays[attempt]
        return delay if self.clock() - started + delay < self.budget else None

    def remaining_budget(self, started: float) -> float:
        return max(0.001, self.budget - (self.clock() - started))


class LockBase:
    """What both locks hold: the settings they were made with, their core, their scripts."""

    def __init__(self, redis: Any, ttl_ms: int, prefix: str, clock: Callable[[], float],
                 max_poll: float, op_timeout: float | None) -> None:
        self._core = core = LockCore(redis, ttl_ms, prefix, clock, max_poll, op_timeout)
        self.redis = redis
        self.ttl_ms = core.ttl_ms
        self.prefix = prefix
        self.clock = clock
        self.op_timeout = core.op_timeout
        self.max_poll = core.max_poll
        self._scripts = {kind: redis.register_script(source) for kind, source in SCRIPTS.items()}
        self._extend = redis.register_script(scripts.EXTEND)

    def _idle_connections(self) -> Any:
        """The client's pool, whose idle connections a retry drops: after a restart every
        one of them is dead, and each would fail one call. None for a cluster client."""
        return getattr(self.redis, "connection_pool", None)


# Server errors that say Redis cannot take writes for now, through no fault of the call, and
# will again without the caller changing anything: out of memory under `noeviction`
# (expiring leases free it), too few replicas in sync (`min-replicas-to-write`), a
# replica or a master demoted under a failover (READONLY, MASTERDOWN), still loading its
# data, busy in a long script, unable to persist (MISCONF), a cluster resharding or
# down. They become `LockUnavailable` (the services answer 503 and Retry-After). Other
# refusals (NOPERM, NOAUTH, WRONGTYPE, a script error) are the deployment's or the
# code's to fix and stay plain `LockError`: retrying them would not help.
UNAVAILABLE_CODES = frozenset({"OOM", "NOREPLICAS", "READONLY", "MASTERDOWN", "LOADING", "BUSY",
                               "MISCONF", "TRYAGAIN", "CLUSTERDOWN"})
# Refusals redis-py raises as connection errors (a wrong password, an ACL), which a retry
# would not cure.
REFUSED_CODES = frozenset({"NOPERM", "NOAUTH", "WRONGPASS"})
# A server error's code: the reply's first word, or inside a script "... @user_script: 6: -OOM".
_STRIPPED_CODES = {"ReadOnlyError": "READONLY", "OutOfMemoryError": "OOM",
                   "NoPermissionError": "NOPERM", "AuthenticationError": "NOAUTH",
                   "AuthorizationError": "NOPERM"}
_ERROR_CODE = re.compile(r"(?:^|: -)([A-Z]{2,})\b")


def lock_error(exc: BaseException) -> LockError:
    """The `LockError` a failed Redis call raises: `LockUnavailable` if Redis could not be
    reached, did not answer in time, or cannot take writes for now (`UNAVAILABLE_CODES`),
    unless it refused the client's credentials or rights (`REFUSED_CODES`)."""
    code = server_error_code(exc)
    if code not in REFUSED_CODES and (isinstance(exc, RETRYABLE) or code in UNAVAILABLE_CODES):
        return LockUnavailable(f"Redis unavailable: {exc or type(exc).__name__}")
    return LockError(f"Redis refused the lock operation: {exc or type(exc).__name__}")


def server_error_code(exc: BaseException) -> str | None:
    """The error code of a Redis error reply. redis-py (and its fork valkey-py) strip it
    from the message of the errors they have a class for: read it from the class's name."""
    for kind in type(exc).__mro__:
        if kind.__name__ in _STRIPPED_CODES:
            return _STRIPPED_CODES[kind.__name__]
    found = _ERROR_CODE.search(str(exc))
    return found.group(1) if found else None


def check_resources(resources: tuple[str, ...]) -> tuple[str, ...]:
    if not resources:
        raise ValueError("name at least one resource")
    for name in resources:
        if not isinstance(name, str) or not name:
            raise ValueError(f"resource names are non-empty strings, got {name!r}")
    if len(set(resources)) != len(resources):
        raise ValueError(f"resource named twice: {resources}")
    return tuple(resources)


def token_of(value: bytes | str | None) -> int | None:
    """The token in a lock key's value "<token>:<lease id>"."""
    if value is None:
        return None
    text = value.decode() if isinstance(value, bytes) else str(value)
    return int(text.split(":", 1)[0])


def client_retries(redis: Any) -> int:
    """How many times the client itself retries a command that failed to connect or timed out."""
    retry = getattr(redis, "retry", None)  # RedisCluster
    if retry is None:
        get_retry = getattr(redis, "get_retry", None)
        retry = get_retry() if callable(get_retry) else None
    if retry is None:
        return 0
    get_retries = getattr(retry, "get_retries", None)  # valkey-py's Retry has not
    return int(get_retries() if callable(get_retries) else getattr(retry, "_retries", 0))


def _socket_timeout(redis: Any) -> float | None:
    pool = getattr(redis, "connection_pool", None)
    kwargs = getattr(pool, "connection_kwargs", {}) or {}
    timeout = kwargs.get("socket_timeout")
    return float(timeout) if timeout else None
