"""JSON in and out, exact for money.

Responses are encoded with ujson, except that `decimal.Decimal` values are
written as JSON numbers digit for digit (ujson would go through a binary
float). Request bodies are parsed by the standard library's C scanner with
`parse_float=Decimal`, because ujson offers no way to read `0.1` other than as
a float, and a float cannot hold every amount up to 10^15 to the cent.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import ujson

from servicekit.errors import InvalidJson


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def loads(body: bytes) -> Any:
    """Parse a request body; raises InvalidJson for anything that is not JSON."""
    try:
        return json.loads(body, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidJson(f"the body is not valid JSON: {exc}") from None


def dumps(value: Any) -> str:
    """Encode a response; Decimals become exact JSON numbers."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{ujson.dumps(str(key))}:{dumps(item)}"
                              for key, item in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(dumps(item) for item in value) + "]"
    if isinstance(value, Decimal):
        return _decimal_text(value)
    return str(ujson.dumps(value, ensure_ascii=False, escape_forward_slashes=False))


def _decimal_text(value: Decimal) -> str:
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"
