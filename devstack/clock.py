"""A server's wall clock, moved at run time with libfaketime (Debian's `faketime`).

    clock = FakeClock(tmp / "redis-clock")
    redis = RedisServer(clock=clock)     # runs under LD_PRELOAD=libfaketime
    clock.jump(60)                       # the server's wall clock is now a minute ahead

libfaketime reads the offset from a file, rereading it on every clock call
(FAKETIME_NO_CACHE), so a jump takes effect at once. Only the wall clock moves:
Redis expires keys by it (`mstime()`), while its event loop and timers keep to
the real monotonic clock (FAKETIME_DONT_FAKE_MONOTONIC), as after an NTP step.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path


def libfaketime() -> str:
    """The path of libfaketime.so.1; RuntimeError saying what to install if absent."""
    found = (os.environ.get("FAKETIME_LIB") or
             next(iter(sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))), None))
    if not found or not os.path.exists(found):
        raise RuntimeError("libfaketime not found: apt-get install faketime")
    return found


class FakeClock:
    """An offset from the real wall clock, shared by every process started with `env()`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.offset = 0.0
        self._write()

    def env(self) -> dict[str, str]:
        return {"LD_PRELOAD": libfaketime(), "FAKETIME_TIMESTAMP_FILE": str(self.path),
                "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}

    def jump(self, seconds: float) -> None:
        """Move the clock `seconds` further (forward if positive) from where it is now."""
        self.offset += seconds
        self._write()

    def _write(self) -> None:
        # Written whole, then renamed: a reader never sees half an offset.
        part = self.path.with_name(self.path.name + ".part")
        part.write_text(f"{self.offset:+.3f}\n", encoding="ascii")
        os.replace(part, self.path)
