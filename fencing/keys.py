"""Where a lock lives in Redis: the key scheme.

Every key starts with a fixed prefix and carries a Redis Cluster hash tag, so
that all keys one acquisition touches (its lock keys, wait queues and the token
counter) hash to one slot and a multi-key Lua script may run on a cluster::

    <prefix>:{<tag>}:lock:<resource>    the lock: "<token>:<lease id>", with a PX expiry
    <prefix>:{<tag>}:queue:<resource>   waiters for it: sorted set, lease id by ticket
    <prefix>:{<tag>}:counters           hash: "token", the fencing token counter;
                                        "ticket", the arrival order of waiters
    <prefix>:{<tag>}:waiters            live waiters: sorted set, lease id by deadline (ms)
    <prefix>:{<tag>}:wants              hash: lease id -> what a waiter waits for (its lock
                                        keys, ttl and floor), so a release can hand it over
    <prefix>:{<tag>}:wake:<lease id>    a list a waiter blocks on (BLPOP): a release pushes
                                        the token it handed over, or 0 (try again)

The tag is the text inside the resource's own first `{...}`, when it has one,
else the prefix itself: "order:42" → tag "fencing"; "{shop-7}:order:42" → tag
"shop-7". A resource always maps to the same tag, hence to the same counter,
so the tokens one resource sees only grow. Resources locked together must
share a tag (a ValueError says so otherwise).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass


def hash_tag(resource: str) -> str | None:
    """The resource's own hash tag, by Redis Cluster's rule: the first non-empty `{...}`."""
    start = resource.find("{")
    if start < 0:
        return None
    end = resource.find("}", start + 1)
    if end <= start + 1:
        return None
    return resource[start + 1:end]


@dataclass(frozen=True)
class KeySpace:
    """The keys of one tag (one hash slot) under one prefix."""

    prefix: str
    tag: str

    @classmethod
    def of(cls, prefix: str, resources: tuple[str, ...]) -> "KeySpace":
        tags = {hash_tag(resource) or prefix for resource in resources}
        if len(tags) != 1:
            raise ValueError("resources locked together must share one hash tag, "
                             f"got {sorted(tags)}")
        return cls(prefix, tags.pop())

    @property
    def base(self) -> str:
        return f"{self.prefix}:{{{self.tag}}}:"

    def lock(self, resource: str) -> str:
        return f"{self.base}lock:{resource}"

    def queue(self, resource: str) -> str:
        return f"{self.base}queue:{resource}"

    @property
    def counters(self) -> str:
        return f"{self.base}counters"

    @property
    def waiters(self) -> str:
        return f"{self.base}waiters"  # the scripts find wants and wake lists beside it

    @property
    def wants(self) -> str:
        return f"{self.base}wants"

    def wake(self, lease_id: str) -> str:
        return f"{self.base}wake:{lease_id}"


@dataclass(frozen=True)
class LeaseKeys:
    """The KEYS each script takes for one set of resources, built once and cached."""

    resources: tuple[str, ...]
    space: KeySpace
    locks: tuple[str, ...]
    acquire: tuple[str, ...]  # ACQUIRE's, RELEASE's and LEAVE's: locks, queues, counters, waiters

    @staticmethod
    @functools.lru_cache(maxsize=4096)
    def of(prefix: str, resources: tuple[str, ...]) -> "LeaseKeys":
        space = KeySpace.of(prefix, resources)
        locks = tuple(space.lock(name) for name in resources)
        queues = tuple(space.queue(name) for name in resources)
        return LeaseKeys(resources, space, locks,
                         acquire=(*locks, *queues, space.counters, space.waiters))
