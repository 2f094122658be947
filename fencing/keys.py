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


def hash_tag(resource: str) -> str | None:
    """The resource's own hash tag, by Redis Cluster's rule: the first non-empty `{...}`."""
    start = resource.find("{")
    if start < 0:
        return None
    end = resource.find("}", start + 1)
    if end <= start + 1:
        return None
    return resource[start + 1:end]


class KeySpace:
    """The keys of one tag (one hash slot) under one prefix."""

    __slots__ = ("prefix", "tag", "base")

    def __init__(self, prefix: str, tag: str) -> None:
        self.prefix = prefix
        self.tag = tag
        self.base = f"{prefix}:{{{tag}}}:"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KeySpace) and (self.prefix, self.tag) == (other.prefix, other.tag)

    def __hash__(self) -> int:
        return hash((self.prefix, self.tag))

    def __repr__(self) -> str:
        return f"KeySpace(prefix={self.prefix!r}, tag={self.tag!r})"

    @classmethod
    def of(cls, prefix: str, resources: tuple[str, ...]) -> "KeySpace":
        tag = hash_tag(resources[0]) or prefix
        for resource in resources[1:]:
            if (hash_tag(resource) or prefix) != tag:
                tags = sorted({hash_tag(name) or prefix for name in resources})
                raise ValueError(f"resources locked together must share one hash tag, got {tags}")
        return cls(prefix, tag)

    def lock(self, resource: str) -> str:
        return f"{self.base}lock:{resource}"

    def queue(self, resource: str) -> str:
        return f"{self.base}queue:{resource}"

    @property
    def counters(self) -> str:
        return f"{self.base}counters"

    @property
    def waiters(self) -> str:
        return f"{self.base}waiters"  # the scripts find it, and the rest, beside the counters

    @property
    def wants(self) -> str:
        return f"{self.base}wants"

    def wake(self, lease_id: str) -> str:
        return f"{self.base}wake:{lease_id}"


class LeaseKeys:
    """The KEYS each script takes for one set of resources, built once and cached.

    `acquire` is what ACQUIRE, RELEASE and LEAVE take: the locks and the counters (the
    scripts find the queues, waiters and wake lists beside the counters).
    """

    __slots__ = ("resources", "space", "locks", "acquire")

    def __init__(self, resources: tuple[str, ...], space: KeySpace) -> None:
        base = space.base
        self.resources = resources
        self.space = space
        self.locks = tuple([f"{base}lock:{name}" for name in resources])
        self.acquire = (*self.locks, f"{base}counters")

    @staticmethod
    @functools.lru_cache(maxsize=4096)
    def of(prefix: str, resources: tuple[str, ...]) -> "LeaseKeys":
        return LeaseKeys(resources, KeySpace.of(prefix, resources))
