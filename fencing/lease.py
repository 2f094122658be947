"""`Lease`: what a successful acquire hands its holder (the async and the sync lock's alike)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from fencing.errors import LeaseLost


@dataclass(eq=False, slots=True)
class Lease:
    """The right to act on `resources` until `expires_at`, proven to stores by `token`.

    Timeline of a holder that pauses past its lease::

        t0  acquire  -> Lease(token=7), expires_at = t0 + ttl
        ... the holder is paused (GC, SIGSTOP, a slow network) ...
        t0+ttl       Redis expires the keys; another holder takes token 8
        t1  resume   `remaining()` is 0 and `held` is False: stop acting.
                     A write already on its way with token 7 is refused by
                     any store that has seen token 8: that is the fencing.

    `expires_at` is on the lock's monotonic clock and measured from before the
    acquire was sent, so the holder's idea of the deadline is never later than
    Redis's. `lost` is set once the lease can no longer be held (see `lost`).
    """

    token: int
    resources: tuple[str, ...]
    expires_at: float
    lease_id: str = field(repr=False)
    clock: Callable[[], float] = field(repr=False)
    _lost: bool = field(default=False, repr=False)
    _lost_event: asyncio.Event | None = field(default=None, repr=False)
    _lost_loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)
    _lost_signal: threading.Event | None = field(default=None, repr=False)
    _ended: bool = field(default=False, repr=False)
    # Granted after waiting in line: others likely wait too, so the release goes
    # straight to the call that can hand the lease on (see `LockCore.releasing`).
    _waited: bool = field(default=False, repr=False)

    def remaining(self) -> float:
        """Seconds left before the lease expires (0 when expired, lost or released)."""
        if self._ended or self._lost:
            return 0.0
        left = self.expires_at - self.clock()
        if left <= 0.0:
            self.mark_lost()  # expired: nothing can make it held again
            return 0.0
        return left

    @property
    def held(self) -> bool:
        """True while the lease has not expired and no renewal found it lost."""
        return self.remaining() > 0.0

    @property
    def lost(self) -> bool:
        """True once the lease can no longer be held, and for good: its time ran out (not
        renewed, or renewed no more after `max_hold`), or a renewal found it taken over or
        was refused. A released lease is not lost."""
        self.remaining()
        return self._lost

    def mark_lost(self) -> None:
        if self._lost or self._ended:
            return
        self._lost = True
        self._wake_waiters()

    def mark_released(self) -> None:
        self._ended = True
        self._wake_waiters()

    def _wake_waiters(self) -> None:
        if self._lost_event is not None and self._lost_loop is not None:
            # The sync lock's keep-alive thread may be the one that found it lost.
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
                self._lost_loop.call_soon_threadsafe(self._lost_event.set)
        if self._lost_signal is not None:
            self._lost_signal.set()

    async def wait_lost(self) -> None:
        """Returns once the lease is `lost` (at its expiry at the latest, when a renewal finds
        it gone or is refused) or released: race it against the work the lease protects.

        Works for a lease of the sync lock too (its renewal thread wakes the event loop)."""
        if self._lost_event is None:
            self._lost_loop = asyncio.get_running_loop()
            self._lost_event = asyncio.Event()
        # Sleep until the expiry as it stands; a renewal moves it, so look again then.
        while (left := self.remaining()) > 0.0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._lost_event.wait()

    def wait_lost_blocking(self, timeout: float | None = None) -> bool:
        """Blocks until the lease is `lost` or released (see `wait_lost`), or `timeout`
        seconds passed; True if it was lost."""
        if self._lost_signal is None:
            self._lost_signal = threading.Event()
        deadline = None if timeout is None else time.monotonic() + timeout
        while (left := self.remaining()) > 0.0:
            if deadline is not None:
                left = min(left, deadline - time.monotonic())
                if left <= 0.0:
                    break
            self._lost_signal.wait(left)
        return self.lost

    def ensure_held(self) -> None:
        """Raises `LeaseLost` unless the lease is still held: call it before each step that acts."""
        if not self.held:
            raise LeaseLost(f"lease {self.token} on {', '.join(self.resources)} is no longer held")
