"""The one deployment builder: who talks to whom, where each logs, which ports."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from devstack.deployment import Deployment
from devstack.services import SERVICES, ServiceSpec
from servicekit.settings import Settings, port, setting


def test_orders_instance_i_talks_to_invoices_instance_i_mod_n(tmp_path: Path) -> None:
    deployment = Deployment.build({"MONGO_DB": "d"}, counts={"invoices": 2, "orders": 5},
                                  logs=tmp_path, log_prefix="x-",
                                  envs={"orders": [{}, {"DLOCK_FAULTS": "f"}]})
    orders, invoices = deployment["orders"], deployment["invoices"]
    assert [o.env["INVOICES_URL"] for o in orders] == [invoices[i % 2].url for i in range(5)]
    assert [o.log_path for o in orders] == [
        str(tmp_path / f"x-orders-{i}.log") for i in range(5)]
    assert invoices[1].log_path == str(tmp_path / "x-invoices-1.log")
    assert orders[1].env["DLOCK_FAULTS"] == "f"
    assert "DLOCK_FAULTS" not in orders[0].env
    assert all(p.env["MONGO_DB"] == "d" for p in deployment.processes)
    assert len({p.port for p in deployment.processes}) == 7
    assert deployment.processes == [*invoices, *orders]  # started first, stopped last


def test_one_invoices_url_and_fixed_ports_serve_a_load_balancer_layout() -> None:
    deployment = Deployment.build({}, counts={"invoices": 1, "orders": 2},
                                  urls={"INVOICES_URL": "http://lb:3001"},
                                  ports={"invoices": [4101], "orders": [4100]},
                                  args=["--env=local"])
    orders, invoices = deployment["orders"], deployment["invoices"]
    assert [o.env["INVOICES_URL"] for o in orders] == ["http://lb:3001"] * 2
    assert (invoices[0].port, orders[0].port) == (4101, 4100)
    assert orders[0].command()[-1] == "--env=local"
    assert orders[0].log_path is None


@dataclass(frozen=True)
class RefundSettings(Settings):
    refunds_port: int = setting("REFUNDS_PORT", 3002, "listening port of refunds", port)


def test_a_third_service_is_one_more_spec() -> None:
    refunds = ServiceSpec("refunds", RefundSettings, calls={"INVOICES_URL": "invoices"})
    deployment = Deployment.build({}, counts={"invoices": 2, "refunds": 3},
                                  services=[*SERVICES, refunds])
    invoices = deployment["invoices"]
    assert [r.env["INVOICES_URL"] for r in deployment["refunds"]] == [
        invoices[i % 2].url for i in range(3)]
    assert deployment["refunds"][0].port_variable == "REFUNDS_PORT"
    assert deployment["refunds"][0].command()[-2:] == ["-m", "refunds"]
    assert deployment.processes[-3:] == deployment["refunds"]
