"""The README's way to a real Fencing-Token, run as written against live services."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from devstack import ServiceProcess

README = Path(__file__).parent.parent.parent / "README.md"
KEY = "readme-key-0123456789abcdef"


def recipe() -> str:
    """The shell block of "Try it with curl" that holds a lease with python -m fencing."""
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(), flags=re.S)
    [block] = [b for b in blocks if "python -u -m fencing" in b and "TOKEN=$(head" in b]
    return block


@pytest.fixture
def services(tmp_path: Path, mongo_url: str, redis_url: str,
             unique_name: str) -> Iterator[dict[str, str]]:
    # LOCK_PREFIX left at its default, as `make run` leaves it: the recipe passes none.
    env = {"MONGO_URL": mongo_url, "REDIS_URL": redis_url, "MONGO_DB": unique_name,
           "INVOICES_API_KEY": KEY}
    invoices = ServiceProcess("invoices", "INVOICES_PORT", env,
                              log_path=str(tmp_path / "invoices.log"))
    orders = ServiceProcess("orders", "ORDERS_PORT", env, log_path=str(tmp_path / "orders.log"))
    orders.env["INVOICES_URL"] = invoices.url
    try:
        invoices.start()
        orders.start()
        yield {"orders": orders.url, "invoices": invoices.url, "redis": redis_url}
    finally:
        orders.stop()
        invoices.stop()


def post_order(orders_url: str) -> dict:
    body = json.dumps({"user_id": "6f1d6c4e-6a8e-4e55-9a43-5b0c1f3e2a10",
                       "item_id": "0b7e3c52-2f5d-4c9b-8a55-7c7f0f1e9d21",
                       "quantity": 4, "value": 12.5}).encode()
    request = urllib.request.Request(f"{orders_url}/orders", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        return dict(json.loads(reply.read()))


@pytest.mark.slow
def test_the_readme_recipe_gets_a_token_that_writes_the_invoice(
        services: dict[str, str], tmp_path: Path) -> None:
    if importlib.util.find_spec("fencing.__main__") is None:
        pytest.skip("python -m fencing (the library's command line) is not in this tree")
    order = post_order(services["orders"])
    script = recipe().replace("localhost:3000", services["orders"].removeprefix("http://"))
    script = script.replace("localhost:3001", services["invoices"].removeprefix("http://"))
    script = script.replace(".venv/bin/python", sys.executable)
    script = re.sub(r"^REDIS=.*$", f"REDIS={services['redis']}", script, flags=re.M)
    script = f"ORDER={order['id']}; INVOICE={order['invoice_id']}; KEY={KEY}\n{script}"
    run = subprocess.run(["timeout", "60", "bash", "-c", script], cwd=tmp_path,
                         capture_output=True, text=True, timeout=90, check=False)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    written = json.loads(output[output.index("{"):output.index("}") + 1])
    assert written["total"] == 1, output  # the PATCH with the held token: 200
    assert "HTTP/1.1 204" in output, output  # then the order (and its invoice) deleted
