"""Where the lock's tests run: one redis-server, or a Redis Cluster of three masters.

A target is a redis:// URL, or "cluster:" and the URL of one node of a cluster;
`client_for` makes the matching redis.asyncio client (also in contender processes).
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aredis
from redis.asyncio.cluster import RedisCluster

CLUSTER = "cluster:"


def client_for(target: str, socket_timeout: float = 2.0,
               socket_connect_timeout: float = 1.0) -> Any:
    if target.startswith(CLUSTER):
        return RedisCluster.from_url(target[len(CLUSTER):], socket_timeout=socket_timeout,
                                     socket_connect_timeout=socket_connect_timeout)
    return aredis.Redis.from_url(target, socket_timeout=socket_timeout,
                                 socket_connect_timeout=socket_connect_timeout)


async def command_calls(client: Any, *commands: str) -> int:
    """How many times Redis ran these commands, summed over every node."""
    if isinstance(client, RedisCluster):
        per_node = await client.info("commandstats", target_nodes=RedisCluster.ALL_NODES)
        stats = list(per_node.values())
    else:
        stats = [await client.info("commandstats")]
    return sum(int(node.get(f"cmdstat_{name}", {}).get("calls", 0))
               for node in stats for name in commands)


async def keys(client: Any, pattern: str) -> set[str]:
    """Every key matching `pattern`, on every node."""
    if isinstance(client, RedisCluster):
        found = await client.keys(pattern, target_nodes=RedisCluster.ALL_NODES)
    else:
        found = await client.keys(pattern)
    return {key.decode() if isinstance(key, bytes) else key for key in found}
