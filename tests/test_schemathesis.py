"""Property-based fuzzing of both services from docs/openapi.yaml, with schemathesis.

Each service runs as a process (invoices with INVOICES_API_KEY set). The
schemathesis CLI generates valid and invalid requests for every operation of a
tag, a bounded number per operation, plus stateful sequences that follow the
API's links, and checks: no 5xx, the status code is one the file declares,
content type, headers and body conform (every error is {error, message}).

Not checked, on purpose: schemathesis's semantic heuristics that contradict the
contract (ST202 "valid request rejected" flags 409/422 rules such as a reused
invoice id; ST203 wants 400 for a missing Fencing-Token where the contract
says 428; ST301 flags soft-deleted orders that GET still returns, as the
contract says it must).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from devstack import ServiceProcess

SPEC = Path(__file__).parent.parent / "docs" / "openapi.yaml"
KEY = "schemathesis-key-0123456789"
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_headers_conformance,response_schema_conformance")


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory, mongo_server: object,
             redis_server: object) -> Iterator[dict[str, str]]:
    logs = tmp_path_factory.mktemp("schemathesis")
    env = {"MONGO_URL": mongo_server.url, "REDIS_URL": redis_server.url,  # type: ignore
           "MONGO_DB": "schemathesis", "LOCK_PREFIX": "schemathesis",
           "INVOICES_API_KEY": KEY, "REPAIR_INTERVAL_MS": "0"}
    invoices = ServiceProcess("invoices", "INVOICES_PORT", env,
                              log_path=str(logs / "invoices.log"))
    invoices.start()
    orders = ServiceProcess("orders", "ORDERS_PORT", {**env, "INVOICES_URL": invoices.url},
                            log_path=str(logs / "orders.log"))
    try:
        orders.start()
        yield {"orders": orders.url, "invoices": invoices.url}
    finally:
        orders.stop()
        invoices.stop()


@pytest.mark.slow
@pytest.mark.parametrize("service, tag", [("orders", "orders"), ("invoices", "invoices"),
                                          ("orders", "operations"),
                                          ("invoices", "operations")])
def test_fuzzing_from_the_openapi_file_finds_no_failure(
        services: dict[str, str], service: str, tag: str, tmp_path: Path) -> None:
    st = shutil.which("st", path=str(Path(sys.executable).parent)) or "st"
    run = subprocess.run(
        [st, "run", str(SPEC), "--url", services[service], "--include-tag", tag,
         "--checks", CHECKS, "--max-examples", "25", "--seed", "1", "--no-color",
         "--request-timeout", "10", "-H", f"Authorization: Bearer {KEY}"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, check=False)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "generated" in run.stdout
