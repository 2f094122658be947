"""Which Redis client each lock takes, checked when the lock is made.

`fencing.FencedLock` runs on an asyncio client, `fencing.sync.FencedLock` on a
blocking one: redis-py's or valkey-py's (a fork of redis-py with the same
shapes), single server, Sentinel-managed or cluster. Given the other kind, a
lock would fail only after Redis ran its first script: a blocking client
handed to the asyncio lock takes the lock, then its answer is awaited and
raises TypeError, and the key stays locked until its ttl. So the wrong kind is
refused at construction, before any call.
"""

from __future__ import annotations

import inspect
from typing import Any

ASYNCIO = "asyncio"
BLOCKING = "blocking"

_LIBRARIES = ("redis", "valkey")
_WANTS = {
    ASYNCIO: ("fencing.FencedLock", "an asyncio client (redis.asyncio.Redis or RedisCluster, "
              "or valkey.asyncio's)", "fencing.sync.FencedLock"),
    BLOCKING: ("fencing.sync.FencedLock", "a blocking client (redis.Redis or "
               "redis.cluster.RedisCluster, or valkey's)", "fencing.FencedLock"),
}


def client_kind(redis: Any) -> str | None:
    """ASYNCIO or BLOCKING for a client of redis-py or valkey-py (subclasses, such as
    fakeredis's, included), else what its `execute_command` is; None if not a client."""
    if not callable(getattr(redis, "evalsha", None)):
        return None
    modules = [kind.__module__ for kind in type(redis).__mro__]
    if any(module.startswith(tuple(f"{lib}.asyncio" for lib in _LIBRARIES))
           for module in modules):
        return ASYNCIO
    if any(module.split(".")[0] in _LIBRARIES for module in modules):
        return BLOCKING
    execute = getattr(type(redis), "execute_command", None)
    return ASYNCIO if inspect.iscoroutinefunction(execute) else BLOCKING


def check_client(redis: Any, wants: str) -> None:
    """Raises TypeError, saying which lock takes which client, unless `redis` is of the kind
    the lock `wants` (ASYNCIO or BLOCKING)."""
    kind = client_kind(redis)
    if kind == wants:
        return
    lock, client, other_lock = _WANTS[wants]
    got = f"{type(redis).__module__}.{type(redis).__qualname__}"
    if kind is None:
        raise TypeError(f"{lock} takes {client}, got {got}, which is not a Redis client")
    article = "an" if kind == ASYNCIO else "a"
    raise TypeError(f"{lock} takes {client}, got {got}, {article} {kind} client: "
                    f"use {other_lock} with it")
