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

from servicekit.handlers import (InFlight, JsonHandler, NotFoundHandler, common_routes,
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
