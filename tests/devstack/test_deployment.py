"""The one deployment builder: who talks to whom, where each logs, which ports."""

from __future__ import annotations

from pathlib import Path

from devstack import Deployment


def test_orders_instance_i_talks_to_invoices_instance_i_mod_n(tmp_path: Path) -> None:
    deployment = Deployment.build({"MONGO_DB": "d"}, invoices=2, orders=5, logs=tmp_path,
                                  log_prefix="x-", orders_env=[{}, {"DLOCK_FAULTS": "f"}])
    assert [o.env["INVOICES_URL"] for o in deployment.orders] == [
        deployment.invoices[i % 2].url for i in range(5)]
    assert [o.log_path for o in deployment.orders] == [
        str(tmp_path / f"x-orders-{i}.log") for i in range(5)]
    assert deployment.invoices[1].log_path == str(tmp_path / "x-invoices-1.log")
    assert deployment.orders[1].env["DLOCK_FAULTS"] == "f"
    assert "DLOCK_FAULTS" not in deployment.orders[0].env
    assert all(p.env["MONGO_DB"] == "d" for p in deployment.processes)
    assert len({p.port for p in deployment.processes}) == 7


def test_one_invoices_url_and_fixed_ports_serve_a_load_balancer_layout() -> None:
    deployment = Deployment.build({}, invoices=1, orders=2, invoices_url="http://lb:3001",
                                  invoices_ports=[4101], orders_ports=[4100],
                                  args=["--env=local"])
    assert [o.env["INVOICES_URL"] for o in deployment.orders] == ["http://lb:3001"] * 2
    assert (deployment.invoices[0].port, deployment.orders[0].port) == (4101, 4100)
    assert deployment.orders[0].command()[-1] == "--env=local"
    assert deployment.orders[0].log_path is None
