"""A FencedLock seen from outside: metrics, a trace span and one log line per transition.

The services hold an `ObservedLock` instead of the `FencedLock` itself; it has
the same methods and adds nothing to what they do. `fencing/` stays free of
metrics and tracing, for whoever takes it into another service.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, AsyncIterator

from opentelemetry import trace

from fencing import FencedLock, Lease, LockBusy, LockError
from servicekit.metrics import Metrics

log = logging.getLogger("servicekit.lock")
tracer = trace.get_tracer(__name__)


class ObservedLock:
    def __init__(self, lock: FencedLock, metrics: Metrics) -> None:
        self.lock = lock
        self.metrics = metrics
        self._acquired_at: dict[str, float] = {}

    @property
    def ttl_ms(self) -> int:
        return self.lock.ttl_ms

    @property
    def redis(self) -> Any:
        return self.lock.redis

    async def acquire(self, *resources: str, timeout: float | None = None,
                      floor: int | None = None) -> Lease | None:
        started = time.monotonic()
        with tracer.start_as_current_span("acquire lease") as span:
            span.set_attribute("fencing.resources", list(resources))
            span.set_attribute("fencing.floor", floor or 0)
            try:
                lease = await self.lock.acquire(*resources, timeout=timeout, floor=floor)
            except LockError:
                self._count("error", started, span)
                raise
            waited = self._count("acquired" if lease else "timeout" if timeout else "busy",
                                 started, span)
            if lease is None:
                log.info("lease busy: %s (waited %.1f ms)", ", ".join(resources), waited * 1000,
                         extra={"event": "lease_busy", "resources": list(resources)})
                return None
            span.set_attribute("fencing.token", lease.token)
            self._acquired_at[lease.lease_id] = time.monotonic()
            log.info("lease acquired: token %s on %s (waited %.1f ms)", lease.token,
                     ", ".join(resources), waited * 1000,
                     extra={"event": "lease_acquired", "token": lease.token,
                            "resources": list(resources)})
            return lease

    async def release(self, lease: Lease) -> bool:
        held_since = self._acquired_at.pop(lease.lease_id, None)
        if held_since is not None:
            self.metrics.lock_hold.observe(time.monotonic() - held_since)
        try:
            released = await self.lock.release(lease)
        except LockError:
            self.metrics.lock_releases.labels("error").inc()
            raise
        self.metrics.lock_releases.labels("released" if released else "not_held").inc()
        if not released:
            self.metrics.leases_lost.inc()
        log.info("lease %s: token %s on %s", "released" if released else "already gone",
                 lease.token, ", ".join(lease.resources),
                 extra={"event": "lease_released" if released else "lease_lost",
                        "token": lease.token, "resources": list(lease.resources)})
        return released

    @contextlib.asynccontextmanager
    async def hold(self, *resources: str, timeout: float | None = None,
                   floor: int | None = None, max_hold: float | None = None
                   ) -> AsyncIterator[Lease]:
        """`async with lock.hold(...) as lease:` acquire, act, release, each step observed.

        Raises `LockBusy` if the resources were not taken (within `timeout`), a
        `LockError` if Redis failed during the acquire. While the block runs, the
        lease is renewed by `FencedLock.keep_alive`, the renewals of
        `FencedLock.hold(keep_alive=True)`: every third of its ttl, for at most
        `max_hold` seconds, stopped before the release; a renewal that finds the
        lease gone sets `lease.lost`. They go through this lock's `extend`, so
        that each one is counted and logged.
        The stores' token checks decide in any case.

        The block's outcome is the caller's answer. A release that fails (Redis
        gone) is logged and counted, `lock_releases_total{outcome="error"}`, and
        not raised: a committed change must not be reported as failed, and a
        refusal keeps its reason. The lease then ends by its ttl.
        """
        lease = await self.acquire(*resources, timeout=timeout, floor=floor)
        if lease is None:
            raise LockBusy(tuple(resources), timeout)
        renewer = asyncio.create_task(self.lock.keep_alive(lease, max_hold, extend=self.extend))
        try:
            yield lease
        finally:
            renewer.cancel()
            await asyncio.gather(renewer, return_exceptions=True)
            try:
                await self.release(lease)
            except LockError as exc:
                log.warning("lease not released: token %s on %s (%s); it ends by its ttl "
                            "within %d ms", lease.token, ", ".join(lease.resources), exc,
                            self.ttl_ms, extra={"event": "lease_release_failed",
                                                "token": lease.token,
                                                "resources": list(lease.resources)})

    async def extend(self, lease: Lease) -> bool:
        try:
            extended = await self.lock.extend(lease)
        except LockError:
            self.metrics.lock_extensions.labels("error").inc()
            raise
        self.metrics.lock_extensions.labels("extended" if extended else "lost").inc()
        if not extended:
            self.metrics.leases_lost.inc()
        log.info("lease %s: token %s", "extended" if extended else "lost before extending",
                 lease.token, extra={"event": "lease_extended" if extended else "lease_lost",
                                     "token": lease.token})
        return extended

    async def holder(self, resource: str) -> int | None:
        return await self.lock.holder(resource)

    async def close(self) -> None:
        await self.lock.close()

    def _count(self, outcome: str, started: float, span: Any) -> float:
        waited = time.monotonic() - started
        self.metrics.lock_acquisitions.labels(outcome).inc()
        self.metrics.lock_wait.observe(waited)
        span.set_attribute("fencing.outcome", outcome)
        span.set_attribute("fencing.wait_seconds", waited)
        return waited
