"""One way to lay out the services as processes: N invoices and M orders instances.

    deployment = Deployment.build(env, invoices=2, orders=3, logs=Path("logs"))
    deployment.start()     # invoices first, then orders; on a failure, all stopped again
    deployment.orders[0].url, deployment.invoices[1].pid
    deployment.stop()      # orders first, so they finish while invoices still answer

Orders instance i talks to invoices instance i % N (calls cross processes both
ways), unless `invoices_url` names one address for all of them (a load
balancer). Instance i of a service logs to `<logs>/<log_prefix><service>-<i>.log`.
`make run`, `make demo`, `make chaos`, the benchmarks and the multi-process
tests all build their deployments here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from devstack.service import ServiceProcess

Env = Mapping[str, str]


@dataclass
class Deployment:
    invoices: list[ServiceProcess]
    orders: list[ServiceProcess]

    @classmethod
    def build(cls, env: Env, *, invoices: int = 1, orders: int = 1,
              logs: Path | None = None, log_prefix: str = "",
              invoices_env: Sequence[Env] = (), orders_env: Sequence[Env] = (),
              invoices_url: str | None = None, invoices_ports: Sequence[int] = (),
              orders_ports: Sequence[int] = (), host: str = "127.0.0.1",
              args: Sequence[str] = ()) -> "Deployment":
        """The processes, not started. `invoices_env[i]` / `orders_env[i]` add variables
        to instance i only; `*_ports[i]` fixes its port (else a free one)."""
        def instance(module: str, i: int, extra: Env, ports: Sequence[int]) -> ServiceProcess:
            return ServiceProcess(
                module, f"{module.upper()}_PORT", {**env, **extra},
                port=ports[i] if i < len(ports) else None, host=host,
                log_path=str(logs / f"{log_prefix}{module}-{i}.log") if logs else None,
                args=args)

        def own(extras: Sequence[Env], i: int) -> Env:
            return extras[i] if i < len(extras) else {}

        invoice_instances = [instance("invoices", i, own(invoices_env, i), invoices_ports)
                             for i in range(invoices)]
        order_instances = [
            instance("orders", i, {"INVOICES_URL": invoices_url
                                   or invoice_instances[i % invoices].url,
                                   **own(orders_env, i)}, orders_ports)
            for i in range(orders)]
        return cls(invoice_instances, order_instances)

    @property
    def processes(self) -> list[ServiceProcess]:
        return [*self.invoices, *self.orders]

    def start(self) -> None:
        try:
            for process in self.processes:
                process.start()
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
