"""A span and a count for every write that carries a fencing token.

The stores wrap their fenced writes (built with `fencing.mongo.fence`) in
`observe(...)`; a refused write (no document matched the token condition) is
counted by the service through `refused(...)`, since only the service knows why:
`stale_token`, `lock_not_held` (invoices) or `superseded` (orders).
"""

from __future__ import annotations

from typing import Awaitable, TypeVar

from opentelemetry import trace

from servicekit.metrics import Metrics

T = TypeVar("T")
tracer = trace.get_tracer(__name__)


async def observe(metrics: Metrics | None, store: str, token: int,
                  write: Awaitable[T]) -> T:
    """`write` answers a document or True when accepted, None or False when refused."""
    with tracer.start_as_current_span("fenced write") as span:
        span.set_attribute("fencing.store", store)
        span.set_attribute("fencing.token", token)
        result = await write
        accepted = result is not None and result is not False
        span.set_attribute("fencing.outcome", "accepted" if accepted else "refused")
        if accepted and metrics is not None:
            metrics.fenced_writes.labels(store, "accepted").inc()
        return result


def refused(metrics: Metrics | None, store: str, reason: str) -> None:
    if metrics is not None:
        metrics.fenced_writes.labels(store, reason).inc()
