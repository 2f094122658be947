"""The errors both services answer with, and the one table that maps them.

::

    ServiceError                      a 4xx or 5xx answer, rendered by the base handler
    ├── InvalidJson                   400 invalid_json
    ├── BadHeader                     400 invalid_header
    ├── Unauthorized                  401 unauthorized (+ WWW-Authenticate)
    ├── NotFound                      404 not_found
    ├── MethodNotAllowed              405 method_not_allowed
    ├── Conflict
    │   ├── EventOutdated             409 event_outdated
    │   ├── OrderDeleted              409 order_deleted
    │   ├── StaleToken                409 stale_token (+ current_token)
    │   └── LockNotHeld               409 lock_not_held
    ├── PayloadTooLarge               413 payload_too_large
    ├── UnsupportedMediaType          415 unsupported_media_type
    ├── ValidationFailed              422 validation_error
    ├── IdempotencyKeyReused          422 idempotency_key_reused
    ├── Locked                        423 locked (+ Retry-After)
    ├── InvoiceFailed                 424 invoice_failed
    ├── FencingTokenRequired          428 fencing_token_required
    └── Unavailable                   503 unavailable (+ Retry-After)

Code raises; nothing writes an error body by hand.
"""

from __future__ import annotations

from typing import Any


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
    pass


class NotFound(ServiceError):
    pass


class MethodNotAllowed(ServiceError):
    pass


class Conflict(ServiceError):
    pass


class EventOutdated(Conflict):
    pass


class OrderDeleted(Conflict):
    pass


class StaleToken(Conflict):
    def __init__(self, message: str, current_token: int) -> None:
        super().__init__(message, current_token=current_token)
        self.current_token = current_token


class LockNotHeld(Conflict):
    pass


class PayloadTooLarge(ServiceError):
    pass


class UnsupportedMediaType(ServiceError):
    pass


class ValidationFailed(ServiceError):
    pass


class IdempotencyKeyReused(ServiceError):
    pass


class Locked(ServiceError):
    pass


class InvoiceFailed(ServiceError):
    pass


class FencingTokenRequired(ServiceError):
    pass


class Unavailable(ServiceError):
    def __init__(self, message: str, dependency: str = "") -> None:
        super().__init__(message)
        self.dependency = dependency  # for metrics; not part of the answer


RETRY_AFTER_SECONDS = 1

# class -> (status, error code, Retry-After seconds or None)
ERROR_TABLE: dict[type[ServiceError], tuple[int, str, int | None]] = {
    InvalidJson: (400, "invalid_json", None),
    BadHeader: (400, "invalid_header", None),
    Unauthorized: (401, "unauthorized", None),
    NotFound: (404, "not_found", None),
    MethodNotAllowed: (405, "method_not_allowed", None),
    EventOutdated: (409, "event_outdated", None),
    OrderDeleted: (409, "order_deleted", None),
    StaleToken: (409, "stale_token", None),
    LockNotHeld: (409, "lock_not_held", None),
    PayloadTooLarge: (413, "payload_too_large", None),
    UnsupportedMediaType: (415, "unsupported_media_type", None),
    ValidationFailed: (422, "validation_error", None),
    IdempotencyKeyReused: (422, "idempotency_key_reused", None),
    Locked: (423, "locked", RETRY_AFTER_SECONDS),
    InvoiceFailed: (424, "invoice_failed", None),
    FencingTokenRequired: (428, "fencing_token_required", None),
    Unavailable: (503, "unavailable", RETRY_AFTER_SECONDS),
}


def describe(error: ServiceError) -> tuple[int, str, int | None]:
    """Status, code and Retry-After of an error, by the nearest class in the table."""
    for cls in type(error).__mro__:
        if cls in ERROR_TABLE:
            return ERROR_TABLE[cls]
    return 500, "internal_error", None
