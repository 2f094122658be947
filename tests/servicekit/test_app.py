"""What a factory builds: the parts come back to the caller, none rides in Application.settings,
and orders' HTTP client to invoices is its own."""

from __future__ import annotations

from typing import Awaitable, Callable

import pytest
from tornado.httpclient import AsyncHTTPClient

from tests.stack import Stack, call


@pytest.mark.gen_test(timeout=20)
async def test_a_factory_hands_back_what_it_built_and_stores_no_objects_in_settings(
        stack: Stack) -> None:
    invoices_app, orders_app = stack.apps
    for app in stack.apps:
        assert not {"service", "metrics", "inflight"} & set(app.application.settings)
        assert app.inflight.count == 0
    await stack.create_order()
    metrics = (await call("GET", f"{stack.orders_url}/metrics")).body.decode()
    assert 'route="/orders",status="201"' in metrics
    assert orders_app.metrics.registry.get_sample_value(
        "http_requests_total", {"route": "/orders", "method": "POST", "status": "201"}) == 1
    assert stack.order_service is orders_app.service
    assert stack.invoice_service is invoices_app.service


@pytest.mark.gen_test(timeout=20)
async def test_orders_keeps_its_http_client_to_invoices_to_itself(
        make_stack: Callable[..., Awaitable[Stack]]) -> None:
    before = AsyncHTTPClient.configured_class()
    stack = await make_stack(http_client="curl")
    assert AsyncHTTPClient.configured_class() is before
    assert type(stack.order_service.invoices.http).__name__ == "CurlAsyncHTTPClient"
    assert stack.order_service.invoices.http is not AsyncHTTPClient()
    await stack.create_order()  # the order's invoice went through that client
