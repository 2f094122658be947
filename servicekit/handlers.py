"""The base handler of both services, and the routes they share."""

from __future__ import annotations

import importlib.resources
import logging
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from tornado.web import HTTPError, RequestHandler

from servicekit import jsonio
from servicekit.clients import ping_mongo, ping_redis, unavailable
from servicekit.metrics import Metrics
from servicekit.errors import (MethodNotAllowed, NotFound, PayloadTooLarge, ServiceError,
                               UnsupportedMediaType, describe)

log = logging.getLogger(__name__)
access_log = logging.getLogger("access")

MAX_BODY_BYTES = 64 * 1024
_BODY_METHODS = ("POST", "PATCH", "PUT")


class JsonHandler(RequestHandler):
    """Parses JSON bodies in prepare() and renders every error in write_error().

    Handlers raise `ServiceError`s (or let a dependency's error through);
    nothing writes an error body by hand.
    """

    body: Any = None
    _counted = False
    route = "unmatched"  # the route's pattern, for metrics and logs

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")

    def prepare(self) -> None:
        self.application.settings["inflight"].enter()
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
            self.application.settings["inflight"].leave()
        metrics: Metrics | None = self.application.settings.get("metrics")
        if metrics is not None:
            method, status = self.request.method or "", str(self.get_status())
            metrics.http_requests.labels(self.route, method, status).inc()
            metrics.http_duration.labels(self.route, method).observe(self.request.request_time())

    def send_json(self, status: int, value: Any) -> None:
        self.set_status(status)
        self.finish(jsonio.dumps(value))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        error = self._as_service_error(exc, status_code)
        status, code, retry_after = describe(error) if error else (status_code, "error", None)
        if error is None:
            message = "internal error" if status >= 500 else self._reason
            code = "internal_error" if status >= 500 else "error"
        else:
            message = error.message
        self.clear_header("Retry-After")
        if retry_after is not None:
            self.set_header("Retry-After", str(retry_after))
        if status == 401:
            self.set_header("WWW-Authenticate", 'Bearer realm="invoices"')
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
            metrics = self.application.settings.get("metrics")
            if metrics is not None:
                metrics.dependency_errors.labels(dependency.dependency or "unknown").inc()
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
        self.finish(generate_latest(self.application.settings["metrics"].registry))


def common_routes(mongo: Any, redis: Any) -> list[tuple[str, type, dict[str, Any]]]:
    from servicekit.docs_page import DocsHandler  # it builds on JsonHandler, defined here

    return [(r"/health", HealthHandler, {}), (r"/ping", PingHandler, {}),
            (r"/ready", ReadyHandler, {"mongo": mongo, "redis": redis}),
            (r"/openapi.yaml", OpenApiHandler, {}), (r"/metrics", MetricsHandler, {}),
            (r"/docs", DocsHandler, {})]


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
