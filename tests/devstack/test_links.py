"""devstack.links: what a cut, a delay and a heal do to a real client's calls."""

from __future__ import annotations

from typing import Iterator

import pytest
import redis.asyncio as aredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from devstack import RedisServer
from devstack.links import Link


@pytest.fixture
def link(redis_server: RedisServer) -> Iterator[Link]:
    with Link((redis_server.host, redis_server.port)) as running:
        yield running


def client(link: Link, timeout: float) -> aredis.Redis:
    return aredis.Redis.from_url(f"redis://{link.address}/0", socket_timeout=timeout,
                                 socket_connect_timeout=timeout)


@pytest.mark.gen_test(timeout=20)
async def test_a_blackhole_holds_calls_until_the_heal_then_delivers_them(
        link: Link, redis_server: RedisServer, unique_name: str) -> None:
    through, direct = client(link, 0.3), aredis.Redis.from_url(redis_server.url)
    try:
        assert await through.ping()
        link.cut()
        with pytest.raises(RedisTimeoutError):  # open and silent: only the timeout ends it
            await through.set(unique_name, "late")
        with pytest.raises(RedisTimeoutError):  # a new connection is held as well
            await client(link, 0.3).ping()
        assert await direct.get(unique_name) is None
        link.heal()
        assert await through.ping()
        # what the blackhole held arrives at the heal, as a retransmission would
        for _ in range(100):
            if await direct.get(unique_name) is not None:
                break
            await through.ping()
        assert await direct.get(unique_name) == b"late"
    finally:
        await through.aclose()
        await direct.aclose()


@pytest.mark.gen_test(timeout=20)
async def test_a_reset_fails_calls_at_once_and_a_delay_makes_them_late(link: Link) -> None:
    redis = client(link, 0.1)
    try:
        assert await redis.ping()
        link.cut("reset")
        with pytest.raises(RedisConnectionError):
            await redis.ping()
        with pytest.raises(RedisConnectionError):
            await redis.ping()
        link.heal()
        assert await redis.ping()
        link.delay(300)  # longer than the client waits
        with pytest.raises(RedisTimeoutError):
            await redis.ping()
        link.delay(0)
        assert await redis.ping()
    finally:
        await redis.aclose()


def test_a_link_cut_by_anything_else_is_refused(link: Link) -> None:
    with pytest.raises(ValueError):
        link.cut("drop")
