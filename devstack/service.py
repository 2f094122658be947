"""One instance of a service of this project (`python -m orders`, ...) as a child process."""

from __future__ import annotations

import os
import sys
import urllib.request
from typing import Mapping, Sequence

from devstack.process import ServerProcess


class ServiceProcess(ServerProcess):
    """`python -m <module> [args]` with `env` added to this process's environment.

    Ready when `GET /health` answers 200. The port is passed in the service's
    own variable (`port_variable`, e.g. ORDERS_PORT), so restarts keep it.
    """

    start_timeout = 30.0

    def __init__(self, module: str, port_variable: str, env: Mapping[str, str] | None = None,
                 port: int | None = None, host: str = "127.0.0.1",
                 log_path: str | None = None, args: Sequence[str] = ()) -> None:
        super().__init__(port, host, log_path)
        self.args = list(args)
        self.name = module
        self.module = module
        self.port_variable = port_variable
        self.env = dict(env or {})

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> Sequence[str]:
        return [sys.executable, "-m", self.module, *self.args]

    def environment(self) -> dict[str, str]:
        return {**os.environ, **self.env, self.port_variable: str(self.port), "HOST": self.host}

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=0.5) as response:
                return bool(response.status == 200)
        except OSError:
            return False
