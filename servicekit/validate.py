"""Validators for request fields: each returns the clean value or raises ValidationFailed
naming the field. Nothing a caller sends ever becomes a MongoDB operator or field name:
ids are UUID strings, everything else a checked number, string or timestamp."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable

from servicekit.errors import InvalidJson, NotFound, ValidationFailed

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?([Zz]|[+-]\d{2}:\d{2})$")


def object_with(body: Any, required: Iterable[str], optional: Iterable[str] = ()) -> dict:
    """The body as a dict with exactly the allowed keys; unknown fields are refused."""
    if not isinstance(body, dict):
        raise InvalidJson("the body must be a JSON object")
    required, allowed = set(required), set(required) | set(optional)
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ValidationFailed(f"unknown field: {unknown[0]}", field=unknown[0])
    missing = sorted(required - set(body))
    if missing:
        raise ValidationFailed(f"missing field: {missing[0]}", field=missing[0])
    return body


def uuid_field(body: dict, field: str) -> str:
    value = body[field]
    if not isinstance(value, str) or not is_uuid(value):
        raise ValidationFailed(f"{field} must be a UUID string", field=field)
    return value.lower()


def is_uuid(text: str) -> bool:
    try:
        return len(text) == 36 and str(uuid.UUID(text)) == text.lower()
    except ValueError:
        return False


def path_id(text: str) -> str:
    """A path id: a UUID, else not found (as the contract says: malformed ids are 404)."""
    if not is_uuid(text):
        raise NotFound("not found")
    return text.lower()


def int_field(body: dict, field: str, minimum: int, maximum: int) -> int:
    """An integer (not a boolean, not 1.0) from `minimum` to `maximum`."""
    value = body[field]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailed(f"{field} must be an integer", field=field)
    if not minimum <= value <= maximum:
        raise ValidationFailed(f"{field} must be between {minimum} and {maximum}", field=field)
    return value


def cents_field(body: dict, field: str, minimum_cents: int, maximum_cents: int,
                allow_zero: bool) -> int:
    """A money amount with at most two decimals, as integer cents."""
    value = body[field]
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise ValidationFailed(f"{field} must be a number", field=field)
    try:
        amount = Decimal(value)
        cents = amount * 100
        if not cents.is_finite() or cents != cents.to_integral_value():
            raise ValidationFailed(f"{field} must have at most two decimal places", field=field)
    except InvalidOperation:
        raise ValidationFailed(f"{field} must be a number", field=field) from None
    whole_cents = int(cents)
    if whole_cents < minimum_cents or whole_cents > maximum_cents or (
            whole_cents == 0 and not allow_zero):
        low = "0" if allow_zero else "above 0"
        raise ValidationFailed(f"{field} must be {low} and at most {maximum_cents // 100}",
                               field=field)
    return whole_cents


def timestamp_field(body: dict, field: str) -> int:
    """An RFC 3339 timestamp, as microseconds since the epoch (UTC)."""
    value = body[field]
    if not isinstance(value, str):
        raise ValidationFailed(f"{field} must be an RFC 3339 timestamp", field=field)
    match = _RFC3339.match(value)
    if not match:
        raise ValidationFailed(f"{field} must be an RFC 3339 timestamp, e.g. "
                               "2026-01-31T12:00:00Z", field=field)
    try:
        parsed = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed(f"{field} is not a valid date and time", field=field) from None
    return to_micros(parsed)


def to_micros(moment: datetime) -> int:
    delta = moment.astimezone(timezone.utc) - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def format_micros(micros: int | None) -> str | None:
    """RFC 3339 in UTC with Z; fractional seconds only as many digits as needed."""
    if micros is None:
        return None
    seconds, fraction = divmod(micros, 1_000_000)
    text = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    if fraction:
        text += "." + f"{fraction:06d}".rstrip("0")
    return text + "Z"


def now_micros() -> int:
    return to_micros(datetime.now(timezone.utc))


def cents_to_decimal(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


def new_id() -> str:
    return str(uuid.uuid4())
