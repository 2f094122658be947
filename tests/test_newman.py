"""Newman (Postman's command-line runner) runs the collection against live services.

Newman comes from the npm registry (package.json); `make test` installs it when
npm is on the machine. Without Node.js the test is skipped and says why.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest
import redis.asyncio as aredis

from devstack import ServiceProcess
from fencing import FencedLock
from servicekit.lock_names import invoice_lock

ROOT = Path(__file__).parent.parent
COLLECTION = ROOT / "docs" / "distributed-lock.postman_collection.json"
ENVIRONMENT = ROOT / "docs" / "distributed-lock.postman_environment.json"
NEWMAN = ROOT / "node_modules" / ".bin" / "newman"
KEY = "newman-key-0123456789abcdef"


@pytest.fixture
def services(tmp_path: Path, mongo_url: str, redis_url: str,
             unique_name: str) -> Iterator[dict[str, str]]:
    env = {"MONGO_URL": mongo_url, "REDIS_URL": redis_url, "MONGO_DB": unique_name,
           "LOCK_PREFIX": unique_name, "INVOICES_API_KEY": KEY}
    invoices = ServiceProcess("invoices", "INVOICES_PORT", env,
                              log_path=str(tmp_path / "invoices.log"))
    invoices.start()
    orders = ServiceProcess("orders", "ORDERS_PORT", {**env, "INVOICES_URL": invoices.url},
                            log_path=str(tmp_path / "orders.log"))
    try:
        orders.start()
        yield {"orders": orders.url, "invoices": invoices.url, "redis": redis_url,
               "prefix": unique_name}
    finally:
        orders.stop()
        invoices.stop()


@pytest.mark.slow
def test_newman_runs_the_postman_collection_with_every_assertion_passing(
        services: dict[str, str]) -> None:
    if shutil.which("node") is None:
        pytest.skip("Node.js is not installed here: Newman cannot run the Postman collection")
    if not NEWMAN.exists():
        pytest.skip("newman is not installed: run `make newman` (or `npm ci`)")
    environment = {v["key"]: v["value"] for v in json.loads(ENVIRONMENT.read_text())["values"]}
    # What `python -m fencing hold invoice:<id>` does for a person: a real lease, whose
    # token the collection's succeeding fenced write carries.
    token, release = asyncio.run(hold(services, invoice_lock(environment['heldInvoiceId'])))
    try:
        run = subprocess.run(
            [str(NEWMAN), "run", str(COLLECTION), "--environment", str(ENVIRONMENT),
             "--env-var", f"baseUrl={services['orders']}",
             "--env-var", f"invoicesUrl={services['invoices']}", "--env-var",
             f"invoicesApiKey={KEY}", "--env-var", f"heldToken={token}", "--bail",
             "--timeout-request", "10000", "--color", "off", "--reporters", "cli"],
            capture_output=True, text=True, timeout=120, check=False)
    finally:
        asyncio.run(release())
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "200: the holder of the lease wrote the invoice" in run.stdout, run.stdout[-3000:]
    counts = re.search(r"assertions\W+(\d+)\W+(\d+)", run.stdout)
    assert counts and int(counts[1]) >= 20 and counts[2] == "0", run.stdout[-3000:]


async def hold(services: dict[str, str], resource: str) -> tuple[int, Any]:
    """Take a 60 s lease on `resource`; its token and a coroutine function that releases it."""
    client = aredis.Redis.from_url(services["redis"])
    lease = await FencedLock(client, ttl_ms=60_000, prefix=services["prefix"]).acquire(resource)
    assert lease is not None, f"{resource} is held already"
    await client.aclose()

    async def release() -> None:
        again = aredis.Redis.from_url(services["redis"])
        try:
            await FencedLock(again, ttl_ms=60_000, prefix=services["prefix"]).release(lease)
        finally:
            await again.aclose()

    return lease.token, release
