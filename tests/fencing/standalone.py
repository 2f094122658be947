"""The fixtures the library's own tests take, for a run without the suite's conftest files.

`test_standalone.py` runs those tests (`-p tests.fencing.standalone --noconftest`)
in a virtualenv that has the installed library and nothing of the services: the
suite's conftest files import Tornado and the services, this plugin only
devstack's redis-server (the standard library and redis-py).
"""

from __future__ import annotations

import uuid
from typing import Iterator

import pytest

import fencing
from devstack.redis_server import RedisServer


def pytest_report_header() -> str:
    return f"fencing from: {fencing.__file__}"


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = RedisServer(log_path=str(tmp_path_factory.mktemp("redis") / "redis.log"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def unique_name() -> str:
    """A fresh key prefix for each test."""
    return f"t{uuid.uuid4().hex[:12]}"
