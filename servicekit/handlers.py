"""The base handler of both services, and the routes they share."""

from __future__ import annotations

import asyncio
import importlib.resources
import logging
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from tornado.httputil import HTTPServerRequest
from tornado.web import Application, HTTPError, RequestHandler

from servicekit import jsonio
from servicekit.clients import ping_mongo, ping_redis, unavailable
from servicekit.metrics import Metrics
from servicekit.errors import (ERROR_TABLE, ErrorTable, MethodNotAllowed, NotFound,
                               PayloadTooLarge, ServiceError, Unauthorized,
                               UnsupportedMediaType, describe)

log = logging.getLogger(__name__)
access_log = logging.getLogger("access")

MAX_BODY_BYTES = 64 * 1024
_BODY_METHODS = ("POST", "PATCH", "PUT")


@dataclass
class InFlight:
    """Requests being served, so a stopping instance can wait for them."""

    count: int = 0
    idle: asyncio.Event = field(default_factory=asyncio.Event)

    def enter(self) -> None:
        self.count += 1
        self.idle.clear()

    def leave(self) -> None:
        self.count -= 1
        if self.count == 0:
            self.idle.set()

    async def wait_idle(self, timeout: float) -> bool:
        if self.count == 0:
            return True
        try:
            await asyncio.wait_for(self.idle.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False


class JsonHandler(RequestHandler):
    """Parses JSON bodies in prepare() and renders every error in write_error().

    Handlers raise `ServiceError`s (or let a dependency's error through);
    nothing writes an error body by hand. A service's handlers set `errors` to
    its own table, which extends the shared one. Every route passes `inflight`
    and `metrics` (see `servicekit.app`); the rest of its arguments go to
    `initialize`.
    """

    body: Any = None
    _counted = False
    route = "unmatched"  # the route's pattern, for metrics and logs
    errors: ErrorTable = ERROR_TABLE

    def __init__(self, application: Application, request: HTTPServerRequest, *,
                 inflight: InFlight, metrics: Metrics, **kwargs: Any) -> None:
        self.inflight = inflight
        self.metrics = metrics
        super().__init__(application, request, **kwargs)

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")

    def prepare(self) -> None:
        self.inflight.enter()
        self._counted = True
        self.authorize()
        raw = self.request.body
        if len(raw) > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"the body is over {MAX_BODY_BYTES} bytes")
        if self.request.method in _BODY_METHODS and raw:
            media_type = self.request.headers.get("Content-Type", "").split(";")[0].strip()
            if media_type.lower() != "application/json":
                raise UnsupportedMediaType("send the body as application/json")
            self.body = jsonio.loads(raw)

    def allowed_methods(self) -> list[str]:
        """The methods this route has (for the Allow header of a 405)."""
        base = RequestHandler
        return [method for method in ("GET", "POST", "PATCH", "PUT", "DELETE")
                if getattr(type(self), method.lower()) is not getattr(base, method.lower())]

    def authorize(self) -> None:
        """Raise Unauthorized if the caller may not make this request; anyone may, here."""

    def on_finish(self) -> None:
        if self._counted:
            self.inflight.leave()
        method, status = self.request.method or "", str(self.get_status())
        self.metrics.http_requests.labels(self.route, method, status).inc()
        self.metrics.http_duration.labels(self.route, method).observe(self.request.request_time())

    def send_json(self, status: int, value: Any) -> None:
        self.set_status(status)
        self.finish(jsonio.dumps(value))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        error = self._as_service_error(exc, status_code)
        status, code, retry_after = (describe(error, self.errors) if error
                                     else (status_code, "error", None))
        if error is None:
            message = "internal error" if status >= 500 else self._reason
            code = "internal_error" if status >= 500 else "error"
        else:
            message = error.message
        self.clear_header("Retry-After")
        if retry_after is not None:
            self.set_header("Retry-After", str(retry_after))
        if isinstance(error, Unauthorized):
            self.set_header("WWW-Authenticate", f'Bearer realm="{error.realm}"')
        if status == 405:
            self.set_header("Allow", ", ".join(self.allowed_methods()))
        self.set_status(status)
        body = {"error": code, "message": message, **(error.extra if error else {})}
        self.finish(jsonio.dumps(body))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, ServiceError) or (isinstance(value, HTTPError)
                                               and value.status_code < 500):
            return
        if unavailable(value) is not None:
            log.warning("%s %s: dependency unavailable: %r", self.request.method,
                        self.request.path, value)
            return
        super().log_exception(typ, value, tb)

    def _as_service_error(self, exc: BaseException | None,
                          status_code: int) -> ServiceError | None:
        if isinstance(exc, ServiceError):
            return exc
        if exc is not None and (dependency := unavailable(exc)) is not None:
            self.metrics.dependency_errors.labels(dependency.dependency or "unknown").inc()
            return dependency
        if status_code == 405:
            return MethodNotAllowed(f"{self.request.method} is not allowed here")
        if status_code == 404:
            return NotFound("not found")
        return None


class NotFoundHandler(JsonHandler):
    """Every path no route matches."""

    def prepare(self) -> None:
        super().prepare()
        raise NotFound(f"no route for {self.request.path}")


class HealthHandler(JsonHandler):
    route = "/health"

    def get(self) -> None:
        self.send_json(200, {"status": "ok"})


class PingHandler(JsonHandler):
    route = "/ping"

    def get(self) -> None:
        self.send_json(200, {"message": "pong"})


class ReadyHandler(JsonHandler):
    route = "/ready"

    def initialize(self, mongo: Any, redis: Any) -> None:
        self.mongo = mongo
        self.redis = redis

    async def get(self) -> None:
        await ping_mongo(self.mongo)
        await ping_redis(self.redis)
        self.send_json(200, {"status": "ready"})


class OpenApiHandler(JsonHandler):
    """GET /openapi.yaml: the description of both services (docs/openapi.yaml)."""

    route = "/openapi.yaml"
    document = (importlib.resources.files("servicekit") / "openapi.yaml").read_bytes()

    def get(self) -> None:
        self.set_header("Content-Type", "application/yaml; charset=UTF-8")
        self.finish(self.document)


class MetricsHandler(JsonHandler):
    """GET /metrics: this instance's metrics in Prometheus text format."""

    route = "/metrics"

    def get(self) -> None:
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest(self.metrics.registry))


def log_request(handler: RequestHandler) -> None:
    """The access log: one line per request, with route, status and duration."""
    status = handler.get_status()
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    duration_ms = round(handler.request.request_time() * 1000, 2)
    access_log.log(level, "%s %s %s %.1f ms", status, handler.request.method,
                   handler.request.uri, duration_ms,
                   extra={"event": "request", "route": getattr(handler, "route", None),
                          "method": handler.request.method, "status": status,
                          "duration_ms": duration_ms})
