"""How a service calls invoices: over HTTP, every call with connect and request timeouts,
and what its caller answers when a call fails (`answer_for`).

In the shared kit, not in orders: the layout lets no service import another, and a
second service that writes invoices under the same lock (`servicekit.lock_names`)
needs the same calls, the same reading of failures and the same answers.
"""

from __future__ import annotations

import logging
from typing import Any, TypedDict

from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from tornado.simple_httpclient import SimpleAsyncHTTPClient

from servicekit import errors, jsonio, validate
from servicekit.errors import ServiceError, Unavailable

log = logging.getLogger(__name__)

# libcurl's errors that mean the request never left. Only "could not resolve": libcurl
# retries a request by itself on a fresh connection when a kept-alive one dies, so a
# "could not connect" (7) may follow a first attempt that reached invoices and applied.
CURL_NOT_SENT = (6,)


class InvoiceCallFailed(Exception):
    """The invoice service did not do what was asked (any answer but success, or none).

    `maybe_applied` tells the two kinds apart. False: the call certainly changed
    nothing (the connection was refused, or invoices answered 4xx). True: it may
    have (a timeout, a dropped connection or a 5xx after the request was sent).
    """

    def __init__(self, message: str, status: int | None = None, code: str | None = None,
                 body: dict | None = None, maybe_applied: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.body = body or {}
        self.maybe_applied = maybe_applied


class InvoiceStale(InvoiceCallFailed):
    """409 stale_token: the invoice accepted a higher token (`current_token`)."""

    @property
    def current_token(self) -> int:
        return int(self.body.get("current_token", 0))


class InvoiceFailed(ServiceError):
    """424 invoice_failed: the change was not made, because of the invoice service."""


# The row a caller's error table adds (see `servicekit.errors`).
ERROR_ROWS: errors.ErrorTable = {InvoiceFailed: (424, "invoice_failed", None)}


def answer_for(exc: InvoiceCallFailed, rolled_forward: bool = False) -> ServiceError:
    """What the caller answers when an invoice call of its change failed with `exc`.

    A change that will be rolled forward (`rolled_forward`: a delete, whose intent
    stays for whoever settles it next) answers 503: it will be completed. Any other
    answers 424: nothing changed, or what may have been applied is rolled back.
    """
    if rolled_forward:
        return Unavailable(f"the invoice service did not confirm ({exc}); the change will "
                           "be completed", dependency="invoices")
    if not exc.maybe_applied:
        return InvoiceFailed(f"the invoice service failed: {exc}")
    return InvoiceFailed(f"the invoice service did not confirm ({exc}); the change is "
                         "rolled back")


def make_http_client(kind: str, max_clients: int = 64) -> AsyncHTTPClient:
    """An HTTP client of the caller's own; "curl" keeps connections to invoices alive.

    Falls back to Tornado's own client, with a warning, where pycurl is missing.
    The process's shared `AsyncHTTPClient` stays as it was.
    """
    if kind == "curl":
        try:
            from tornado.curl_httpclient import CurlAsyncHTTPClient
        except ImportError:
            log.warning("HTTP_CLIENT=curl but pycurl is not installed: using Tornado's own "
                        "client (a new connection per call)")
        else:
            return CurlAsyncHTTPClient(force_instance=True, max_clients=max_clients)
    return SimpleAsyncHTTPClient(force_instance=True, max_clients=max_clients)


class InvoiceRequest(TypedDict):
    """What a create asks of invoices; the caller picks the id, so a retry is the same."""
    invoice_id: str
    user_id: str
    total_cents: int


class InvoicesClient:
    """Calls to invoices through an HTTP client of its own (`close()` it when done)."""

    def __init__(self, base_url: str, timeout_ms: int, api_key: str = "",
                 http_client: str = "curl") -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout_ms / 1000
        self.auth = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = make_http_client(http_client)

    async def close(self) -> None:
        self.http.close()

    async def create(self, invoice: InvoiceRequest) -> bool:
        """Idempotent by id: a repeat answers the invoice as it is. False if it is deleted
        (a rollback tombstoned it, so that no late create can bring it back)."""
        answer = await self._call("POST", "/invoices", {
            "id": invoice["invoice_id"], "user_id": invoice["user_id"],
            "total": validate.cents_to_decimal(invoice["total_cents"])})
        return answer.get("status") != "deleted"

    async def update_total(self, invoice_id: str, token: int, total_cents: int) -> None:
        """`Prefer: return=minimal` (RFC 7240): orders knows the total it sent, so
        invoices answers 204 and spares reading the invoice back."""
        await self._call("PATCH", f"/invoices/{invoice_id}",
                         {"total": validate.cents_to_decimal(total_cents)}, token,
                         {"Prefer": "return=minimal"})

    async def delete(self, invoice_id: str, token: int) -> None:
        await self._call("DELETE", f"/invoices/{invoice_id}", None, token)

    async def _call(self, method: str, path: str, body: Any, token: int | None = None,
                    extra_headers: dict[str, str] | None = None) -> dict[str, Any]:
        """The answer's JSON object ({} if it has none)."""
        headers = {"Content-Type": "application/json"} if body is not None else {}
        headers.update(self.auth)
        headers.update(extra_headers or {})
        if token is not None:
            headers["Fencing-Token"] = str(token)
        try:
            response = await self.http.fetch(
                self.base_url + path, method=method, headers=headers,
                body=jsonio.dumps(body) if body is not None else None,
                connect_timeout=self.timeout, request_timeout=self.timeout, raise_error=False)
        except ConnectionRefusedError as exc:
            raise InvoiceCallFailed(f"{method} {path}: invoices refused the connection") from exc
        except HTTPClientError as exc:
            if getattr(exc, "errno", None) in CURL_NOT_SENT:
                raise InvoiceCallFailed(f"{method} {path}: could not connect to invoices: "
                                        f"{exc}") from exc
            raise InvoiceCallFailed(f"{method} {path}: no answer from invoices: {exc}",
                                    maybe_applied=True) from exc
        except (OSError, TimeoutError) as exc:
            raise InvoiceCallFailed(f"{method} {path}: no answer from invoices: {exc}",
                                    maybe_applied=True) from exc
        if response.code == 599 or response.code >= 500:
            raise InvoiceCallFailed(f"{method} {path}: invoices answered {response.code}",
                                    response.code, maybe_applied=True)
        try:
            answer = jsonio.loads(response.body or b"{}")
        except Exception:
            answer = {}
        answer = answer if isinstance(answer, dict) else {}
        if response.code < 300:
            return answer
        error = (InvoiceStale if answer.get("error") == "stale_token" else InvoiceCallFailed)
        raise error(f"{method} {path}: invoices answered {response.code} "
                    f"{answer.get('error', '')}", response.code, answer.get("error"), answer)
