"""Both services in the caller's event loop, on free ports, against real servers.

`Stack.start(settings)` opens each service's clients, builds its application
with the same factory `python -m orders` / `python -m invoices` use, and
listens on a free loopback port. The tests use it, and the benchmark that
reads one update's trace spans.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tornado.httpserver import HTTPServer

import invoices.app
import orders.app
from invoices.settings import InvoiceSettings
from orders.settings import OrderSettings
from devstack.http import call
from devstack.ports import free_port
from devstack.workload import ITEM, USER
from servicekit.app import ServiceApp
from servicekit.server import MAX_ACCEPTED_BODY, Resources


@dataclass(frozen=True)
class StackSettings(OrderSettings, InvoiceSettings):
    """Both services' settings in one: each reads its own, and the kit's, from it."""


@dataclass
class Stack:
    settings: StackSettings
    orders_url: str = ""
    invoices_url: str = ""
    resources: list[Resources] = field(default_factory=list)
    servers: list[HTTPServer] = field(default_factory=list)
    apps: list[ServiceApp[Any]] = field(default_factory=list)  # invoices, then orders

    @classmethod
    async def start(cls, settings: StackSettings) -> "Stack":
        invoices_port, orders_port = free_port(), free_port()
        settings = dataclasses.replace(
            settings, orders_port=orders_port, invoices_port=invoices_port,
            invoices_url=f"http://127.0.0.1:{invoices_port}")
        stack = cls(settings, f"http://127.0.0.1:{orders_port}",
                    f"http://127.0.0.1:{invoices_port}")
        await stack._serve(invoices.app.build, invoices_port)
        await stack._serve(orders.app.build, orders_port)
        return stack

    async def _serve(self, build: Any, port: int) -> None:
        resources = Resources.open(self.settings)
        self.resources.append(resources)
        app = await build(resources)
        self.apps.append(app)
        server = HTTPServer(app.application, max_body_size=MAX_ACCEPTED_BODY)
        server.listen(port, "127.0.0.1")
        self.servers.append(server)

    async def stop(self) -> None:
        for server in self.servers:
            server.stop()
            await server.close_all_connections()
        for resources in self.resources:
            await resources.close()

    @property
    def lock(self) -> Any:
        """The orders instance's lock (same Redis, same prefix as the invoices one)."""
        return self.resources[-1].lock

    @property
    def order_service(self) -> Any:
        return self.apps[-1].service

    @property
    def invoice_service(self) -> Any:
        return self.apps[0].service

    @property
    def db(self) -> Any:
        return self.resources[-1].mongo[self.settings.mongo_db]

    async def create_order(self, quantity: int = 2, value: Any = "10.50",
                           headers: dict | None = None) -> dict:
        reply = await call("POST", f"{self.orders_url}/orders", {
            "user_id": USER, "item_id": ITEM, "quantity": quantity, "value": Decimal(value)},
            headers)
        if reply.status != 201:
            raise AssertionError(reply.body)
        order: dict = reply.json
        return order

    async def invoice(self, invoice_id: str) -> dict:
        reply = await call("GET", f"{self.invoices_url}/invoices/{invoice_id}")
        if reply.status != 200:
            raise AssertionError(reply.body)
        invoice: dict = reply.json
        return invoice
