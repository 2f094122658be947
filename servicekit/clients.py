"""The outbound clients, each with timeouts, and what their failures mean."""

from __future__ import annotations

import weakref
from typing import Any

import redis.asyncio as aredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import parse_url
from redis.asyncio.sentinel import Sentinel
from pymongo import AsyncMongoClient
from pymongo.errors import ConnectionFailure, PyMongoError
from redis.exceptions import RedisError
from redis.maint_notifications import MaintNotificationsConfig

from fencing import FencedLock, LockError
from servicekit.errors import Unavailable
from servicekit.settings import Settings


def make_mongo(settings: Settings) -> AsyncMongoClient:
    """Journaled majority writes: a token check guards nothing if its write can vanish."""
    timeout = settings.mongo_timeout_ms
    return AsyncMongoClient(settings.mongo_url, serverSelectionTimeoutMS=timeout,
                            connectTimeoutMS=timeout, socketTimeoutMS=timeout,
                            timeoutMS=timeout, w="majority", journal=True,
                            tz_aware=True, connect=False)


def make_redis(settings: Settings) -> Any:
    """A Redis client; a RedisCluster one with REDIS_CLUSTER=1 (the lock's keys carry a
    hash tag, so each acquisition's keys sit in one slot: see fencing.keys); one for the
    master named by Redis Sentinel with REDIS_SENTINELS."""
    timeout = settings.redis_timeout_ms / 1000
    if settings.redis_cluster:
        return RedisCluster.from_url(settings.redis_url, socket_timeout=timeout,
                                     socket_connect_timeout=timeout)
    if settings.redis_sentinels:
        return _sentinel_master(settings, timeout)
    return aredis.Redis.from_url(settings.redis_url, socket_timeout=timeout,
                                 socket_connect_timeout=timeout, **_POOL_OPTIONS)


# What keeps a pooled connection that died with its server (a Redis restart, a failover)
# from costing the next request, with no command ever sent twice:
# - redis-py checks a pooled connection for EOF before lending it and reconnects if the
#   server closed it, but skips that check while "maintenance notifications" are on, and
#   their default "auto" counts as on; these servers send none, so they are off.
# - a connection idle for 30 s is PINGed before use (one that died silently, no EOF).
# - No retries: `from_url` gives each connection `Retry(NoBackoff(), 0)`. redis-py cannot
#   tell a command that never reached the server from one whose answer was lost, and a
#   second ACQUIRE or BLPOP is not the first: whether a script may run again is for the
#   lock (`fencing`) to decide, which knows what each script does.
_POOL_OPTIONS: dict[str, Any] = {
    "health_check_interval": 30,
    "maint_notifications_config": MaintNotificationsConfig(enabled=False)}


def _sentinel_master(settings: Settings, timeout: float) -> Any:
    """The master the sentinels name. redis-py asks them again whenever a connection
    fails, so after a failover the next call reaches the promoted replica."""
    # REDIS_URL's credentials, database and TLS options; its host and port are the
    # sentinels' to tell.
    options: dict[str, Any] = {key: value for key, value in parse_url(settings.redis_url).items()
                               if key not in ("host", "port", "path", "connection_class")}
    if settings.redis_url.startswith("rediss://"):
        options["ssl"] = True
    sentinel = Sentinel(list(settings.redis_sentinels), socket_timeout=timeout,
                        socket_connect_timeout=timeout)
    master = sentinel.master_for(settings.redis_sentinel_master, socket_timeout=timeout,
                                 socket_connect_timeout=timeout,
                                 **{**_POOL_OPTIONS, **options})  # the URL's own win
    _sentinel_clients[master] = list(sentinel.sentinels)
    return master


# redis-py reorders `Sentinel.sentinels` in place while several tasks discover the master
# at once, and can lose one from the list; the clients made are kept here to close them all.
_sentinel_clients: "weakref.WeakKeyDictionary[Any, list[Any]]" = weakref.WeakKeyDictionary()


async def close_redis(redis: Any) -> None:
    """Close the client and, behind Sentinel, its connections to the sentinels too."""
    await redis.aclose()
    for sentinel in _sentinel_clients.pop(redis, []):
        await sentinel.aclose()


def make_lock(settings: Settings, redis: Any) -> FencedLock:
    return FencedLock(redis, ttl_ms=settings.lock_ttl_ms, prefix=settings.lock_prefix)


def unavailable(exc: BaseException) -> Unavailable | None:
    """The Unavailable error a dependency's failure means, or None if it is not one."""
    if isinstance(exc, LockError) and not isinstance(exc, Unavailable):
        return Unavailable(f"the lock service is unavailable: {exc}", dependency="redis")
    if isinstance(exc, RedisError):
        return Unavailable("Redis is unavailable", dependency="redis")
    if isinstance(exc, ConnectionFailure) or (isinstance(exc, PyMongoError) and exc.timeout):
        return Unavailable("MongoDB is unavailable", dependency="mongodb")
    return None


async def ping_mongo(mongo: AsyncMongoClient) -> None:
    await mongo.admin.command("ping")


async def ping_redis(redis: Any) -> None:
    await redis.ping()
