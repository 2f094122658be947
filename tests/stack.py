"""Both services in the test's own event loop, on free ports, against real servers.

`Stack.start(settings)` opens each service's clients, builds its application
with the same factory `python -m orders` / `python -m invoices` use, and
listens on a free loopback port. `call()` is a small HTTP client that never
raises on an error status, so a test reads status, headers and body alike.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer

import invoices.app
import orders.app
from devstack import free_port
from servicekit import jsonio
from servicekit.server import MAX_ACCEPTED_BODY, Resources
from servicekit.settings import Settings


@dataclass
class Reply:
    status: int
    headers: Any
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body, parse_float=Decimal)

    @property
    def error(self) -> str | None:
        return self.json.get("error") if self.body else None


async def call(method: str, url: str, body: Any = None, headers: dict | None = None,
               raw: bytes | None = None, timeout: float = 10.0) -> Reply:
    """One request; `body` is sent as JSON, `raw` as it is."""
    headers = dict(headers or {})
    payload = raw
    if body is not None:
        payload = jsonio.dumps(body).encode()  # Decimals as exact JSON numbers
        headers.setdefault("Content-Type", "application/json")
    if payload is None and method in ("POST", "PATCH", "PUT"):
        payload = b""
    response = await AsyncHTTPClient().fetch(
        url, method=method, headers=headers, body=payload, raise_error=False,
        allow_nonstandard_methods=True, request_timeout=timeout, connect_timeout=timeout)
    return Reply(response.code, response.headers, response.body or b"")


@dataclass
class Stack:
    settings: Settings
    orders_url: str = ""
    invoices_url: str = ""
    resources: list[Resources] = field(default_factory=list)
    servers: list[HTTPServer] = field(default_factory=list)

    @classmethod
    async def start(cls, settings: Settings) -> "Stack":
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
        server = HTTPServer(app, max_body_size=MAX_ACCEPTED_BODY)
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
        return self.servers[-1].request_callback.settings["service"]  # type: ignore

    @property
    def db(self) -> Any:
        return self.resources[-1].mongo[self.settings.mongo_db]

    async def create_order(self, quantity: int = 2, value: Any = "10.50",
                           headers: dict | None = None) -> dict:
        reply = await call("POST", f"{self.orders_url}/orders", {
            "user_id": USER, "item_id": ITEM, "quantity": quantity, "value": Decimal(value)},
            headers)
        assert reply.status == 201, reply.body
        order: dict = reply.json
        return order

    async def invoice(self, invoice_id: str) -> dict:
        reply = await call("GET", f"{self.invoices_url}/invoices/{invoice_id}")
        assert reply.status == 200, reply.body
        invoice: dict = reply.json
        return invoice


USER = "6f1d6c4e-6a8e-4e55-9a43-5b0c1f3e2a10"
ITEM = "0b7e3c52-2f5d-4c9b-8a55-7c7f0f1e9d21"
