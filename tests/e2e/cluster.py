"""Several instances of each service as separate processes, on one Redis and one MongoDB.

The processes are a `devstack.Deployment`: orders instance i talks to invoices
instance i % len(invoices), so calls cross processes both ways. Every instance
logs to its own file under the test's tmp directory; a failing test shows
where to look.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

from pymongo import AsyncMongoClient

from devstack import ServiceProcess
from devstack.deployment import Deployment
from devstack.http import call
from devstack.workload import ITEM, USER, pair_disagreement


@dataclass
class Cluster:
    orders: list[ServiceProcess]
    invoices: list[ServiceProcess]
    mongo_url: str
    database: str
    logs: Path
    clients: list[Any] = field(default_factory=list)

    @classmethod
    def start(cls, logs: Path, env: dict[str, str], orders: int = 2, invoices: int = 2,
              orders_env: list[dict[str, str]] | None = None,
              invoices_env: list[dict[str, str]] | None = None) -> "Cluster":
        """`orders_env[i]` / `invoices_env[i]` add variables to instance i only."""
        deployment = Deployment.build(env, counts={"invoices": invoices, "orders": orders},
                                      logs=logs, envs={"invoices": invoices_env or (),
                                                       "orders": orders_env or ()})
        deployment.start()
        return cls(deployment["orders"], deployment["invoices"], env["MONGO_URL"],
                   env["MONGO_DB"], logs)

    def stop(self) -> None:
        Deployment({"invoices": self.invoices, "orders": self.orders}).stop()

    def db(self) -> Any:
        """The cluster's database, read directly (one client, closed by close_clients)."""
        if not self.clients:
            self.clients.append(AsyncMongoClient(self.mongo_url, timeoutMS=10_000,
                                                 tz_aware=True))
        return self.clients[0][self.database]

    async def close_clients(self) -> None:
        for client in self.clients:
            await client.close()

    async def create_order(self, instance: int = 0, quantity: int = 1,
                           value: str = "1.00") -> dict:
        reply = await call("POST", f"{self.orders[instance].url}/orders", {
            "user_id": USER, "item_id": ITEM, "quantity": quantity, "value": Decimal(value)})
        assert reply.status == 201, reply.body
        order: dict = reply.json
        return order

    def restart_without_faults(self, instance: ServiceProcess) -> None:
        """Start a killed instance again, on its port, with its fault hooks off."""
        instance.kill()
        instance.env.pop("DLOCK_FAULTS", None)
        instance.start()

    async def open_intents(self) -> int:
        return int(await self.db()["orders"].count_documents(
            {"$or": [{"intent": {"$exists": True}}, {"status": "pending"}]}))

    async def settled(self, order_ids: list[str], timeout: float) -> list[str]:
        """Wait until no intent is open and every pair agrees; what still differs if not."""
        deadline = time.monotonic() + timeout
        while True:
            problems = await self.disagreements(order_ids)
            if not problems and await self.open_intents() == 0:
                return []
            if time.monotonic() > deadline:
                return problems or [f"{await self.open_intents()} intents still open"]
            await asyncio.sleep(0.2)

    async def disagreements(self, order_ids: list[str]) -> list[str]:
        """Every way an order and its invoice differ, read straight from both services."""
        problems = []
        orders = next(instance for instance in self.orders if instance.running)
        invoices = next(instance for instance in reversed(self.invoices) if instance.running)
        for order_id in order_ids:
            order = (await call("GET", f"{orders.url}/orders/{order_id}")).json
            invoice = (await call(
                "GET", f"{invoices.url}/invoices/{order['invoice_id']}")).json
            problem = pair_disagreement(order, invoice)
            if problem:
                problems.append(f"{order_id}: {problem}")
        return problems


async def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `condition` until it holds; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.05)
