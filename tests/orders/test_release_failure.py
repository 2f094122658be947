"""A lease that cannot be released does not change the answer.

Redis is stopped after the change was committed, just before the release
(`before_release`). The change stands, so the answer says so; the lease ends
by its ttl, and the failed release is logged and counted.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Awaitable, Callable

import pytest
from tornado.ioloop import IOLoop

from devstack import RedisServer
from orders.repair import Repairer
from tests.orders.gates import Gates
from tests.orders.test_repair import cut_off
from tests.stack import Reply, Stack, call

LATER = "2030-01-01T00:00:00Z"


async def own_redis_stack(make_stack: Callable[..., Awaitable[Stack]],
                          make_redis_server: Callable[[], RedisServer]
                          ) -> tuple[Stack, RedisServer]:
    redis = make_redis_server()
    return await make_stack(test_mode=True, redis_url=redis.url), redis


def release_errors(stack: Stack) -> float:
    registry = stack.order_service.lock.metrics.registry
    return float(registry.get_sample_value("lock_releases_total", {"outcome": "error"}) or 0)


async def stop_redis_at_release(stack: Stack, redis: RedisServer, gates: Gates) -> None:
    await gates.wait("before_release")
    await IOLoop.current().run_in_executor(None, redis.kill)
    gates.open("before_release")


async def update_with_redis_killed_at_release(
        make_stack: Callable[..., Awaitable[Stack]],
        make_redis_server: Callable[[], RedisServer], monkeypatch: pytest.MonkeyPatch,
        update_time: str) -> tuple[Stack, dict, Reply]:
    """An order of 2 x 10.50, then a PATCH to quantity 4 whose release meets no Redis."""
    stack, redis = await own_redis_stack(make_stack, make_redis_server)
    order = await stack.create_order(quantity=2, value="10.50")
    gates = Gates("before_release").install(stack, monkeypatch)
    updating = asyncio.ensure_future(call(
        "PATCH", f"{stack.orders_url}/orders/{order['id']}", {"update_time": update_time,
                                                              "quantity": 4}))
    await stop_redis_at_release(stack, redis, gates)
    return stack, order, await updating


@pytest.mark.gen_test(timeout=30)
async def test_a_committed_update_is_answered_200_when_the_release_fails(
        make_stack: Callable[..., Awaitable[Stack]],
        make_redis_server: Callable[[], RedisServer], monkeypatch: pytest.MonkeyPatch) -> None:
    stack, order, reply = await update_with_redis_killed_at_release(
        make_stack, make_redis_server, monkeypatch, LATER)
    assert reply.status == 200, reply.body
    assert reply.json["total"] == Decimal("42")
    assert (await stack.invoice(order["invoice_id"]))["total"] == Decimal("42")
    assert (await stack.db["orders"].find_one({"_id": order["id"]}))["total_cents"] == 4200
    assert release_errors(stack) == 1


@pytest.mark.gen_test(timeout=30)
async def test_a_refusal_keeps_its_own_answer_when_the_release_fails(
        make_stack: Callable[..., Awaitable[Stack]],
        make_redis_server: Callable[[], RedisServer], monkeypatch: pytest.MonkeyPatch) -> None:
    stack, order, reply = await update_with_redis_killed_at_release(
        make_stack, make_redis_server, monkeypatch, "2000-01-01T00:00:00Z")
    assert (reply.status, reply.error) == (409, "event_outdated"), reply.body
    assert (await stack.invoice(order["invoice_id"]))["total"] == Decimal("21")
    assert release_errors(stack) == 1


@pytest.mark.gen_test(timeout=30)
async def test_the_repairer_counts_a_settled_order_when_its_release_fails(
        make_stack: Callable[..., Awaitable[Stack]],
        make_redis_server: Callable[[], RedisServer], monkeypatch: pytest.MonkeyPatch) -> None:
    stack, redis = await own_redis_stack(make_stack, make_redis_server)
    order = await stack.create_order(quantity=2, value="10.50")
    await cut_off(stack, order, "update", invoice_written=True)
    gates = Gates("before_release").install(stack, monkeypatch)
    repairer = Repairer(stack.order_service, 100, 0)
    repairing = asyncio.ensure_future(repairer.run_once())
    await stop_redis_at_release(stack, redis, gates)
    result = await repairing

    assert (result.settled, result.failed) == (1, 0)
    assert (await stack.invoice(order["invoice_id"]))["total"] == Decimal("21")
    assert "intent" not in await stack.db["orders"].find_one({"_id": order["id"]})
    assert release_errors(stack) == 1
