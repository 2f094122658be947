"""MongoDB operations per call, counted black-box by the MongoDB-wire server itself.

SecantusDB's `serverStatus` opcounters count every insert, query, update and delete
it served, whoever sent it. Each call here runs alone, uncontended, on a server of
the test's own, so the difference of the counters around it is what that one call
cost: the orders calls include what invoices spent on their behalf.
"""

from __future__ import annotations

from typing import Awaitable, Callable, Iterator

import pytest
from pymongo import AsyncMongoClient

from devstack import MongoServer
from servicekit.lock_names import invoice_lock
from tests.stack import ITEM, USER, Stack, call

COUNTED = ("insert", "query", "update", "delete", "getmore")

# The most each call may spend (see the docstrings of orders.service and invoices.service
# for why each remaining operation is needed).
ORDERS_BUDGET = {"create": 3, "update": 4, "delete": 4, "get": 1}
INVOICES_BUDGET = {"create": 1, "update": 1, "delete": 1, "get": 1}


class Counter:
    def __init__(self, url: str) -> None:
        self.client: AsyncMongoClient = AsyncMongoClient(url, timeoutMS=10_000)

    async def counters(self) -> dict[str, int]:
        status = await self.client.admin.command("serverStatus")
        return {name: int(status["opcounters"].get(name, 0)) for name in COUNTED}

    async def spent(self, work: Callable[[], Awaitable[object]]) -> dict[str, int]:
        """Operations of each kind the server served while `work` ran."""
        before = await self.counters()
        await work()
        after = await self.counters()
        return {name: after[name] - before[name] for name in COUNTED if after[name] > before[name]}


@pytest.fixture
def own_stack(io_loop: object, make_mongo_server: Callable[[], MongoServer],
              make_stack: Callable[..., Awaitable[Stack]]) -> Iterator[tuple[Stack, Counter]]:
    server = make_mongo_server()
    running = io_loop.run_sync(lambda: make_stack(mongo_url=server.url))  # type: ignore
    counter = Counter(server.url)
    yield running, counter
    io_loop.run_sync(counter.client.close)  # type: ignore


async def expect(status: int, method: str, url: str, body: object = None,
                 headers: dict | None = None) -> dict:
    reply = await call(method, url, body, headers=headers)
    assert reply.status == status, (method, url, reply.status, reply.body)
    return reply.json if reply.body else {}


@pytest.mark.gen_test(timeout=60)
async def test_orders_calls_spend_at_most_their_budget(own_stack: tuple[Stack, Counter]) -> None:
    stack, counter = own_stack
    await stack.create_order()  # indexes, connections and caches warmed up
    spent: dict[str, dict[str, int]] = {}
    made: dict = {}

    async def create() -> None:
        made.update(await expect(201, "POST", f"{stack.orders_url}/orders", {
            "user_id": USER, "item_id": ITEM, "quantity": 2, "value": 1.25}))

    spent["create"] = await counter.spent(create)
    url = f"{stack.orders_url}/orders/{made['id']}"
    spent["get"] = await counter.spent(lambda: expect(200, "GET", url))
    spent["update"] = await counter.spent(lambda: expect(
        200, "PATCH", url, {"update_time": "2030-01-01T00:00:00Z", "quantity": 3}))
    spent["delete"] = await counter.spent(lambda: expect(204, "DELETE", url))

    totals = {name: sum(kinds.values()) for name, kinds in spent.items()}
    assert totals == {name: min(totals[name], budget)
                      for name, budget in ORDERS_BUDGET.items()}, spent
    assert totals["get"] == 1, spent
    invoice = await stack.invoice(made["invoice_id"])
    assert invoice["status"] == "deleted" and str(invoice["total"]) == "3.75"


@pytest.mark.gen_test(timeout=60)
async def test_invoices_calls_spend_at_most_their_budget(
        own_stack: tuple[Stack, Counter]) -> None:
    stack, counter = own_stack
    order = await stack.create_order()
    lock = stack.lock
    spent: dict[str, dict[str, int]] = {}
    made: dict = {}
    invoices = f"{stack.invoices_url}/invoices"

    async def create() -> None:
        made.update(await expect(201, "POST", invoices, {"user_id": USER, "total": 2}))

    spent["create"] = await counter.spent(create)
    spent["get"] = await counter.spent(lambda: expect(200, "GET", f"{invoices}/{made['id']}"))
    async with lock.hold(invoice_lock(made["id"])) as lease:
        token = {"Fencing-Token": str(lease.token), "Prefer": "return=minimal"}
        spent["update"] = await counter.spent(lambda: expect(
            204, "PATCH", f"{invoices}/{made['id']}", {"total": 3}, token))
        spent["delete"] = await counter.spent(lambda: expect(
            204, "DELETE", f"{invoices}/{made['id']}", None, token))
    assert order["status"] == "created"
    totals = {name: sum(kinds.values()) for name, kinds in spent.items()}
    assert totals == INVOICES_BUDGET, spent
