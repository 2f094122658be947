"""GET /metrics parses, and its counters move as a scripted contention scenario says;
JSON log lines carry the fields a person needs to follow a lease."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Awaitable, Callable

import pytest
from prometheus_client.parser import text_string_to_metric_families

from servicekit.logs import JsonFormatter
from tests.stack import LATER, Stack, call


async def scrape(base: str) -> dict[tuple[str, tuple], float]:
    reply = await call("GET", f"{base}/metrics")
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(reply.body.decode()):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.gen_test(timeout=30)
async def test_lock_counters_move_as_a_contention_scenario_says(
        make_stack: Callable[..., Awaitable[Stack]]) -> None:
    # A 300 ms pause inside each critical section, so the two updates overlap.
    stack = await make_stack(test_mode=True, faults="after_lock=sleep:300")
    order = await stack.create_order()
    before_o, before_i = await scrape(stack.orders_url), await scrape(stack.invoices_url)

    url = f"{stack.orders_url}/orders/{order['id']}"
    first = asyncio.ensure_future(call("PATCH", url, {"update_time": LATER, "quantity": 2}))
    await asyncio.sleep(0.1)
    second = await call("PATCH", url, {"update_time": LATER, "quantity": 3})
    assert (await first).status == 200 and second.status == 423
    stale = await call("PATCH", f"{stack.invoices_url}/invoices/{order['invoice_id']}",
                       {"total": 1}, {"Fencing-Token": "1"})
    assert stale.status == 409

    after_o, after_i = await scrape(stack.orders_url), await scrape(stack.invoices_url)

    def moved(samples_after: dict, samples_before: dict, name: str, **labels: str) -> float:
        return value(samples_after, name, **labels) - value(samples_before, name, **labels)

    assert moved(after_o, before_o, "lock_acquisitions_total", outcome="acquired") == 1
    assert moved(after_o, before_o, "lock_acquisitions_total", outcome="busy") == 1
    assert moved(after_o, before_o, "lock_releases_total", outcome="released") == 1
    assert moved(after_o, before_o, "lock_hold_seconds_count") == 1
    assert moved(after_o, before_o, "lock_hold_seconds_sum") >= 0.3
    assert moved(after_o, before_o, "fenced_writes_total", store="orders",
                 outcome="accepted") == 2  # the intent, then the commit
    assert moved(after_i, before_i, "fenced_writes_total", store="invoices",
                 outcome="accepted") == 1
    assert moved(after_i, before_i, "fenced_writes_total", store="invoices",
                 outcome="stale_token") == 1
    assert moved(after_o, before_o, "http_requests_total", route="/orders/{id}",
                 method="PATCH", status="423") == 1
    assert moved(after_o, before_o, "http_request_duration_seconds_count",
                 route="/orders/{id}", method="PATCH") == 2


def test_a_json_log_line_carries_its_fields() -> None:
    formatter = JsonFormatter("orders", "host:3000/1")
    record = logging.LogRecord("servicekit.lock", logging.INFO, __file__, 1,
                               "lease acquired: token %s", (7,), None)
    record.__dict__.update(event="lease_acquired", token=7, resources=["order:1"])
    line = json.loads(formatter.format(record))
    assert line["message"] == "lease acquired: token 7" and line["token"] == 7
    assert line["service"] == "orders" and line["instance"] == "host:3000/1"
    assert line["level"] == "info" and line["time"].endswith("Z")
    assert line["event"] == "lease_acquired" and line["resources"] == ["order:1"]
    assert "trace_id" not in line  # outside any span
