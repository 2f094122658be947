"""A real Redis Cluster of three masters on loopback ports, from the same redis-server binary.

    with RedisCluster() as cluster:
        cluster.url          # redis://127.0.0.1:<port of the first node>/0
        cluster.nodes        # the three RedisServer processes (kill, pause, restart one)

Slots are split evenly and the nodes meet each other; `start()` returns once
every node reports `cluster_state:ok`. No replicas: enough to run multi-key
Lua scripts across a real cluster, not to test failover.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from types import TracebackType

import redis

from devstack.ports import free_port, is_listening
from devstack.process import ServerStartError
from devstack.redis_server import RedisServer

SLOTS = 16384
BUS_OFFSET = 10000  # a node also listens on port + 10000 for the cluster bus


def cluster_port(host: str = "127.0.0.1") -> int:
    """A free port whose cluster-bus port (port + 10000) is free too."""
    for _ in range(200):
        port = free_port(host)
        if port + BUS_OFFSET <= 65535 and not is_listening(host, port + BUS_OFFSET):
            return port
    raise ServerStartError("no free port pair for a cluster node")


class RedisCluster:
    def __init__(self, masters: int = 3, data_dir: str | None = None) -> None:
        self._tmp = None if data_dir else tempfile.TemporaryDirectory(prefix="redis-cluster-")
        self.data_dir = Path(data_dir or self._tmp.name)  # type: ignore[union-attr]
        self.nodes = [RedisServer(port=cluster_port(), extra_args=self._node_args(i))
                      for i in range(masters)]

    def _node_args(self, index: int) -> list[str]:
        return ["--cluster-enabled", "yes", "--cluster-node-timeout", "2000",
                "--cluster-config-file", str(self.data_dir / f"node-{index}.conf"),
                "--dir", str(self.data_dir)]

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def start(self, timeout: float = 20.0) -> None:
        for node in self.nodes:
            node.start()
        clients = [redis.Redis(host=n.host, port=n.port, socket_timeout=2) for n in self.nodes]
        try:
            share = SLOTS // len(clients)
            for index, client in enumerate(clients):
                last = SLOTS if index == len(clients) - 1 else (index + 1) * share
                client.execute_command("CLUSTER ADDSLOTS", *range(index * share, last))
            for client in clients[1:]:
                client.execute_command("CLUSTER MEET", self.nodes[0].host, self.nodes[0].port)
            deadline = time.monotonic() + timeout
            while not all(c.execute_command("CLUSTER INFO").get("cluster_state") == "ok"
                          for c in clients):
                if time.monotonic() > deadline:
                    self.stop()
                    raise ServerStartError(f"redis cluster not ok after {timeout}s")
                time.sleep(0.1)
        finally:
            for client in clients:
                client.close()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> "RedisCluster":
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
