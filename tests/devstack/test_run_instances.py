"""`make run INSTANCES=2`: two instances of each service behind nginx, used and stopped.

nginx comes from Debian's package (`.ci/run` installs it); the same rendered
configuration is the one docker-compose.production.yml mounts.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devstack import free_port
from devstack.load_balancer import COMPOSE_UPSTREAMS, nginx_binary, render
from devstack.workload import Workload, check, create_orders
from tests.devstack.test_run import children_of

REPO = Path(__file__).resolve().parents[2]


def nginx_missing() -> bool:
    try:
        nginx_binary()
        return False
    except RuntimeError:
        return True


def test_the_compose_nginx_config_is_the_rendered_one() -> None:
    assert (REPO / "deploy" / "nginx.conf").read_text() == render(COMPOSE_UPSTREAMS), (
        "deploy/nginx.conf is stale: python -m devstack.load_balancer > deploy/nginx.conf")


@pytest.mark.slow
@pytest.mark.skipif(nginx_missing(), reason="nginx is not installed (apt-get install "
                    "nginx-light; .ci/run does it)")
@pytest.mark.gen_test(timeout=120)
async def test_two_instances_of_each_behind_nginx_share_the_work_and_stay_consistent(
        tmp_path: Path) -> None:
    orders_port, invoices_port = free_port(), free_port()
    env = {key: value for key, value in os.environ.items()
           if key not in ("REDIS_URL", "MONGO_URL", "INVOICES_URL")}
    env.update(ORDERS_PORT=str(orders_port), INVOICES_PORT=str(invoices_port),
               LOG_FORMAT="text")
    output = tmp_path / "run.log"
    with open(output, "wb") as log:
        run = subprocess.Popen([sys.executable, "-m", "devstack", "--instances", "2"],
                               cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while b"devstack | ready" not in output.read_bytes():
            assert run.poll() is None, output.read_text()
            assert time.monotonic() < deadline, output.read_text()
            await asyncio.sleep(0.1)
        children = children_of(run.pid)
        assert len(children) == 7, output.read_text()  # redis, mongo, nginx, 2 + 2

        orders_url = f"http://127.0.0.1:{orders_port}"
        orders = await create_orders(orders_url, 4)
        workload = Workload(lambda: [orders_url], orders, clients=8, max_calls=300,
                            max_seconds=15.0)
        await workload.run()
        assert workload.statuses["PATCH", 200] >= 20, workload.statuses
        assert set(workload.statuses) <= {("PATCH", 200), ("PATCH", 409), ("PATCH", 423),
                                          ("DELETE", 204), ("DELETE", 423)}
        report = await check(workload, orders_url, f"http://127.0.0.1:{invoices_port}")
        assert (report.disagreeing, report.lost_updates, report.stale_writes) == ([], [], [])

        run.send_signal(signal.SIGINT)
        for _ in range(600):
            if run.poll() is not None:
                break
            await asyncio.sleep(0.1)
        assert run.poll() == 0, output.read_text()
    finally:
        if run.poll() is None:
            run.kill()
    text = output.read_text()
    for name in ("orders-1", "orders-2", "invoices-1", "invoices-2"):
        assert f"{name} | " in text and "PATCH /" in text
        served = [line for line in text.splitlines()
                  if line.startswith(f"{name} |") and ("PATCH /" in line or "POST /" in line)]
        assert served, f"{name} served no writes:\n{text[-3000:]}"
    assert "nginx stopped" in text
    for child in children:
        assert not Path(f"/proc/{child}").exists() or \
            "zombie" in Path(f"/proc/{child}/status").read_text(), f"{child} still runs"
