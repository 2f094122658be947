"""Where a lock lives in Redis: the key scheme.

Every key starts with a fixed prefix and carries a Redis Cluster hash tag, so
that all keys one acquisition touches (its lock keys, wait queues and the token
counter) hash to one slot and a multi-key Lua script may run on a cluster::

    <prefix>:{<tag>}:lock:<resource>    the lock: "<token>:<lease id>", with a PX expiry
    <prefix>:{<tag>}:queue:<resource>   waiters for it: sorted set, lease id by ticket
    <prefix>:{<tag>}:token              the fencing token counter (INCR)
    <prefix>:{<tag>}:tickets            arrival order of waiters (INCR)
    <prefix>:{<tag>}:waiters            live waiters: sorted set, lease id by deadline (ms)
    <prefix>:{<tag>}:wake:<lease id>    a list a waiter blocks on (BLPOP) until woken

The tag is the text inside the resource's own first `{...}`, when it has one,
else the prefix itself: "order:42" → tag "fencing"; "{shop-7}:order:42" → tag
"shop-7". A resource always maps to the same tag, hence to the same counter,
so the tokens one resource sees only grow. Resources locked together must
share a tag (a ValueError says so otherwise).
"""

from __future__ import annotations

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
    def counter(self) -> str:
        return f"{self.base}token"

    @property
    def tickets(self) -> str:
        return f"{self.base}tickets"

    @property
    def waiters(self) -> str:
        return f"{self.base}waiters"

    @property
    def wake_prefix(self) -> str:
        return f"{self.base}wake:"

    def wake(self, lease_id: str) -> str:
        return f"{self.wake_prefix}{lease_id}"
