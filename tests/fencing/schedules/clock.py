"""One clock for the clients and for Redis, still unless the explorer moves it.

The clients read it through the lock's clock seam (`clock=` of the lock);
redis-server reads it through libfaketime, from a file holding an absolute
time (`YYYY-MM-DD hh:mm:ss.mmm`: a frozen clock, not an offset from the real
one) reread on every call (FAKETIME_NO_CACHE). So keys expire, and TIME moves,
only when the explorer calls `advance`, and both sides see the same
milliseconds: a schedule replays to the millisecond. Redis's monotonic clock
is left real (FAKETIME_DONT_FAKE_MONOTONIC) so its event loop and cron run.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

from devstack.clock import FakeClock

# Where the server's frozen wall clock starts: any date will do, only differences count.
START = datetime.datetime(2030, 1, 1)


class FrozenClock(FakeClock):
    """Milliseconds since the start of the run, shared by the clients and the server."""

    def __init__(self, path: str | Path) -> None:
        self.now_ms = 0
        super().__init__(path)

    def seconds(self) -> float:
        """The clients' clock: the lock's `clock=` seam."""
        return self.now_ms / 1000

    def advance(self, ms: int) -> None:
        if ms < 0:
            raise ValueError(f"the clock only moves forward, not by {ms} ms")
        self.now_ms += ms
        self._write()

    def jump(self, seconds: float) -> None:
        self.advance(round(seconds * 1000))

    def _write(self) -> None:
        stamp = START + datetime.timedelta(milliseconds=self.now_ms)
        part = self.path.with_name(self.path.name + ".part")
        # Half a microsecond past the millisecond: libfaketime turns the fraction into
        # nanoseconds through a double, and ".005" alone would come out as 4.999999 ms.
        fraction = f"{stamp.microsecond // 1000:03d}000500"
        part.write_text(stamp.strftime("%Y-%m-%d %H:%M:%S.") + fraction + "\n", encoding="ascii")
        os.replace(part, self.path)
