"""One way to lay out the services as processes: N instances of each, from their specs.

    deployment = Deployment.build(env, counts={"invoices": 2, "orders": 3}, logs=Path("logs"))
    deployment.start()     # in the specs' order (invoices, then orders); on a failure,
                           # all stopped again
    deployment["orders"][0].url, deployment["invoices"][1].pid
    deployment.stop()      # in reverse, so orders finish while invoices still answer

The services are `devstack.services.SERVICES` unless the caller names others.
Instance i of a service that calls another (orders calls invoices through
INVOICES_URL) talks to instance i % N of it (calls cross processes both ways),
unless `urls` names one address for all of them (a load balancer). Instance i
of a service logs to `<logs>/<log_prefix><service>-<i>.log`. `make run`,
`make demo`, `make chaos`, the benchmarks and the multi-process tests all
build their deployments here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from devstack.service import ServiceProcess
from devstack.services import SERVICES, ServiceSpec

Env = Mapping[str, str]


@dataclass
class Deployment:
    instances: dict[str, list[ServiceProcess]]  # by service, in start order

    @classmethod
    def build(cls, env: Env, *, counts: Mapping[str, int] | None = None,
              logs: Path | None = None, log_prefix: str = "",
              envs: Mapping[str, Sequence[Env]] | None = None,
              urls: Mapping[str, str] | None = None,
              ports: Mapping[str, Sequence[int]] | None = None, host: str = "127.0.0.1",
              args: Sequence[str] = (), services: Sequence[ServiceSpec] = SERVICES
              ) -> "Deployment":
        """The processes, not started: `counts[name]` instances of each service (1 if
        not named). `envs[name][i]` adds variables to instance i of a service only;
        `ports[name][i]` fixes its port (else a free one); `urls[variable]` is the one
        address every caller gets in that variable."""
        built: dict[str, list[ServiceProcess]] = {}
        for spec in services:
            extras, fixed = (envs or {}).get(spec.name, ()), (ports or {}).get(spec.name, ())

            def instance(i: int, spec: ServiceSpec = spec) -> ServiceProcess:
                peers = {variable: (urls or {}).get(variable)
                         or built[callee][i % len(built[callee])].url
                         for variable, callee in spec.calls.items()}
                return ServiceProcess(
                    spec.name, spec.port_variable,
                    {**env, **peers, **(extras[i] if i < len(extras) else {})},
                    port=fixed[i] if i < len(fixed) else None, host=host,
                    log_path=str(logs / f"{log_prefix}{spec.name}-{i}.log") if logs else None,
                    args=args)

            built[spec.name] = [instance(i) for i in range((counts or {}).get(spec.name, 1))]
        return cls(built)

    def __getitem__(self, service: str) -> list[ServiceProcess]:
        return self.instances[service]

    @property
    def processes(self) -> list[ServiceProcess]:
        return [process for instances in self.instances.values() for process in instances]

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
