"""Redis SIGKILLed under load and started again, empty or with its data: once it
answers PING, no call fails on any orders instance.

The calls sent while it is down may answer 503. Those started after it answers
again must not: every instance's pooled connections died with the old server,
and the clients must find that out before sending on one (servicekit.clients),
not by losing a request to it. The load goes to orders-0 alone while Redis is
down, so that orders-1 (and invoices-1 behind it) still hold the dead
connections when their next calls come, as an instance the load balancer did not
pick meanwhile does. Then the checker finds nothing wrong.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from tornado.ioloop import IOLoop

from devstack import RedisServer
from devstack.workload import Workload, check, create_orders
from tests.e2e.calls import on, record_calls, started_after, unanswered
from tests.e2e.cluster import Cluster

FAST = {"LOCK_TTL_MS": "1000", "REPAIR_INTERVAL_MS": "300", "REDIS_TIMEOUT_MS": "500"}


@pytest.mark.slow
@pytest.mark.gen_test(timeout=90)
@pytest.mark.parametrize("keeps_data", [False, True], ids=["empty", "with-its-data"])
async def test_once_redis_answers_again_no_call_fails(
        cluster_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        keeps_data: bool) -> None:
    redis = RedisServer(log_path=str(tmp_path / "redis.log"),
                        data_dir=str(tmp_path / "redis-data") if keeps_data else None)
    redis.start()
    calls = record_calls(monkeypatch)
    cluster = Cluster.start(tmp_path, {**cluster_env, **FAST, "REDIS_URL": redis.url},
                            orders=2, invoices=2)
    try:
        orders = await create_orders(cluster.orders[0].url, 6)
        urls = [instance.url for instance in cluster.orders]
        down: list[float] = []
        back: list[float] = []
        workload = Workload(lambda: urls[:1] if down and not back else urls, orders,
                            clients=6, max_calls=1500, max_seconds=7.0, delete_share=0.0)

        async def restart_redis() -> None:
            await asyncio.sleep(2.0)
            down.append(time.monotonic())
            await asyncio.sleep(0.3)  # orders-1's calls in flight finish while Redis is up
            redis.kill()
            # Down for three times REDIS_TIMEOUT_MS: a call that starts now cannot ride the
            # outage out on the lock's retries, so the control below sees its 503.
            await asyncio.sleep(1.5)
            # start() returns once the server answers PING (after loading its data)
            await IOLoop.current().run_in_executor(None, redis.start)
            back.append(time.monotonic())

        await asyncio.gather(workload.run(), restart_redis())
        during = started_after(calls, down[0], before=back[0])
        after = started_after(calls, back[0])
        print(f"Redis back {'with its data' if keeps_data else 'empty'}:",
              len(during), "calls during the outage,",
              sum(c.status == 503 for c in during), "of them 503;", len(after), "after;",
              dict(workload.statuses))
        assert any(c.status == 503 for c in during), "Redis was down: some calls saw 503"
        for url in urls:
            assert [c for c in on(after, url) if c.method == "PATCH"], f"no call reached {url}"
        assert [c for c in after if c.failed] == [] and unanswered(after) == []

        assert await cluster.settled([o["id"] for o in orders], 1.0 + 0.3 + 8.0) == []
        report = await check(workload, urls[0], cluster.invoices[0].url)
        assert (report.disagreeing, report.lost_updates, report.stale_writes) == ([], [], [])
    finally:
        cluster.stop()
        await cluster.close_clients()
        redis.stop()
