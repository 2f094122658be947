"""`make demo`: two concurrent updates of one order, told from the services' own logs.

It starts a Redis, a MongoDB-wire server, invoices and orders of its own (JSON
logs into files; a 300 ms pause inside every critical section so that the two
updates overlap), creates an order, sends two updates 100 ms apart, and then
tells what happened: only from the log lines and /metrics the services wrote,
not from what this script knows.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from devstack.deployment import Deployment
from devstack.http import call
from devstack.mongo_server import MongoServer
from devstack.redis_server import RedisServer
from devstack.service import ServiceProcess
from devstack.workload import ITEM, USER, request
from servicekit.lock_names import order_lock


def log_lines(path: Path, **match: object) -> list[dict]:
    lines = []
    for raw in path.read_text().splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if all(line.get(key) == value or (key == "resource" and value in line.get(
                "resources", [])) for key, value in match.items()):
            lines.append(line)
    return lines


async def metric_values(base: str, name: str) -> dict[str, float]:
    reply = await call("GET", f"{base}/metrics")
    values = {}
    for family in text_string_to_metric_families(reply.body.decode()):
        for sample in family.samples:
            if sample.name == name:
                values[",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))] = \
                    sample.value
    return values


async def tell(orders: ServiceProcess, invoices: ServiceProcess, logs: Path) -> None:
    status, order = await request("POST", f"{orders.url}/orders", {
        "user_id": USER, "item_id": ITEM, "quantity": 1, "value": 10})
    print(f"1. POST /orders -> {status}: order {order['id']}, invoice {order['invoice_id']}, "
          f"total {order['total']}")
    url = f"{orders.url}/orders/{order['id']}"
    first = asyncio.ensure_future(request("PATCH", url, {
        "update_time": "2030-01-01T10:00:00Z", "quantity": 2}))
    await asyncio.sleep(0.1)
    second = await request("PATCH", url, {"update_time": "2030-01-01T10:00:01Z",
                                          "quantity": 3})
    first_status, first_body = await first
    print(f"2. two PATCH /orders/{order['id'][:8]}… sent 100 ms apart -> {first_status} and "
          f"{second[0]} {second[1].get('error', '') if second[1] else ''}")
    await asyncio.sleep(0.3)  # let the log lines reach their files

    print("\n3. what the orders log says about this order's lease:")
    lock_name = order_lock(order["id"], order["invoice_id"])
    for line in log_lines(logs / "orders-0.log", resource=lock_name):
        print(f"   {line['time']}  {line['event']:<15} token={line.get('token', '-')}  "
              f"{line['message'].split(' on ')[0]}")
    print("\n4. what the invoices log says about invoice "
          f"{order['invoice_id'][:8]}…:")
    for line in log_lines(logs / "invoices-0.log", invoice_id=order["invoice_id"]):
        print(f"   {line['time']}  {line['event']:<15} token={line.get('token')}  "
              f"{line['message']}")
    print("\n5. /metrics of orders:")
    for name in ("lock_acquisitions_total", "fenced_writes_total"):
        for labels, number in (await metric_values(orders.url, name)).items():
            print(f"   {name}{{{labels}}} {number:g}")
    _, final = await request("GET", url)
    _, invoice = await request("GET", f"{invoices.url}/invoices/{order['invoice_id']}")
    print(f"\n6. finally: order total {final['total']}, invoice total {invoice['total']}")


def main() -> int:
    logs = Path(tempfile.mkdtemp(prefix="demo-"))
    redis = RedisServer(log_path=str(logs / "redis.log"))
    mongo = MongoServer(str(logs / "mongo-data"), log_path=str(logs / "mongo.log"))
    deployment = Deployment.build(
        {"REDIS_URL": redis.url, "MONGO_URL": mongo.url, "LOG_FORMAT": "json",
         "DLOCK_TEST_MODE": "1", "DLOCK_FAULTS": "after_lock=sleep:300",
         "PYTHONUNBUFFERED": "1"}, logs=logs)
    try:
        redis.start()
        mongo.start()
        deployment.start()
        asyncio.run(tell(deployment["orders"][0], deployment["invoices"][0], logs))
        print(f"\nlogs: {logs}")
        return 0
    finally:
        deployment.stop()
        mongo.stop()
        redis.stop()


if __name__ == "__main__":
    sys.exit(main())
