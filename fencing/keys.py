"""Where a lock lives in Redis: the key scheme (docs/library/key-scheme.md tells why).

A resource belongs to one key space, a Redis Cluster hash tag under the lock's
prefix; every key of a key space hashes to the tag's slot::

    <prefix>:{<tag>}:lock:<resource>    the lock: "<token>:<lease id>", with a PX expiry
    <prefix>:{<tag>}:queue:<resource>   waiters for it: sorted set, lease id by ticket
    <prefix>:{<tag>}:seq                hash: "token", the fencing token counter; "ticket",
                                        the waiters' arrival order. Expires when unused; a
                                        missing counter starts at Redis's clock in µs
    <prefix>:{<tag>}:waiters            live waiters: sorted set, lease id by deadline (ms)
    <prefix>:{<tag>}:wants              hash: lease id -> that waiter's ticket, ttl, floor,
                                        wake key and lock keys, so a release can grant it
    <prefix>:{<tag>}:wake:<lease id>    a waiter's wake list (BLPOP): a token granted to it,
                                        or 0 (try again)

The tag is the text inside the resource's own first `{...}`, when it has one;
else one of `BUCKETS` buckets picked by the CRC-32 of the name, "<prefix>#<n>":
"order:42" → tag "fencing#<n>"; "{shop-7}:order:42" → tag "shop-7". A resource
always maps to the same key space, hence to the same counter, and untagged
resources spread over a cluster's slots with a bounded number of counters.

A call on several resources passes the keys of every key space they belong to
(`LeaseKeys`). Resources with tags of their own locked together must share
that tag; on a Redis Cluster every resource of a call must (one slot), which
`LeaseKeys.of(..., cluster=True)` checks. On one server, untagged resources
locked together may fall in several buckets.
"""

from __future__ import annotations

import functools
import zlib

# Fixed for good: a resource's bucket must not move (its queue and lock keys would).
BUCKETS = 1024


def hash_tag(resource: str) -> str | None:
    """The resource's own hash tag, by Redis Cluster's rule: the first non-empty `{...}`."""
    start = resource.find("{")
    if start < 0:
        return None
    end = resource.find("}", start + 1)
    if end <= start + 1:
        return None
    return resource[start + 1:end]


def tag_of(prefix: str, resource: str) -> str:
    """The tag of a resource's key space: its own, else its bucket's."""
    return hash_tag(resource) or f"{prefix}#{zlib.crc32(resource.encode()) % BUCKETS}"


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
        """The one key space of `resources`; ValueError if they fall in several."""
        tags = sorted({tag_of(prefix, name) for name in resources})
        if len(tags) != 1:
            raise ValueError(f"resources locked together must share one hash tag, got {tags}")
        return cls.at(prefix, tags[0])

    @staticmethod
    @functools.lru_cache(maxsize=4096)
    def at(prefix: str, tag: str) -> "KeySpace":
        """The key space of a tag (the same object each time: buckets are reused a lot)."""
        return KeySpace(prefix, tag)

    def lock(self, resource: str) -> str:
        return f"{self.base}lock:{resource}"

    def queue(self, resource: str) -> str:
        return f"{self.base}queue:{resource}"

    @property
    def seq(self) -> str:
        return f"{self.base}seq"

    @property
    def waiters(self) -> str:
        return f"{self.base}waiters"

    @property
    def wants(self) -> str:
        return f"{self.base}wants"

    def wake(self, lease_id: str) -> str:
        return f"{self.base}wake:{lease_id}"


class LeaseKeys:
    """The KEYS and layout each script takes for one set of resources, built once and cached.

    `shared`: the lock keys, then the queue keys, one per resource, then the seq of
    each key space involved, their waiters, their wants (RELEASE takes these; ACQUIRE
    and LEAVE add the caller's wake key, `with_wake`). `fast`: its first part, the
    locks, queues and seqs, all that the fast paths read (nothing held, nobody in
    line): ACQUIRE and RELEASE take it alone too, and fewer keys make a cheaper call.
    `layout`: what the scripts need to read that list (the number of resources and,
    with several key spaces, each resource's key space, 1-based), passed as the last ARGV.
    """

    __slots__ = ("resources", "spaces", "space", "locks", "queues", "fast", "shared", "layout")

    def __init__(self, resources: tuple[str, ...], prefix: str) -> None:
        of: list[KeySpace] = []  # each resource's key space
        spaces: list[KeySpace] = []
        locks: list[str] = []
        queues: list[str] = []
        for name in resources:
            space = KeySpace.at(prefix, tag_of(prefix, name))
            of.append(space)
            if space not in spaces:
                spaces.append(space)
            locks.append(space.lock(name))
            queues.append(space.queue(name))
        self.resources = resources
        self.spaces = tuple(spaces)
        self.space = spaces[0]  # where the caller's wake key lives
        self.locks = tuple(locks)
        self.queues = tuple(queues)
        self.fast = (*locks, *queues, *[space.seq for space in spaces])
        self.shared = (*self.fast, *[space.waiters for space in spaces],
                       *[space.wants for space in spaces])
        self.layout: tuple[int, ...] = (len(resources),) + (
            tuple(spaces.index(space) + 1 for space in of) if len(spaces) > 1 else ())

    def with_wake(self, lease_id: str) -> tuple[str, ...]:
        return (*self.shared, self.space.wake(lease_id))

    @staticmethod
    @functools.lru_cache(maxsize=4096)
    def of(prefix: str, resources: tuple[str, ...], cluster: bool = False) -> "LeaseKeys":
        keys = LeaseKeys(resources, prefix)
        own = sorted({tag for tag in map(hash_tag, resources) if tag is not None})
        if len(own) > 1:  # asked to be apart, yet locked together: a mistake
            raise ValueError(f"resources locked together must share one hash tag, got {own}")
        if cluster and len(keys.spaces) > 1:
            tags = sorted(space.tag for space in keys.spaces)
            raise ValueError(
                "on a Redis Cluster, resources locked together must share one {tag} in "
                f"their names (e.g. '{{order-42}}:order', '{{order-42}}:invoice'); got {tags}")
        return keys
