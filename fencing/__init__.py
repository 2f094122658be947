"""Redis leases with fencing tokens, for asyncio and for blocking code.

::

    from fencing import FencedLock, Lease, LockBusy

    lock = FencedLock(redis, ttl_ms=10_000)
    lease = await lock.acquire("order:42", "invoice:7")   # a Lease, or None if any is held
    ...
    await lock.release(lease)

`fencing.sync.FencedLock` is the same lock for a `redis.Redis`, blocking. See
`fencing.lock` for the design, `fencing.core` for what both locks share,
`fencing.keys` for the key scheme and `fencing.errors` for what can go wrong.
"""

from fencing.errors import LeaseLost, LockBusy, LockError, LockUnavailable
from fencing.lease import Lease
from fencing.lock import FencedLock

__all__ = ["FencedLock", "Lease", "LeaseLost", "LockBusy", "LockError", "LockUnavailable"]
