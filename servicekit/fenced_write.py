"""A span and a count around every write that carries a fencing token.

The stores call `observe(...)` around their conditional writes; a refused write
(no document matched the token condition) is classified by the service, which
knows why: `stale_token`, `lock_not_held` (invoices) or `superseded` (orders).
"""

from __future__ import annotations

from typing import Awaitable, TypeVar

from opentelemetry import trace

from servicekit.metrics import Metrics

T = TypeVar("T")
tracer = trace.get_tracer(__name__)


async def observe(metrics: Metrics | None, store: str, token: int,
                  write: Awaitable[T | None]) -> T | None:
    with tracer.start_as_current_span("fenced write") as span:
        span.set_attribute("fencing.store", store)
        span.set_attribute("fencing.token", token)
        doc = await write
        span.set_attribute("fencing.outcome", "accepted" if doc is not None else "refused")
        if doc is not None and metrics is not None:
            metrics.fenced_writes.labels(store, "accepted").inc()
        return doc


def refused(metrics: Metrics | None, store: str, reason: str) -> None:
    if metrics is not None:
        metrics.fenced_writes.labels(store, reason).inc()
