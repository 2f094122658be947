"""Real servers for the whole suite: one redis-server and one SecantusDB per run.

Tests share them but never share names: each test gets fresh key prefixes and
database names from `unique_name`. A test that kills or restarts a server asks
`make_redis_server` / `make_mongo_server` for one of its own.
"""

from __future__ import annotations

import uuid
from typing import Callable, Iterator

import pytest

from devstack import MongoServer, RedisServer


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    log = tmp_path_factory.mktemp("redis") / "redis.log"
    with RedisServer(log_path=str(log)) as server:
        yield server


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MongoServer]:
    data = tmp_path_factory.mktemp("mongo")
    with MongoServer(str(data / "data"), log_path=str(data / "mongo.log")) as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
def mongo_url(mongo_server: MongoServer) -> str:
    return mongo_server.url


@pytest.fixture
def unique_name() -> str:
    """A fresh name for key prefixes and database names."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_redis_server(tmp_path: object) -> Iterator[Callable[[], RedisServer]]:
    """Start a redis-server of the test's own, to kill or restart; stopped at teardown."""
    started: list[RedisServer] = []

    def make() -> RedisServer:
        server = RedisServer()
        server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def make_mongo_server(
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], MongoServer]]:
    """Start a SecantusDB of the test's own, to kill or restart; stopped at teardown."""
    started: list[MongoServer] = []

    def make() -> MongoServer:
        data = tmp_path_factory.mktemp("mongo-own")
        server = MongoServer(str(data / "data"), log_path=str(data / "mongo.log"))
        server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()
