"""The errors every service answers with, and the table each service extends.

::

    ServiceError                      a 4xx or 5xx answer, rendered by the base handler
    ├── InvalidJson                   400 invalid_json
    ├── BadHeader                     400 invalid_header
    ├── Unauthorized                  401 unauthorized (+ WWW-Authenticate with its realm)
    ├── NotFound                      404 not_found
    ├── MethodNotAllowed              405 method_not_allowed
    ├── Conflict                      409, a service's own conflicts derive from it
    ├── PayloadTooLarge               413 payload_too_large
    ├── UnsupportedMediaType          415 unsupported_media_type
    ├── ValidationFailed              422 validation_error
    └── Unavailable                   503 unavailable (+ Retry-After)

A service adds its own errors below these and its own rows to `ERROR_TABLE`
(`orders.errors`, `invoices.errors`); its handlers render with the extended
table. Code raises; nothing writes an error body by hand.
"""

from __future__ import annotations

from typing import Any, Mapping

# class -> (status, error code, Retry-After seconds or None)
ErrorTable = Mapping[type["ServiceError"], tuple[int, str, int | None]]


class ServiceError(Exception):
    """Root: an answer other than success. `extra` fields join the JSON body."""

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra


class InvalidJson(ServiceError):
    pass


class BadHeader(ServiceError):
    pass


class Unauthorized(ServiceError):
    def __init__(self, message: str, realm: str) -> None:
        super().__init__(message)
        self.realm = realm  # for WWW-Authenticate; not part of the body


class NotFound(ServiceError):
    pass


class MethodNotAllowed(ServiceError):
    pass


class Conflict(ServiceError):
    pass


class PayloadTooLarge(ServiceError):
    pass


class UnsupportedMediaType(ServiceError):
    pass


class ValidationFailed(ServiceError):
    pass


class Unavailable(ServiceError):
    def __init__(self, message: str, dependency: str = "") -> None:
        super().__init__(message)
        self.dependency = dependency  # for metrics; not part of the answer


RETRY_AFTER_SECONDS = 1

ERROR_TABLE: ErrorTable = {
    InvalidJson: (400, "invalid_json", None),
    BadHeader: (400, "invalid_header", None),
    Unauthorized: (401, "unauthorized", None),
    NotFound: (404, "not_found", None),
    MethodNotAllowed: (405, "method_not_allowed", None),
    PayloadTooLarge: (413, "payload_too_large", None),
    UnsupportedMediaType: (415, "unsupported_media_type", None),
    ValidationFailed: (422, "validation_error", None),
    Unavailable: (503, "unavailable", RETRY_AFTER_SECONDS),
}


def describe(error: ServiceError,
             table: ErrorTable = ERROR_TABLE) -> tuple[int, str, int | None]:
    """Status, code and Retry-After of an error, by the nearest class in the table."""
    for cls in type(error).__mro__:
        if cls in table:
            return table[cls]
    return 500, "internal_error", None
