"""HTTP handlers of the invoices service: parse, call the service, render."""

from __future__ import annotations

import hmac

from invoices.errors import ERROR_TABLE, FencingTokenRequired
from invoices.invoice import render
from invoices.service import InvoiceService
from servicekit import validate
from servicekit.errors import BadHeader, Unauthorized
from servicekit.handlers import JsonHandler

MAX_TOKEN = 2**63 - 1  # what MongoDB stores as a 64-bit integer
TOTAL_MAX_CENTS = 10**15 * 100
REALM = "invoices"


class InvoiceHandlerBase(JsonHandler):
    errors = ERROR_TABLE

    def initialize(self, service: InvoiceService, api_key: str) -> None:
        self.service = service
        self.api_key = api_key

    def authorize(self) -> None:
        """Writes need "Authorization: Bearer <INVOICES_API_KEY>" when a key is set, so
        nobody but orders can send a forged token that would freeze an invoice."""
        if not self.api_key or self.request.method in ("GET", "HEAD", "OPTIONS"):
            return
        scheme, _, given = self.request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode(), self.api_key.encode()):
            raise Unauthorized("invoice writes need Authorization: Bearer <INVOICES_API_KEY>",
                               realm=REALM)

    def fencing_token(self) -> int:
        text = self.request.headers.get("Fencing-Token")
        if text is None:
            raise FencingTokenRequired("send the lease's token in the Fencing-Token header")
        text = text.strip()
        if not text.isascii() or not text.isdigit() or text.startswith("0") or \
                int(text) > MAX_TOKEN:
            raise BadHeader("Fencing-Token must be a positive integer")
        return int(text)


class InvoicesHandler(InvoiceHandlerBase):
    route = "/invoices"

    async def post(self) -> None:
        body = validate.object_with(self.body, required=("user_id", "total"), optional=("id",))
        invoice_id = validate.uuid_field(body, "id") if "id" in body else None
        user_id = validate.uuid_field(body, "user_id")
        total = validate.cents_field(body, "total", 0, TOTAL_MAX_CENTS,
                                     allow_zero=True)
        doc = await self.service.create(invoice_id, user_id, total)
        self.set_header("Location", f"/invoices/{doc['_id']}")
        self.send_json(201, render(doc))


class InvoiceHandler(InvoiceHandlerBase):
    route = "/invoices/{id}"

    async def get(self, raw_id: str) -> None:
        self.send_json(200, render(await self.service.get(validate.path_id(raw_id))))

    async def patch(self, raw_id: str) -> None:
        invoice_id = validate.path_id(raw_id)
        token = self.fencing_token()
        body = validate.object_with(self.body, required=("total",))
        total = validate.cents_field(body, "total", 0, TOTAL_MAX_CENTS,
                                     allow_zero=True)
        if not self.prefers_minimal():
            doc = await self.service.update_total(invoice_id, token, total)
            self.send_json(200, render(doc))  # type: ignore[arg-type]
            return
        # RFC 7240: the caller needs no representation, so none is read back.
        await self.service.update_total(invoice_id, token, total, read_back=False)
        self.set_header("Preference-Applied", "return=minimal")
        self.no_content()

    def prefers_minimal(self) -> bool:
        preferences = self.request.headers.get_list("Prefer")
        return any(part.split(";")[0].strip().replace(" ", "").lower() == "return=minimal"
                   for value in preferences for part in value.split(","))

    def no_content(self) -> None:
        self.set_status(204)
        self.clear_header("Content-Type")
        self.finish()

    async def delete(self, raw_id: str) -> None:
        invoice_id = validate.path_id(raw_id)
        await self.service.delete(invoice_id, self.fencing_token())
        self.no_content()
