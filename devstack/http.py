"""The one small HTTP client of the tools and tests: never raises on an error status.

`call()` answers a `Reply` (status, headers, body) and raises only when no
answer came; `request()` is the load generators' form, `(status, body)` with
`None` for no answer at all. Both go through the process's `AsyncHTTPClient`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import ujson
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from servicekit import jsonio


@dataclass
class Reply:
    status: int
    headers: Any
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body, parse_float=Decimal)

    @property
    def error(self) -> str | None:
        return self.json.get("error") if self.body else None


async def call(method: str, url: str, body: Any = None, headers: dict | None = None,
               raw: bytes | None = None, timeout: float = 10.0) -> Reply:
    """One request; `body` is sent as JSON (Decimals as exact numbers), `raw` as it is."""
    headers = dict(headers or {})
    payload = raw
    if body is not None:
        payload = jsonio.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    if payload is None and method in ("POST", "PATCH", "PUT"):
        payload = b""
    response = await AsyncHTTPClient().fetch(
        url, method=method, headers=headers, body=payload, raise_error=False,
        allow_nonstandard_methods=True, request_timeout=timeout, connect_timeout=timeout)
    return Reply(response.code, response.headers, response.body or b"")


async def request(method: str, url: str, body: Any = None,
                  timeout: float = 10.0) -> tuple[int | None, Any]:
    """(status, parsed body); status None when no answer came (refused, dropped, timed out)."""
    try:
        reply = await call(method, url, body, timeout=timeout)
    except (OSError, HTTPClientError):
        return None, None
    try:
        return reply.status, ujson.loads(reply.body) if reply.body else None
    except ValueError:
        return reply.status, None
