"""A real PostgreSQL for the SQL helper's tests: Debian's binaries, a cluster of its own.

The server runs from a fresh temporary directory on a free loopback port and is
stopped by its pid, like the other servers of the suite (see devstack). Tests
run as root on CI and initdb refuses root, so as root the cluster is created and
run as `postgres`, the unprivileged user Debian's `postgresql` package creates.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from typing import Iterator, Sequence

import psycopg
import pytest

from devstack import ServerProcess

USER = "postgres"


def bin_dir() -> str | None:
    """Where Debian's postgresql keeps initdb and postgres (the newest major version), or
    $PG_BIN; None when PostgreSQL is not installed."""
    if os.environ.get("PG_BIN"):
        return os.environ["PG_BIN"]
    found = [path for path in glob.glob("/usr/lib/postgresql/*/bin")
             if os.access(os.path.join(path, "postgres"), os.X_OK)]
    if not found:
        return None
    return max(found, key=lambda path: [int(n) for n in re.findall(r"\d+", path)])


class PostgresServer(ServerProcess):
    """`with PostgresServer() as server: server.url` (SQLAlchemy, psycopg 3)."""

    name = "postgres"

    def __init__(self, binaries: str, port: int | None = None, host: str = "127.0.0.1") -> None:
        super().__init__(port, host)
        self.binaries = binaries
        self.work_dir = tempfile.mkdtemp(prefix="fencing-pg-")
        self.data_dir = os.path.join(self.work_dir, "data")
        self.log_path = os.path.join(self.work_dir, "postgres.log")
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            account = pwd.getpwnam(USER)
            os.chown(self.work_dir, account.pw_uid, account.pw_gid)
            self._as_user = ["setpriv", f"--reuid={USER}", f"--regid={USER}",
                             "--init-groups", "--"]
        try:
            subprocess.run([*self._as_user, os.path.join(binaries, "initdb"), "-D",
                            self.data_dir, "-U", USER, "--auth=trust", "-E", "UTF8",
                            "--no-sync"], check=True, capture_output=True, timeout=120)
        except BaseException:
            shutil.rmtree(self.work_dir, ignore_errors=True)
            raise

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{USER}@{self.host}:{self.port}/postgres"

    def command(self) -> Sequence[str]:
        # fsync off: these tests are about concurrent writers, not about durability.
        return [*self._as_user, os.path.join(self.binaries, "postgres"), "-D", self.data_dir,
                "-h", self.host, "-p", str(self.port), "-k", self.work_dir,
                "-c", "fsync=off", "-c", "max_connections=60"]

    def is_ready(self) -> bool:
        try:
            with psycopg.connect(host=self.host, port=self.port, user=USER,
                                 dbname="postgres", connect_timeout=1):
                return True
        except psycopg.OperationalError:
            return False

    def stop(self, timeout: float = 10.0) -> None:
        super().stop(timeout)
        shutil.rmtree(self.work_dir, ignore_errors=True)


def running_url() -> Iterator[str]:
    """For a fixture: the URL of a PostgreSQL of its own, stopped at teardown; skips the
    test when PostgreSQL is not installed."""
    binaries = bin_dir()
    if binaries is None:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    server = PostgresServer(binaries)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
