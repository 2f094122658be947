"""GET /docs on both services: Swagger UI, with no network but the service's own, renders
every operation of docs/openapi.yaml in a real browser."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.browser import CHROMIUM, chromium
from tests.test_newman import services  # noqa: F401 (the fixture: both services, live)

SPEC = yaml.safe_load((Path(__file__).parent.parent / "docs" / "openapi.yaml").read_text())


def test_each_path_names_the_server_of_its_service() -> None:
    for path, item in SPEC["paths"].items():
        if path.startswith(("/orders", "/invoices")):
            port = "3000" if path.startswith("/orders") else "3001"
            assert [server["url"] for server in item["servers"]] == [
                f"http://127.0.0.1:{port}"], path


def test_every_request_body_has_an_example() -> None:
    for path, item in SPEC["paths"].items():
        for method, operation in item.items():
            body = operation.get("requestBody") if isinstance(operation, dict) else None
            if body:
                assert "example" in body["content"]["application/json"], (method, path)


@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed")
def test_the_docs_page_renders_every_operation_from_the_service_alone(
        services: dict[str, str]) -> None:  # noqa: F811
    operations = sum(1 for item in SPEC["paths"].values() for method in item
                     if method in ("get", "post", "patch", "delete"))
    for base in (services["orders"], services["invoices"]):
        with urllib.request.urlopen(f"{base}/docs", timeout=10) as reply:
            page = reply.read().decode()
        assert not re.search(r"""(src|href)=["']?https?://""", page), "the page loads from afar"
        dom = chromium("--virtual-time-budget=15000", "--dump-dom", f"{base}/docs").stdout
        rendered = re.findall(r'class="opblock opblock-(get|post|patch|delete)', dom)
        assert len(rendered) == operations, dom[-3000:]
        assert "/invoices/{id}" in dom and "Update quantity and/or value" in dom
