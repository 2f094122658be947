"""A real Redis Sentinel group on loopback ports: a master, its replicas and three sentinels.

    with RedisSentinelGroup() as group:
        group.sentinels_setting   # "127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3" (REDIS_SENTINELS)
        group.master_name         # "dlock" (REDIS_SENTINEL_MASTER)
        group.fail_over()         # SIGKILL the master; returns once a replica is promoted

All from the same redis-server binary (`redis-server <conf> --sentinel`). The
sentinels agree with a quorum of two and call a master down after one second,
so a failover takes two to four seconds here. Replication is asynchronous, as
in production: a promoted replica may lack the last writes, the lock's token
counter among them; `lag_replicas()` makes that certain for a test.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Callable, Sequence

import redis

from devstack.process import ServerProcess, ServerStartError
from devstack.redis_server import RedisServer, answers_ping, redis_server_binary


class SentinelServer(ServerProcess):
    name = "redis-sentinel"

    def __init__(self, config_path: Path, port: int | None = None) -> None:
        super().__init__(port)
        self.config_path = config_path

    def command(self) -> Sequence[str]:
        return [redis_server_binary(), str(self.config_path), "--sentinel"]

    def is_ready(self) -> bool:
        return answers_ping(self.host, self.port)


class RedisSentinelGroup:
    master_name = "dlock"

    def __init__(self, replicas: int = 1, sentinels: int = 3, quorum: int = 2,
                 down_after_ms: int = 1000, data_dir: str | None = None) -> None:
        self._tmp = None if data_dir else tempfile.TemporaryDirectory(prefix="redis-sentinel-")
        self.data_dir = Path(data_dir or self._tmp.name)  # type: ignore[union-attr]
        # --dir: a full resync writes an RDB file, which belongs in our directory.
        directory = ["--dir", str(self.data_dir)]
        self.servers = [RedisServer(extra_args=directory)]
        self.servers += [RedisServer(extra_args=[*directory, "--replicaof", "127.0.0.1",
                                                 str(self.servers[0].port)])
                         for _ in range(replicas)]
        self.quorum, self.down_after_ms = quorum, down_after_ms
        self.killed_at: float | None = None  # time.monotonic() of the last master killed
        self.sentinels = [SentinelServer(self.data_dir / f"sentinel-{i}.conf")
                          for i in range(sentinels)]

    @property
    def sentinels_setting(self) -> str:
        return ",".join(f"{s.host}:{s.port}" for s in self.sentinels)

    def start(self, timeout: float = 30.0) -> None:
        try:
            for server in self.servers:
                server.start()
            self._wait(lambda: all(self._info(s).get("master_link_status") == "up"
                                   for s in self.servers[1:]), timeout, "replicas in sync")
            master = self.servers[0]
            for sentinel in self.sentinels:
                # A sentinel rewrites its own config file: one file each, in our directory.
                sentinel.config_path.write_text(
                    f"port {sentinel.port}\nbind {sentinel.host}\nprotected-mode no\n"
                    f"dir {self.data_dir}\n"
                    f"sentinel monitor {self.master_name} {master.host} {master.port} "
                    f"{self.quorum}\n"
                    f"sentinel down-after-milliseconds {self.master_name} {self.down_after_ms}\n"
                    f"sentinel failover-timeout {self.master_name} 10000\n")
                sentinel.start()
            self._wait(self._sentinels_see_everyone, timeout, "sentinels discovering each other")
        except Exception:
            self.stop()
            raise

    def _sentinels_see_everyone(self) -> bool:
        for sentinel in self.sentinels:
            with redis.Redis(host=sentinel.host, port=sentinel.port, socket_timeout=2,
                             decode_responses=True) as client:
                state = client.execute_command("SENTINEL MASTER", self.master_name)
                if isinstance(state, list):
                    state = dict(zip(state[::2], state[1::2]))
                if (int(state["num-slaves"]) < len(self.servers) - 1
                        or int(state["num-other-sentinels"]) < len(self.sentinels) - 1):
                    return False
        return True

    def master(self) -> RedisServer:
        """The server the sentinels name as master now."""
        with redis.Redis(host=self.sentinels[0].host, port=self.sentinels[0].port,
                         socket_timeout=2, decode_responses=True) as client:
            _, port = client.execute_command("SENTINEL GET-MASTER-ADDR-BY-NAME",
                                             self.master_name)
        return next(server for server in self.servers if server.port == int(port))

    def lag_replicas(self) -> None:
        """From now on the replicas miss the master's writes, until `fail_over`.

        SIGSTOP alone is not enough: the kernel keeps buffering the replication
        stream for a stopped process. So the replicas are stopped and then cut
        off by the master, and cannot reconnect until they are resumed.
        """
        master = self.master()
        for server in self.servers:
            if server is not master:
                server.pause()
        with redis.Redis(host=master.host, port=master.port, socket_timeout=2) as client:
            client.execute_command("CLIENT KILL TYPE replica")

    def fail_over(self, timeout: float = 30.0) -> float:
        """SIGKILL the master (paused replicas resume at the same moment); the seconds
        until the sentinels name a replica that answers as master."""
        old = self.master()
        old.kill()
        started = self.killed_at = time.monotonic()
        for server in self.servers:
            server.resume()
        self._wait(lambda: self.master() is not old and
                   self._info(self.master()).get("role") == "master", timeout,
                   "a replica promoted")
        return time.monotonic() - started

    @staticmethod
    def _info(server: RedisServer) -> dict:
        try:
            with redis.Redis(host=server.host, port=server.port, socket_timeout=1) as client:
                return dict(client.info("replication"))
        except redis.RedisError:
            return {}

    @staticmethod
    def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if condition():
                    return
            except (redis.RedisError, StopIteration, KeyError):
                pass
            if time.monotonic() > deadline:
                raise ServerStartError(f"redis sentinel group: no {what} after {timeout}s")
            time.sleep(0.1)

    def stop(self) -> None:
        for process in [*self.sentinels, *self.servers]:
            process.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> "RedisSentinelGroup":
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
