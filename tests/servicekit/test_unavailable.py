"""Redis or MongoDB down or frozen: a quick 503 with Retry-After, never a hang, nothing changed."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Callable, Iterator

import pytest
from tornado.ioloop import IOLoop

from devstack import MongoServer, RedisServer
from servicekit.settings import Settings
from orders.repair import Repairer
from tests.stack import LATER, Stack, call


@pytest.fixture
def own_stack(io_loop: IOLoop, service_settings: Settings,
              make_redis_server: Callable[[], RedisServer],
              make_mongo_server: Callable[[], MongoServer]
              ) -> Iterator[tuple[Stack, RedisServer, MongoServer]]:
    redis, mongo = make_redis_server(), make_mongo_server()
    settings = dataclasses.replace(service_settings, redis_url=redis.url, mongo_url=mongo.url)
    running = io_loop.run_sync(lambda: Stack.start(settings))
    yield running, redis, mongo
    for server in (redis, mongo):
        if server.running:
            server.resume()
    io_loop.run_sync(running.stop)


def assert_unavailable(reply: object, within: float, started: float) -> None:
    assert reply.status == 503 and reply.error == "unavailable", reply.body  # type: ignore
    assert int(reply.headers["Retry-After"]) >= 1  # type: ignore
    assert time.monotonic() - started < within


@pytest.mark.gen_test(timeout=40)
async def test_redis_down_gives_503_and_the_order_stays_as_it_was(
        own_stack: tuple[Stack, RedisServer, MongoServer]) -> None:
    stack, redis, _ = own_stack
    order = await stack.create_order()
    redis.kill()
    for method, body in (("PATCH", {"update_time": LATER, "quantity": 9}), ("DELETE", None)):
        started = time.monotonic()
        reply = await call(method, f"{stack.orders_url}/orders/{order['id']}", body)
        assert_unavailable(reply, 5.0, started)
    started = time.monotonic()
    assert_unavailable(await call("GET", f"{stack.orders_url}/ready"), 5.0, started)
    assert (await call("GET", f"{stack.orders_url}/orders/{order['id']}")).json == order
    assert (await stack.invoice(order["invoice_id"]))["total"] == order["total"]


@pytest.mark.gen_test(timeout=40)
async def test_a_frozen_redis_gives_503_within_its_timeout(
        own_stack: tuple[Stack, RedisServer, MongoServer]) -> None:
    stack, redis, _ = own_stack
    order = await stack.create_order()
    redis.pause()
    started = time.monotonic()
    reply = await call("PATCH", f"{stack.orders_url}/orders/{order['id']}",
                       {"update_time": LATER, "quantity": 9})
    assert_unavailable(reply, 3 * stack.settings.redis_timeout_ms / 1000 + 2, started)
    redis.resume()
    # Once Redis answers again, the service does too (the timed-out lease may still be
    # held for its ttl, so allow for a 423 on the way).
    deadline = time.monotonic() + 15
    while True:
        reply = await call("PATCH", f"{stack.orders_url}/orders/{order['id']}",
                           {"update_time": LATER, "quantity": 9})
        if reply.status == 200 or time.monotonic() > deadline:
            break
        assert reply.status in (423, 503), reply.body
        await asyncio.sleep(0.2)
    assert reply.status == 200 and reply.json["quantity"] == 9
    assert await lock_keys(stack) == [], "no lease left behind"


@pytest.mark.gen_test(timeout=40)
async def test_mongodb_down_gives_503_on_every_route_that_needs_it(
        own_stack: tuple[Stack, RedisServer, MongoServer]) -> None:
    stack, _, mongo = own_stack
    order = await stack.create_order()
    mongo.pause()
    within = stack.settings.mongo_timeout_ms / 1000 + 3
    for method, url, body in (
            ("GET", f"{stack.orders_url}/orders/{order['id']}", None),
            ("PATCH", f"{stack.orders_url}/orders/{order['id']}",
             {"update_time": LATER, "quantity": 9}),
            ("POST", f"{stack.invoices_url}/invoices", {"user_id": order["user_id"],
                                                        "total": 1}),
            ("GET", f"{stack.orders_url}/ready", None)):
        started = time.monotonic()
        assert_unavailable(await call(method, url, body), within, started)
    mongo.resume()
    assert (await call("GET", f"{stack.orders_url}/orders/{order['id']}")).json == order
    assert await lock_keys(stack) == [], "every lease was released"


@pytest.mark.gen_test(timeout=40)
async def test_mongodb_restarted_during_requests_leaves_nothing_half_done(
        own_stack: tuple[Stack, RedisServer, MongoServer]) -> None:
    stack, _, mongo = own_stack
    orders = [await stack.create_order() for _ in range(4)]

    async def update(order: dict) -> int:
        reply = await call("PATCH", f"{stack.orders_url}/orders/{order['id']}",
                           {"update_time": LATER, "quantity": 7})
        return reply.status

    updates = [asyncio.ensure_future(update(order)) for order in orders]
    await asyncio.sleep(0.01)
    await IOLoop.current().run_in_executor(None, mongo.restart)
    statuses = await asyncio.gather(*updates)
    assert set(statuses) <= {200, 423, 424, 503}, statuses
    repairer = Repairer(stack.order_service, 100, 0)
    await repairer.run_once()
    for order in orders:
        current = (await call("GET", f"{stack.orders_url}/orders/{order['id']}")).json
        invoice = await stack.invoice(order["invoice_id"])
        assert current["total"] == invoice["total"] and current["total"] in (
            order["total"], 7 * order["value"])
    assert await lock_keys(stack) == []


async def lock_keys(stack: Stack) -> list[bytes]:
    return [key async for key in stack.lock.redis.scan_iter(
        f"{stack.settings.lock_prefix}:*:lock:*")]
