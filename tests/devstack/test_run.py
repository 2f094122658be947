"""`python -m devstack` (`make run`): everything up, usable, and stopped cleanly by Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from devstack import free_port
from tests.stack import ITEM, USER


def post_json(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
        answer: dict = json.loads(response.read())
        return answer


def children_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                         text=True, check=False).stdout
    return [int(line) for line in out.split()]


@pytest.mark.slow
def test_make_run_starts_redis_mongo_and_both_services_and_ctrl_c_stops_them(
        tmp_path: Path) -> None:
    orders_port, invoices_port = free_port(), free_port()
    env = {key: value for key, value in os.environ.items()
           if key not in ("REDIS_URL", "MONGO_URL", "INVOICES_URL")}
    env.update(ORDERS_PORT=str(orders_port), INVOICES_PORT=str(invoices_port))
    output = tmp_path / "run.log"
    with open(output, "wb") as log:
        run = subprocess.Popen([sys.executable, "-m", "devstack"], cwd=tmp_path, env=env,
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while b"devstack | ready" not in output.read_bytes():
            assert run.poll() is None, output.read_text()
            assert time.monotonic() < deadline, output.read_text()
            time.sleep(0.1)
        children = children_of(run.pid)
        assert len(children) == 4, output.read_text()

        order = post_json(f"http://127.0.0.1:{orders_port}/orders", {
            "user_id": USER, "item_id": ITEM, "quantity": 3, "value": 0.1})
        assert order["total"] == 0.3
        with urllib.request.urlopen(f"http://127.0.0.1:{invoices_port}/invoices/"
                                    f"{order['invoice_id']}", timeout=10) as response:
            assert json.loads(response.read())["total"] == 0.3

        run.send_signal(signal.SIGINT)
        assert run.wait(60) == 0
    finally:
        if run.poll() is None:
            run.kill()
    text = output.read_text()
    for prefix in ("redis    |", "mongo    |", "invoices |", "orders   |"):
        assert prefix in text, f"no {prefix!r} lines in:\n{text}"
    assert "orders stopped" in text and "redis stopped" in text
    for child in children:
        assert not Path(f"/proc/{child}").exists() or \
            "zombie" in Path(f"/proc/{child}/status").read_text(), f"{child} still runs"
    assert (tmp_path / ".data" / "mongo").is_dir()
