"""`Lease`: what a successful acquire hands its holder (the async and the sync lock's alike)."""

from __future__ import annotations

import asyncio
import threading
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
    Redis's. `lost` is set when a renewal found the lease gone.
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

    def remaining(self) -> float:
        """Seconds left before the lease expires (0 when expired, lost or released)."""
        if self._ended or self._lost:
            return 0.0
        return max(0.0, self.expires_at - self.clock())

    @property
    def held(self) -> bool:
        """True while the lease has not expired and no renewal found it lost."""
        return self.remaining() > 0.0

    @property
    def lost(self) -> bool:
        return self._lost

    def mark_lost(self) -> None:
        self._lost = True
        if self._lost_event is not None and self._lost_loop is not None:
            # The sync lock's keep-alive thread may be the one that found it lost.
            self._lost_loop.call_soon_threadsafe(self._lost_event.set)
        if self._lost_signal is not None:
            self._lost_signal.set()

    def mark_released(self) -> None:
        self._ended = True

    async def wait_lost(self) -> None:
        """Returns when a renewal (see `FencedLock.hold(keep_alive=True)`) finds the lease lost.

        Works for a lease of the sync lock too (its renewal thread wakes the event loop)."""
        if self._lost:
            return
        if self._lost_event is None:
            self._lost_loop = asyncio.get_running_loop()
            self._lost_event = asyncio.Event()
        if not self._lost:  # marked lost before the event existed
            await self._lost_event.wait()

    def wait_lost_blocking(self, timeout: float | None = None) -> bool:
        """Blocks until a renewal (see `fencing.sync.FencedLock.hold(keep_alive=True)`) finds
        the lease lost, or `timeout` seconds passed; True if it was lost."""
        if self._lost_signal is None:
            self._lost_signal = threading.Event()
        if self._lost:  # marked before the signal existed
            return True
        return self._lost_signal.wait(timeout)

    def ensure_held(self) -> None:
        """Raises `LeaseLost` unless the lease is still held: call it before each step that acts."""
        if not self.held:
            raise LeaseLost(f"lease {self.token} on {', '.join(self.resources)} is no longer held")
