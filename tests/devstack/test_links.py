"""devstack.links: what a cut, a delay and a heal do to a real client's calls.

Calls that must fail by timing out use a client that waits 0.3 s for a link that
never answers (or answers a second late); calls that must succeed use one that
waits 5 s, so a loaded machine cannot turn either into the other.
"""

from __future__ import annotations

from typing import Iterator

import pytest
import redis.asyncio as aredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from tornado.ioloop import IOLoop

from devstack import RedisServer
from devstack.links import Link


@pytest.fixture
def link(redis_server: RedisServer) -> Iterator[Link]:
    with Link((redis_server.host, redis_server.port)) as running:
        yield running


def client(link: Link, timeout: float) -> aredis.Redis:
    return aredis.Redis.from_url(f"redis://{link.address}/0", socket_timeout=timeout,
                                 socket_connect_timeout=timeout)


@pytest.fixture
def clients(link: Link, io_loop: IOLoop) -> Iterator[tuple[aredis.Redis, aredis.Redis]]:
    """(impatient, patient) clients through the link."""
    made = client(link, 0.3), client(link, 5.0)
    yield made
    for redis in made:
        io_loop.run_sync(redis.aclose)


@pytest.mark.gen_test(timeout=30)
async def test_a_blackhole_holds_calls_until_the_heal_then_delivers_them(
        link: Link, clients: tuple[aredis.Redis, aredis.Redis], redis_server: RedisServer,
        unique_name: str) -> None:
    impatient, patient = clients
    direct = aredis.Redis.from_url(redis_server.url)
    try:
        assert await impatient.ping() and await patient.ping()
        link.cut()
        with pytest.raises(RedisTimeoutError):  # open and silent: only the timeout ends it
            await impatient.set(unique_name, "late")
        with pytest.raises(RedisTimeoutError):  # a new connection is held as well
            await impatient.ping()
        assert await direct.get(unique_name) is None
        link.heal()
        assert await patient.ping()
        # what the blackhole held arrives at the heal, as a retransmission would
        for _ in range(100):
            if await direct.get(unique_name) is not None:
                break
            await patient.ping()
        assert await direct.get(unique_name) == b"late"
    finally:
        await direct.aclose()


@pytest.mark.gen_test(timeout=30)
async def test_a_reset_fails_calls_at_once_and_a_delay_makes_them_late(
        link: Link, clients: tuple[aredis.Redis, aredis.Redis]) -> None:
    impatient, patient = clients
    assert await patient.ping()
    link.cut("reset")
    with pytest.raises(RedisConnectionError):  # the connection it had
        await patient.ping()
    with pytest.raises(RedisConnectionError):  # a new one
        await patient.ping()
    link.heal()
    assert await patient.ping()
    link.delay(1000)  # longer than the impatient client waits
    with pytest.raises(RedisTimeoutError):
        await impatient.ping()
    assert await patient.ping()  # late, but within its 5 s
    link.delay(0)
    assert await patient.ping()


def test_a_link_cut_by_anything_else_is_refused(link: Link) -> None:
    with pytest.raises(ValueError):
        link.cut("drop")


def test_a_link_is_aimed_at_a_servers_url_and_rewrites_it() -> None:
    link = Link.toward("mongodb://127.0.0.1:27017/?directConnection=true")
    assert link.target == ("127.0.0.1", 27017)
    assert link.through("mongodb://127.0.0.1:27017/?directConnection=true") == \
        f"mongodb://{link.address}/?directConnection=true"
    assert link.through("rediss://user:secret@10.0.0.5:6380/2") == \
        f"rediss://user:secret@{link.address}/2"
    with pytest.raises(ValueError):
        Link.toward("redis://localhost/0")  # no port: nothing to aim at
