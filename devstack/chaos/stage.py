"""The stage of one strategy's chaos run: its Redis, its MongoDB, its service instances and
the links a fault can cut, started and stopped together."""

from __future__ import annotations

import secrets
from pathlib import Path

from devstack.clock import FakeClock
from devstack.deployment import Deployment
from devstack.links import Link
from devstack.mongo_server import MongoServer
from devstack.redis_server import RedisServer
from devstack.service import ServiceProcess
from devstack.services import spec

TTL_MS = 400
REPAIR_MS = 300
STRATEGIES = {
    "naive (UNSAFE)": {"DLOCK_UNSAFE_NAIVE": "1", "REPAIR_INTERVAL_MS": "0"},
    "fenced": {"REPAIR_INTERVAL_MS": str(REPAIR_MS)},
}


class Stage:
    """Redis, MongoDB and the service instances of one strategy's run."""

    def __init__(self, name: str, extra_env: dict[str, str], logs: Path,
                 scenario_env: tuple[dict[str, str], dict[str, str]]) -> None:
        self.logs = logs / name.split()[0]
        self.logs.mkdir(parents=True, exist_ok=True)
        self.clock = FakeClock(self.logs / "redis-clock")
        self.redis = RedisServer(log_path=str(self.logs / "redis.log"), clock=self.clock)
        self.mongo = MongoServer(str(self.logs / "mongo-data"),
                                 log_path=str(self.logs / "mongo.log"))
        self.extra_env = extra_env
        self.scenario_env = scenario_env  # what the scenario's A and B add to the stage's
        self.invoices: list[ServiceProcess] = []
        self.orders: list[ServiceProcess] = []
        self.scenario: tuple[ServiceProcess, ServiceProcess] | None = None
        self.names: dict[str, str] = {}
        # Every orders instance but orders-0 (the checker's) reaches Redis, MongoDB
        # and its invoices through links a fault can cut.
        self.links: dict[str, dict[str, Link]] = {}

    def start(self) -> None:
        self.redis.start()
        self.mongo.start()
        env = {"REDIS_URL": self.redis.url, "MONGO_URL": self.mongo.url,
               "LOCK_TTL_MS": str(TTL_MS), "REDIS_TIMEOUT_MS": "500", "HTTP_TIMEOUT_MS": "2000",
               "MONGO_TIMEOUT_MS": "3000", "DLOCK_TEST_MODE": "1",
               "DLOCK_FAULTS": "after_lock=sleep:20,after_invoice_write=sleep:20",
               "PYTHONUNBUFFERED": "1", "INVOICES_API_KEY": secrets.token_urlsafe(32),
               **self.extra_env}
        cut_off = [{"redis": Link.toward(self.redis.url, name=f"orders-{i} to redis").start(),
                    "mongo": Link.toward(self.mongo.url, name=f"orders-{i} to mongo").start(),
                    "invoices": Link(name=f"orders-{i} to invoices").start()}
                   for i in (1, 2)]
        deployment = Deployment.build(
            env, counts={"invoices": 2, "orders": 3}, logs=self.logs, envs={"orders": [
                {}, *({"REDIS_URL": links["redis"].through(self.redis.url),
                       "MONGO_URL": links["mongo"].through(self.mongo.url),
                       "INVOICES_URL": f"http://{links['invoices'].address}"}
                      for links in cut_off)]})
        self.invoices, self.orders = deployment["invoices"], deployment["orders"]
        for i, links in enumerate(cut_off, start=1):
            invoices = self.invoices[i % len(self.invoices)]
            links["invoices"].target = (invoices.host, invoices.port)
            self.links[f"orders-{i}"] = links
        for module, instances in (("invoices", self.invoices), ("orders", self.orders)):
            for i, instance in enumerate(instances):
                self.names[instance.url] = f"{module}-{i}"
        holder, successor = self.scenario_env
        self.scenario = (
            self._service("orders", "scenario-A",
                          {**env, "INVOICES_URL": self.invoices[0].url, **holder}),
            self._service("orders", "scenario-B",
                          {**env, "INVOICES_URL": self.invoices[1].url, **successor}))
        deployment.start()
        for instance in self.scenario:
            instance.start()

    def _service(self, module: str, name: str, env: dict[str, str]) -> ServiceProcess:
        instance = ServiceProcess(module, spec(module).port_variable, env,
                                  log_path=str(self.logs / f"{name}.log"))
        self.names[instance.url] = name
        return instance

    def stop(self) -> None:
        for server in [*self.orders, *(self.scenario or ()), *self.invoices, self.mongo,
                       self.redis]:
            server.stop()
        for links in self.links.values():
            for link in links.values():
                link.stop()

    def up(self) -> list[str]:
        return [o.url for o in self.orders if o.running and not o.frozen]

    def service_logs(self) -> list[Path]:
        return sorted(self.logs.glob("*-*.log"))
