"""SIGTERM: an instance stops accepting, finishes the request in flight, releases its lease."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Iterator

import pytest
import redis.asyncio as aredis
from tornado.ioloop import IOLoop

from tests.e2e.cluster import Cluster
from tests.stack import call


@pytest.fixture
def cluster(cluster_env: dict[str, str], tmp_path: Path, io_loop: IOLoop) -> Iterator[Cluster]:
    slow = {"DLOCK_TEST_MODE": "1", "DLOCK_FAULTS": "after_lock=sleep:1500"}
    running = Cluster.start(tmp_path, cluster_env, orders=2, invoices=1, orders_env=[slow, {}])
    yield running
    running.stop()
    io_loop.run_sync(running.close_clients)


@pytest.mark.slow
@pytest.mark.gen_test(timeout=60)
async def test_sigterm_finishes_the_request_in_flight_and_releases_its_lease(
        cluster: Cluster, cluster_env: dict[str, str]) -> None:
    order = await cluster.create_order(instance=1)
    stopping = cluster.orders[0]
    in_flight = asyncio.ensure_future(call(
        "PATCH", f"{stopping.url}/orders/{order['id']}",
        {"update_time": "2030-01-01T00:00:00Z", "quantity": 4}))
    redis = aredis.Redis.from_url(cluster_env["REDIS_URL"])
    try:
        lock_keys = f"{cluster_env['LOCK_PREFIX']}:*:lock:*"
        deadline = time.monotonic() + 10
        while not [key async for key in redis.scan_iter(lock_keys)]:
            assert time.monotonic() < deadline, "the update never took its lease"
            await asyncio.sleep(0.02)
        stopping.terminate()
        reply = await in_flight
        assert reply.status == 200 and reply.json["quantity"] == 4
        assert [key async for key in redis.scan_iter(lock_keys)] == [], "lease not released"
    finally:
        await redis.aclose()
    code = await IOLoop.current().run_in_executor(None, stopping.wait, 10.0)
    assert code == 0
    assert await cluster.disagreements([order["id"]]) == []
