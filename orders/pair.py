"""An order and its invoice, leased as one pair for one block of work."""

from __future__ import annotations

import contextlib
from typing import AsyncIterator

from fencing import Lease
from servicekit.faults import Faults
from servicekit.lock_names import invoice_lock, order_lock
from servicekit.observed_lock import ObservedLock


def resources(order: dict) -> tuple[str, str]:
    """The lock names of an order and its invoice (the invoice service checks the second)."""
    return order_lock(order["_id"], order["invoice_id"]), invoice_lock(order["invoice_id"])


class PairLock:
    """`ObservedLock.hold` on an order's pair, with the `before_release` fault point.

    `max_hold` bounds the renewals: a block stuck longer than any of its calls'
    timeouts allow lets its lease go, and the stores refuse what it writes late.
    """

    def __init__(self, lock: ObservedLock, faults: Faults, max_hold: float) -> None:
        self.lock = lock
        self.faults = faults
        self.max_hold = max_hold

    @contextlib.asynccontextmanager
    async def hold(self, order: dict, floor: int, timeout: float | None = None
                   ) -> AsyncIterator[Lease]:
        """Raises `LockBusy` if the pair is not free (within `timeout`)."""
        async with self.lock.hold(*resources(order), timeout=timeout, floor=floor,
                                  max_hold=self.max_hold) as lease:
            try:
                yield lease
            finally:
                await self.faults.point("before_release")
