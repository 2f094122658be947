"""The application a service's factory builds, and what it hands back besides.

`make_application` adds the common routes and gives every handler the
instance's `InFlight` counter and `Metrics` as arguments, so nothing travels
through `Application.settings`. A factory returns a `ServiceApp`: the
application for the server, the service for the tests and the repairer, the
counter for a clean stop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Sequence, TypeVar

from tornado.web import Application

from servicekit.docs_page import DocsHandler
from servicekit.handlers import (HealthHandler, InFlight, JsonHandler, MetricsHandler,
                                 NotFoundHandler, OpenApiHandler, PingHandler, ReadyHandler,
                                 log_request)
from servicekit.metrics import Metrics

S = TypeVar("S")

Route = tuple[str, type, dict[str, Any]]


@dataclass
class ServiceApp(Generic[S]):
    application: Application
    service: S
    metrics: Metrics
    inflight: InFlight


def common_routes(mongo: Any, redis: Any) -> list[Route]:
    """What every service answers besides its own routes."""
    return [(r"/health", HealthHandler, {}), (r"/ping", PingHandler, {}),
            (r"/ready", ReadyHandler, {"mongo": mongo, "redis": redis}),
            (r"/openapi.yaml", OpenApiHandler, {}), (r"/metrics", MetricsHandler, {}),
            (r"/docs", DocsHandler, {})]


def make_application(routes: Sequence[Route], mongo: Any, redis: Any,
                     metrics: Metrics) -> tuple[Application, InFlight]:
    """The service's routes and the common ones, each `JsonHandler` told of `inflight`
    and `metrics` (another handler gets only its own arguments); unknown paths answer
    the JSON 404."""
    inflight = InFlight()
    shared = {"inflight": inflight, "metrics": metrics}
    specs = [(pattern, handler, {**shared, **args} if issubclass(handler, JsonHandler) else args)
             for pattern, handler, args in [*routes, *common_routes(mongo, redis)]]
    application = Application(specs, default_handler_class=NotFoundHandler,
                              default_handler_args=shared, log_function=log_request)
    return application, inflight
