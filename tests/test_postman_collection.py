"""The Postman collection lists exactly the routes the two services serve."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.routes import served_routes
from tests.stack import Stack

COLLECTION = Path(__file__).parent.parent / "docs" / "distributed-lock.postman_collection.json"
BASES = {"{{baseUrl}}": "orders", "{{invoicesUrl}}": "invoices"}


def collection_routes() -> set[tuple[str, str, str]]:
    routes = set()
    collection = json.loads(COLLECTION.read_text())

    def walk(items: list[dict]) -> None:
        for item in items:
            if "item" in item:
                walk(item["item"])
                continue
            request = item["request"]
            base, path = request["url"]["host"][0], "/" + "/".join(request["url"]["path"])
            routes.add((BASES[base], request["method"], re.sub(r"\{\{\w+\}\}", "{id}", path)))

    walk(collection["item"])
    return routes


def test_the_collection_has_a_base_url_and_example_bodies() -> None:
    collection = json.loads(COLLECTION.read_text())
    assert {"baseUrl", "invoicesUrl"} <= {v["key"] for v in collection["variable"]}
    requests = [item["request"] for group in collection["item"] for item in group["item"]]
    for request in requests:
        if request["method"] in ("POST", "PATCH"):
            assert json.loads(request["body"]["raw"]), request["url"]["raw"]


def test_the_collection_and_the_routers_list_the_same_routes(stack: Stack) -> None:
    invoices_app, orders_app = (server.request_callback for server in stack.servers)
    served = served_routes("invoices", invoices_app) | served_routes("orders", orders_app)
    assert ("orders", "PATCH", "/orders/{id}") in served
    assert collection_routes() == served


def test_auth_is_set_once_and_an_environment_file_lies_beside_the_collection() -> None:
    collection = json.loads(COLLECTION.read_text())
    assert collection["auth"]["type"] == "bearer"
    assert collection["auth"]["bearer"][0]["value"] == "{{invoicesApiKey}}"
    requests = [item["request"] for group in collection["item"] for item in group["item"]]
    assert not [request for request in requests
                if any(h["key"] == "Authorization" for h in request.get("header", []))]
    environment = json.loads(COLLECTION.with_name(
        "distributed-lock.postman_environment.json").read_text())
    keys = {value["key"] for value in environment["values"]}
    assert {"baseUrl", "invoicesUrl", "invoicesApiKey", "heldInvoiceId", "heldToken"} <= keys
