"""A holder that is alive keeps its lease past the ttl; one that is frozen does not.

The update stops inside its critical section (a gate at `after_lock`) for
longer than the lease: the renewal keeps the pair leased, so a second update
is 423 and the first one still commits. A frozen process renews nothing (its
renewal task is frozen with it): tests/e2e/test_paused_holder.py.
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

import pytest

from tests.orders.gates import Gates
from tests.stack import Stack, call

TTL_MS = 600


def extensions(stack: Stack) -> float:
    registry = stack.order_service.lock.metrics.registry
    return float(registry.get_sample_value("lock_extensions_total",
                                           {"outcome": "extended"}) or 0)


@pytest.mark.gen_test(timeout=30)
async def test_a_holder_inside_its_critical_section_keeps_its_lease_past_the_ttl(
        make_stack: Callable[..., Awaitable[Stack]], monkeypatch: pytest.MonkeyPatch) -> None:
    stack = await make_stack(test_mode=True, lock_ttl_ms=TTL_MS, lock_wait_ms=0)
    order = await stack.create_order()
    gates = Gates("after_lock").install(stack, monkeypatch)
    url = f"{stack.orders_url}/orders/{order['id']}"
    first = asyncio.ensure_future(call("PATCH", url, {"update_time": "2030-01-01T00:00:00Z",
                                                      "quantity": 3}))
    await gates.wait("after_lock")
    while extensions(stack) < 4:  # renewed every ttl/3: held beyond its first ttl
        await asyncio.sleep(0.05)

    second = await call("PATCH", url, {"update_time": "2030-01-01T00:00:01Z", "quantity": 4})
    assert (second.status, second.error) == (423, "locked"), second.body
    gates.open("after_lock")
    reply = await first
    assert reply.status == 200 and reply.json["quantity"] == 3, reply.body
    assert (await stack.invoice(order["invoice_id"]))["total"] == reply.json["total"]
