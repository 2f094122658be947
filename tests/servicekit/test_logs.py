"""JSON log lines carry whatever fields a line passes, so the kit lists no service's own."""

from __future__ import annotations

import json
import logging

from servicekit.logs import JsonFormatter


def test_a_field_of_a_service_s_own_reaches_the_json_line() -> None:
    record = logging.LogRecord("orders.service", logging.INFO, __file__, 1, "order %s", ("o1",),
                               None)
    record.__dict__.update(event="order_updated", order_id="o1", invoice_id="i1", token=3,
                           shop="7")
    line = json.loads(JsonFormatter("orders", "host:3000/1").format(record))
    assert (line["order_id"], line["invoice_id"], line["token"], line["shop"]) == (
        "o1", "i1", 3, "7")


def test_the_record_s_own_attributes_and_empty_fields_stay_out() -> None:
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "plain", (), None)
    record.__dict__.update(order_id=None)
    line = json.loads(JsonFormatter("invoices", "host:3001/1").format(record))
    assert set(line) == {"time", "level", "service", "instance", "logger", "message"}
