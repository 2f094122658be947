"""One PATCH /orders/{id} is one trace across both services, with the lease inside it."""

from __future__ import annotations

from typing import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.tornado import TornadoInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from servicekit.tracing import instrument, tracing_wanted
from tests.stack import Stack, call

_exporter = InMemorySpanExporter()


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    """A provider with an in-memory exporter (set once per process: OpenTelemetry allows one)."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_exporter))
    trace.set_tracer_provider(provider)
    instrument()
    yield _exporter
    for instrumentor in (TornadoInstrumentor(), PymongoInstrumentor(), RedisInstrumentor()):
        instrumentor.uninstrument()
    _exporter.clear()


@pytest.mark.gen_test(timeout=20)
async def test_an_update_is_one_trace_across_both_services_with_the_lease_inside(
        spans: InMemorySpanExporter, stack: Stack) -> None:
    order = await stack.create_order()
    spans.clear()
    reply = await call("PATCH", f"{stack.orders_url}/orders/{order['id']}",
                       {"update_time": "2030-01-01T00:00:00Z", "quantity": 3})
    assert reply.status == 200
    finished = spans.get_finished_spans()
    by_name = {span.name: span for span in finished}
    orders_server = by_name["PATCH /orders/{raw_id}"]
    invoices_server = by_name["PATCH /invoices/{raw_id}"]
    lease = by_name["acquire lease"]
    trace_id = orders_server.context.trace_id
    assert invoices_server.context.trace_id == trace_id, "traceparent went to invoices"
    assert lease.context.trace_id == trace_id and lease.parent.span_id == \
        orders_server.context.span_id
    assert lease.attributes["fencing.outcome"] == "acquired"
    token = lease.attributes["fencing.token"]
    writes = [span for span in finished if span.name == "fenced write"]
    assert {(w.attributes["fencing.store"], w.attributes["fencing.token"],
             w.attributes["fencing.outcome"]) for w in writes} >= {
        ("orders", token, "accepted"), ("invoices", token, "accepted")}
    assert any(span.name.startswith("EVALSHA") for span in finished), "redis-py spans"
    assert any(span.name.endswith(".update") for span in finished), "PyMongo spans"
    # Everything but the test's own client span belongs to the one trace.
    assert {span.context.trace_id for span in finished} == {trace_id}


def test_tracing_is_off_unless_the_standard_variables_ask_for_it() -> None:
    assert not tracing_wanted({})
    assert tracing_wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318"})
    assert tracing_wanted({"OTEL_TRACES_EXPORTER": "console"})
    assert not tracing_wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x",
                               "OTEL_SDK_DISABLED": "true"})
