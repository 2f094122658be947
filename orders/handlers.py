"""HTTP handlers of the orders service: parse, call the service, render."""

from __future__ import annotations

from orders.errors import ERROR_TABLE
from orders.order import render
from orders.service import OrderService
from servicekit import validate
from servicekit.errors import ValidationFailed
from servicekit.handlers import JsonHandler

MAX_IDEMPOTENCY_KEY = 200
QUANTITY_MAX = 1_000_000
VALUE_MAX_CENTS = 1_000_000_000 * 100


def quantity_field(body: dict) -> int:
    return validate.int_field(body, "quantity", 1, QUANTITY_MAX)


def value_field(body: dict) -> int:
    return validate.cents_field(body, "value", 1, VALUE_MAX_CENTS, allow_zero=False)


class OrderHandlerBase(JsonHandler):
    errors = ERROR_TABLE

    def initialize(self, service: OrderService) -> None:
        self.service = service


class OrdersHandler(OrderHandlerBase):
    route = "/orders"

    async def post(self) -> None:
        body = validate.object_with(self.body, required=("user_id", "item_id", "quantity",
                                                         "value"))
        key = self.request.headers.get("Idempotency-Key")
        if key is not None and not 0 < len(key) <= MAX_IDEMPOTENCY_KEY:
            raise ValidationFailed(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} "
                                   "characters", field="Idempotency-Key")
        doc = await self.service.create({
            "user_id": validate.uuid_field(body, "user_id"),
            "item_id": validate.uuid_field(body, "item_id"),
            "quantity": quantity_field(body), "value_cents": value_field(body)}, key)
        self.set_header("Location", f"/orders/{doc['_id']}")
        self.send_json(201, render(doc))


class OrderHandler(OrderHandlerBase):
    route = "/orders/{id}"

    async def get(self, raw_id: str) -> None:
        self.send_json(200, render(await self.service.get(validate.path_id(raw_id))))

    async def patch(self, raw_id: str) -> None:
        order_id = validate.path_id(raw_id)
        body = validate.object_with(self.body, required=("update_time",),
                                    optional=("quantity", "value"))
        if "quantity" not in body and "value" not in body:
            raise ValidationFailed("send quantity, value or both", field="quantity")
        update_us = validate.timestamp_field(body, "update_time")
        quantity = quantity_field(body) if "quantity" in body else None
        value = value_field(body) if "value" in body else None
        doc = await self.service.update(order_id, update_us, quantity, value)
        self.send_json(200, render(doc))

    async def delete(self, raw_id: str) -> None:
        await self.service.delete(validate.path_id(raw_id))
        self.set_status(204)
        self.clear_header("Content-Type")
        self.finish()
