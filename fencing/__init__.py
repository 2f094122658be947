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

Logging goes to the `fencing` logger and its children (`fencing.lock`,
`fencing.sync`): a DEBUG line per lease transition, a WARNING when a lease was
lost or Redis failed during a renewal or a release. The library adds only a
`NullHandler`, so an application that has not set up logging sees nothing.
"""

import logging

from fencing.errors import LeaseLost, LockBusy, LockError, LockUnavailable
from fencing.lease import Lease
from fencing.lock import FencedLock

# The one place the version is written: the build reads it from here (fencing/pyproject.toml).
__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["__version__", "FencedLock", "Lease", "LeaseLost", "LockBusy", "LockError",
           "LockUnavailable"]
