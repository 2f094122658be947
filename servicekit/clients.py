"""The outbound clients, each with timeouts, and what their failures mean."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aredis
from redis.asyncio.cluster import RedisCluster
from pymongo import AsyncMongoClient
from pymongo.errors import ConnectionFailure, PyMongoError
from redis.exceptions import RedisError

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
    """A Redis client, or a RedisCluster one with REDIS_CLUSTER=1: the lock's keys carry a
    hash tag, so each acquisition's keys sit in one slot (see fencing.keys)."""
    timeout = settings.redis_timeout_ms / 1000
    if settings.redis_cluster:
        return RedisCluster.from_url(settings.redis_url, socket_timeout=timeout,
                                     socket_connect_timeout=timeout)
    return aredis.Redis.from_url(settings.redis_url, socket_timeout=timeout,
                                 socket_connect_timeout=timeout, health_check_interval=30)


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
