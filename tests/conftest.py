"""Real servers for the whole suite: one redis-server and one SecantusDB per run.

Tests share them but never share names: each test gets fresh key prefixes and
database names from `unique_name`. A test that kills or restarts a server asks
`make_redis_server` / `make_mongo_server` for one of its own.
"""

from __future__ import annotations

import dataclasses
from typing import Awaitable, Callable, Iterator

import pytest
from tornado.ioloop import IOLoop

from devstack import MongoServer
from devstack.in_process import StackSettings
from tests.servers import own_servers
from tests.stack import Stack

pytest_plugins = ["tests.redis_fixtures"]


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MongoServer]:
    data = tmp_path_factory.mktemp("mongo")
    with MongoServer(str(data / "data"), log_path=str(data / "mongo.log")) as server:
        yield server


@pytest.fixture
def mongo_url(mongo_server: MongoServer) -> str:
    return mongo_server.url


@pytest.fixture
def make_mongo_server(
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], MongoServer]]:
    """Start a SecantusDB of the test's own, to kill or restart; stopped at teardown."""
    def build() -> MongoServer:
        data = tmp_path_factory.mktemp("mongo-own")
        return MongoServer(str(data / "data"), log_path=str(data / "mongo.log"))

    yield from own_servers(build)


@pytest.fixture
def service_settings(mongo_url: str, redis_url: str, unique_name: str) -> StackSettings:
    """Settings of both services with a database and key prefix of the test's own."""
    return StackSettings(mongo_url=mongo_url, redis_url=redis_url, mongo_db=unique_name,
                         lock_prefix=unique_name, lock_ttl_ms=3_000, mongo_timeout_ms=2_000,
                         redis_timeout_ms=1_000, http_timeout_ms=2_000, repair_interval_ms=0,
                         http_client="simple")


@pytest.fixture
def make_stack(io_loop: IOLoop,
               service_settings: StackSettings) -> Iterator[Callable[..., Awaitable[Stack]]]:
    """`await make_stack(**settings_changes)`: orders and invoices in this test's event
    loop, on free ports (the repairer off unless asked for); stopped at teardown."""
    started: list[Stack] = []

    async def make(**changes: object) -> Stack:
        settings = dataclasses.replace(service_settings, **changes)  # type: ignore[arg-type]
        running = await Stack.start(settings)
        started.append(running)
        return running

    yield make
    for running in started:
        io_loop.run_sync(running.stop)


@pytest.fixture
def stack(io_loop: IOLoop, make_stack: Callable[..., Awaitable[Stack]]) -> Stack:
    """Orders and invoices with the default test settings."""
    return io_loop.run_sync(make_stack)
