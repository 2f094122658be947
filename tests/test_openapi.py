"""docs/openapi.yaml: valid, served by both services, and listing exactly their routes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.routes import served_routes
from tests.stack import Stack, call

SPEC = Path(__file__).parent.parent / "docs" / "openapi.yaml"
SHARED = ("/health", "/ready", "/ping", "/openapi.yaml", "/metrics", "/docs")


def spec_routes() -> set[tuple[str, str, str]]:
    spec = yaml.safe_load(SPEC.read_text())
    routes = set()
    for path, item in spec["paths"].items():
        for method in ("get", "post", "patch", "put", "delete"):
            if method not in item:
                continue
            if path in SHARED:
                services = ["orders", "invoices"]
            else:
                services = ["invoices" if path.startswith("/invoices") else "orders"]
            for service in services:
                routes.add((service, method.upper(), path))
    return routes


def test_the_spec_and_the_routers_list_the_same_routes(stack: Stack) -> None:
    invoices_app, orders_app = (server.request_callback for server in stack.servers)
    served = served_routes("invoices", invoices_app) | served_routes("orders", orders_app)
    assert spec_routes() == served


def test_every_error_response_is_an_error_body() -> None:
    spec = yaml.safe_load(SPEC.read_text())
    for name, response in spec["components"]["responses"].items():
        schema = response["content"]["application/json"]["schema"]["$ref"]
        assert schema.endswith(("/Error", "/StaleToken")), name


@pytest.mark.gen_test(timeout=20)
async def test_both_services_serve_the_spec(stack: Stack) -> None:
    for base in (stack.orders_url, stack.invoices_url):
        reply = await call("GET", f"{base}/openapi.yaml")
        assert reply.status == 200 and reply.headers["Content-Type"].startswith(
            "application/yaml")
        assert reply.body == SPEC.read_bytes()
