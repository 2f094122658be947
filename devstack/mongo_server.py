"""SecantusDB, a MongoDB-wire server on WiredTiger, on a loopback port."""

from __future__ import annotations

import sys
from typing import Sequence

from devstack.process import ServerProcess


class MongoServer(ServerProcess):
    """`python -m secantus` with its data under `data_dir`, every commit synced.

    `--sync-on-commit` because a fencing check protects nothing if the write it
    guards can vanish in a crash (SecantusDB's default loses acknowledged
    writes on SIGKILL). Pass `data_dir=":memory:"` for a throwaway store.
    """

    name = "mongo"
    start_timeout = 60.0

    def __init__(self, data_dir: str, port: int | None = None, host: str = "127.0.0.1",
                 log_path: str | None = None, log_level: str = "WARNING") -> None:
        super().__init__(port, host, log_path)
        self.data_dir = data_dir
        self.log_level = log_level

    @property
    def url(self) -> str:
        return f"mongodb://{self.host}:{self.port}/?directConnection=true"

    def command(self) -> Sequence[str]:
        return [sys.executable, "-m", "secantus", "--host", self.host, "--port", str(self.port),
                "--storage-path", self.data_dir, "--sync-on-commit", "--log-level", self.log_level]
