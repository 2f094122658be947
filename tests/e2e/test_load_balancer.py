"""nginx (devstack.load_balancer's configuration) in front of two orders instances.

A dead instance costs no request: nginx could not send it there, so it takes
the next instance, for POST and PATCH too. When no instance answers, the
client gets the contract's 503 `unavailable` JSON with `Retry-After`.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from devstack.load_balancer import LoadBalancer
from devstack.ports import free_port
from tests.devstack.test_run_instances import nginx_missing
from tests.e2e.cluster import Cluster
from tests.stack import ITEM, USER, call


@pytest.mark.slow
@pytest.mark.skipif(nginx_missing(), reason="nginx is not installed (apt-get install "
                    "nginx-light; .ci/run does it)")
@pytest.mark.gen_test(timeout=90)
async def test_nginx_sends_every_request_to_a_live_instance_and_answers_503_json_when_none(
        cluster_env: dict[str, str], tmp_path: Path) -> None:
    cluster = Cluster.start(tmp_path, cluster_env, orders=2, invoices=1)
    port = free_port()
    balancer = LoadBalancer({"orders": (port, [f"127.0.0.1:{o.port}" for o in cluster.orders])},
                            tmp_path / "nginx")
    balancer.start()
    url = f"http://127.0.0.1:{port}"
    try:
        cluster.orders[0].kill()
        for step in range(10):
            created = await call("POST", f"{url}/orders", {
                "user_id": USER, "item_id": ITEM, "quantity": 1, "value": Decimal("2.50")})
            assert created.status == 201, created.body
            updated = await call("PATCH", f"{url}/orders/{created.json['id']}", {
                "update_time": "2031-01-01T00:00:00Z", "quantity": 2 + step})
            assert updated.status == 200, updated.body
            assert updated.json["total"] == Decimal("2.50") * (2 + step)

        cluster.orders[1].kill()
        gone = await call("GET", f"{url}/orders/{created.json['id']}")
        assert gone.status == 503
        assert gone.headers["Content-Type"] == "application/json"
        assert gone.headers["Retry-After"] == "1"
        assert gone.json["error"] == "unavailable"
    finally:
        balancer.stop()
        cluster.stop()
        await cluster.close_clients()
