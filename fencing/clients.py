"""What each lock checks of its client when made, and of its server at its first call.

`fencing.FencedLock` runs on an asyncio client, `fencing.sync.FencedLock` on a
blocking one: redis-py's or valkey-py's (a fork of redis-py with the same
shapes), single server, Sentinel-managed or cluster. Given the other kind, a
lock would fail only after Redis ran its first script: a blocking client
handed to the asyncio lock takes the lock, then its answer is awaited and
raises TypeError, and the key stays locked until its ttl. So the wrong kind is
refused at construction, before any call.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from typing import Any

from redis.exceptions import NoScriptError, RedisError

ASYNCIO = "asyncio"
BLOCKING = "blocking"

_LIBRARIES = ("redis", "valkey")
_WANTS = {
    ASYNCIO: ("fencing.FencedLock", "an asyncio client (redis.asyncio.Redis or RedisCluster, "
              "or valkey.asyncio's)", "fencing.sync.FencedLock"),
    BLOCKING: ("fencing.sync.FencedLock", "a blocking client (redis.Redis or "
               "redis.cluster.RedisCluster, or valkey's)", "fencing.FencedLock"),
}


def valkey_errors(*names: str) -> tuple[type[BaseException], ...]:
    """valkey-py's exception classes of these names (it raises its own, named as redis-py's),
    or none if it is not installed."""
    try:
        module = importlib.import_module("valkey.exceptions")
    except ImportError:
        return ()
    return tuple(getattr(module, name) for name in names)


# What a client raises for any failed call, and for a script Redis does not know.
CLIENT_ERRORS: tuple[type[BaseException], ...] = (RedisError, *valkey_errors("ValkeyError"))
NO_SCRIPT: tuple[type[BaseException], ...] = (NoScriptError, *valkey_errors("NoScriptError"))


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


# -- the server's eviction policy ----------------------------------------------------------

log = logging.getLogger("fencing")


def memory_info_args(redis: Any) -> dict[str, Any]:
    """INFO's arguments: a cluster client asks every node (each has its own policy)."""
    return {"section": "memory", **({"target_nodes": "all"} if hasattr(redis, "get_nodes")
                                    else {})}


def warn_about_eviction(info: Any) -> None:
    """Logs a warning when INFO memory's answer (one node's, or a cluster's per node) shows a
    `maxmemory-policy` other than `noeviction`: Redis may then evict the lock's keys when
    memory runs out. A held lock evicted is a resource another holder takes while the first
    still acts (the stores' fence refuses the first one's writes, but both act); a token
    counter evicted makes tokens go back. With `noeviction` a full Redis refuses writes
    instead (OOM, which the lock raises as `LockUnavailable`), and keeps what it holds."""
    nodes = [info] if "maxmemory_policy" in info else [
        node for node in info.values() if isinstance(node, dict)]
    policies = sorted({str(node.get("maxmemory_policy")) for node in nodes} - {"noeviction"})
    if policies:
        log.warning("Redis's maxmemory-policy is %s: when memory runs out Redis may evict held "
                    "locks and token counters; set maxmemory-policy to noeviction",
                    " and ".join(policies))
