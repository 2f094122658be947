"""The Redis fixtures of the whole suite, in a module of their own: the library's tests
take them in a virtualenv without the services too (see tests/fencing/standalone.py).

One redis-server per run, shared; `unique_name` gives each test fresh key
prefixes (and database names); `make_redis_server` starts one of the test's own,
to kill or restart.
"""

from __future__ import annotations

import uuid
from typing import Callable, Iterator

import pytest

from devstack.redis_server import RedisServer
from tests.servers import own_servers


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    log = tmp_path_factory.mktemp("redis") / "redis.log"
    with RedisServer(log_path=str(log)) as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
def unique_name() -> str:
    """A fresh name for key prefixes and database names."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_redis_server() -> Iterator[Callable[[], RedisServer]]:
    """Start a redis-server of the test's own, to kill or restart; stopped at teardown."""
    yield from own_servers(RedisServer)
