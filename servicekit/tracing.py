"""OpenTelemetry tracing, off unless the standard OTEL_* variables turn it on.

On when OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set,
or OTEL_TRACES_EXPORTER is `otlp` or `console`; OTEL_SDK_DISABLED=true keeps it
off. Spans go by OTLP over HTTP (port 4318, as Jaeger all-in-one takes them).
`OTEL_SERVICE_NAME` defaults to the service's name.

What is traced: Tornado server and client spans (the W3C `traceparent` header
goes from orders to invoices, so one PATCH /orders/{id} is one trace across
both services), PyMongo commands and redis-py calls (the official
instrumentations), and spans of our own: "acquire lease" (token, resources,
wait, outcome) and "fenced write" (store, token, outcome).
"""

from __future__ import annotations

import logging
import os
from typing import Mapping

from opentelemetry import trace
from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.tornado import TornadoInstrumentor

log = logging.getLogger(__name__)


def tracing_wanted(environ: Mapping[str, str]) -> bool:
    if environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    return bool(environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
                or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
                or environ.get("OTEL_TRACES_EXPORTER", "").lower() in ("otlp", "console"))


def instrument() -> None:
    """Patch Tornado, PyMongo and redis-py to make spans (into whatever provider is set)."""
    for instrumentor in (TornadoInstrumentor(), PymongoInstrumentor(), RedisInstrumentor()):
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument()


def setup_tracing(service: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Set up the SDK and the instrumentations if the environment asks for tracing."""
    if not tracing_wanted(environ):
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (BatchSpanProcessor, ConsoleSpanExporter,
                                                SpanExporter)

    provider = TracerProvider(resource=Resource.create(
        {"service.name": environ.get("OTEL_SERVICE_NAME") or service}))
    exporter: SpanExporter
    if environ.get("OTEL_TRACES_EXPORTER", "").lower() == "console":
        exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        exporter = OTLPSpanExporter()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    instrument()
    log.info("tracing on: spans of %s go to %s", service, type(exporter).__name__)
    return True


def current_ids() -> tuple[str, str] | None:
    """(trace_id, span_id) of the current span, as hex, or None outside any span."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")
