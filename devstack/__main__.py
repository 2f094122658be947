"""`python -m devstack` (what `make run` calls): the whole system in the foreground.

    redis     a real redis-server on a free port      unless REDIS_URL is set
    mongo     SecantusDB with its data under ./.data  unless MONGO_URL is set
    invoices  python -m invoices on INVOICES_PORT (3001)
    orders    python -m orders   on ORDERS_PORT (3000)

Unless INVOICES_API_KEY is set, a fresh random one is given to both services,
so invoice writes are authenticated in the local run too. Their logs are
interleaved on stdout, each line after its server's name.
Ctrl-C (or SIGTERM) stops them in reverse order: orders and invoices first,
so they finish their requests and release their leases while Redis and
MongoDB still answer. If any of them exits by itself, the rest are stopped
and the exit status is 1. Arguments (e.g. `--env=local`) are passed to both
services, except one:

    --instances N   N instances of each service on free ports, behind nginx (Debian's
                    package) listening on ORDERS_PORT and INVOICES_PORT; see
                    devstack.load_balancer
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import sys
import threading
from pathlib import Path

from devstack.deployment import Deployment
from devstack.load_balancer import LoadBalancer
from devstack.mongo_server import MongoServer
from devstack.process import ServerProcess
from devstack.redis_server import RedisServer

log = logging.getLogger("devstack")

DATA_DIR = Path(".data")


class Runner:
    def __init__(self, args: list[str]) -> None:
        self.instances, self.args = instances_option(args)
        self.started: list[ServerProcess] = []
        self.stop_requested = threading.Event()

    def start(self, server: ServerProcess, prefix: str) -> None:
        server.echo_prefix = f"{prefix:<8}"
        server.start()
        self.started.append(server)

    def run(self) -> int:
        env: dict[str, str] = {}
        if not os.environ.get("REDIS_URL"):
            redis = RedisServer()
            self.start(redis, "redis")
            env["REDIS_URL"] = redis.url
        if not os.environ.get("MONGO_URL"):
            DATA_DIR.mkdir(exist_ok=True)
            mongo = MongoServer(str(DATA_DIR / "mongo"), log_level="INFO")
            self.start(mongo, "mongo")
            env["MONGO_URL"] = mongo.url
        invoices_port = int(os.environ.get("INVOICES_PORT", "3001"))
        orders_port = int(os.environ.get("ORDERS_PORT", "3000"))
        host = os.environ.get("HOST", "127.0.0.1")
        env.setdefault("INVOICES_URL", os.environ.get("INVOICES_URL")
                       or f"http://{host}:{invoices_port}")
        env["PYTHONUNBUFFERED"] = "1"
        env.setdefault("LOG_FORMAT", os.environ.get("LOG_FORMAT", "text"))
        if not os.environ.get("INVOICES_API_KEY"):
            env["INVOICES_API_KEY"] = secrets.token_urlsafe(32)  # orders and invoices share it
        if self.instances == 1:
            deployment = Deployment.build(
                env, urls={"INVOICES_URL": env["INVOICES_URL"]},
                ports={"invoices": [invoices_port], "orders": [orders_port]}, host=host,
                args=self.args)
            for instance in deployment.processes:
                self.start(instance, instance.name)
        else:
            self.start_behind_nginx(env, host, orders_port, invoices_port)
        log.info("ready: orders on http://%s:%s, invoices on http://%s:%s (Redis %s, "
                 "MongoDB %s); Ctrl-C stops", host, orders_port, host, invoices_port,
                 env.get("REDIS_URL", os.environ.get("REDIS_URL")),
                 env.get("MONGO_URL", os.environ.get("MONGO_URL")))
        if "INVOICES_API_KEY" in env:
            log.info("invoice writes need: Authorization: Bearer %s", env["INVOICES_API_KEY"])
        while not self.stop_requested.wait(0.5):
            gone = [server.name for server in self.started if not server.running]
            if gone:
                log.error("%s exited by itself; stopping the rest", ", ".join(gone))
                return 1
        return 0

    def start_behind_nginx(self, env: dict[str, str], host: str, orders_port: int,
                           invoices_port: int) -> None:
        """N instances of each service on free ports, nginx on the two public ports;
        orders reach invoices through nginx too, as they would in production."""
        deployment = Deployment.build(
            env, counts={"invoices": self.instances, "orders": self.instances},
            urls={"INVOICES_URL": f"http://{host}:{invoices_port}"}, host=host, args=self.args)
        invoices, orders = deployment["invoices"], deployment["orders"]
        for index, instance in enumerate(invoices, 1):
            instance.name = f"invoices-{index}"
            self.start(instance, instance.name)
        self.start(LoadBalancer({
            "orders": (orders_port, [f"{host}:{o.port}" for o in orders]),
            "invoices": (invoices_port, [f"{host}:{i.port}" for i in invoices]),
        }, (DATA_DIR / "nginx").resolve(), host), "nginx")
        for index, instance in enumerate(orders, 1):
            instance.name = f"orders-{index}"
            self.start(instance, instance.name)
        log.info("instances: orders %s, invoices %s", " ".join(o.url for o in orders),
                 " ".join(i.url for i in invoices))

    def stop_all(self) -> None:
        for server in reversed(self.started):
            server.stop()
            log.info("%s stopped", server.name)


def instances_option(args: list[str]) -> tuple[int, list[str]]:
    """`--instances N` (or --instances=N) and the arguments left for the services."""
    rest, instances = [], 1
    values = iter(args)
    for arg in values:
        if arg == "--instances" or arg.startswith("--instances="):
            text = arg.split("=", 1)[1] if "=" in arg else next(values, "")
            if not text.isdigit() or not 1 <= int(text) <= 16:
                raise SystemExit("devstack: --instances takes a number from 1 to 16")
            instances = int(text)
        else:
            rest.append(arg)
    return instances, rest


def main() -> int:
    if {"-h", "--help"} & set(sys.argv[1:]):
        print(f"usage: make run [INSTANCES=N] [ARGS=...]  (python -m devstack)\n\n{__doc__}")
        return 0
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="devstack | %(message)s")
    runner = Runner(sys.argv[1:])
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: runner.stop_requested.set())
    try:
        return runner.run()
    except RuntimeError as exc:  # ServerStartError, or nginx missing
        log.error("%s", exc)
        return 1
    finally:
        runner.stop_all()


if __name__ == "__main__":
    sys.exit(main())
