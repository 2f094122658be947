"""A span and a count around every write that carries a fencing token.

The stores call `observe(...)` around their conditional writes; a refused write
(no document matched the token condition) is classified by the service, which
knows why: `stale_token`, `lock_not_held` (invoices) or `superseded` (orders).
"""

from __future__ import annotations

from typing import Any, Awaitable, TypeVar

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


async def update_then_read(collection: Any, query: dict, update_spec: dict) -> dict | None:
    """One conditional `update_one` (the token check and the write in one atomic
    operation), then the document read back by `_id` if it matched; None if not.

    Not `find_one_and_update`: SecantusDB, the embedded MongoDB-wire server, scans
    the whole collection for findAndModify (2 ms at 300 documents, 14 ms at 3,000)
    while `update_one` and `find_one` by `_id` stay under 1 ms. The read-back runs
    under the writer's lease, so it sees the write it follows.
    """
    if not await update(collection, query, update_spec):
        return None
    doc: dict | None = await collection.find_one({"_id": query["_id"]})
    return doc


async def update(collection: Any, query: dict, update_spec: dict) -> bool:
    """One conditional `update_one`; True if a document matched (and was written)."""
    result = await collection.update_one(query, update_spec)
    return bool(result.matched_count)


def refused(metrics: Metrics | None, store: str, reason: str) -> None:
    if metrics is not None:
        metrics.fenced_writes.labels(store, reason).inc()
