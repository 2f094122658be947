"""The redis-server and the clock a run of the explorer uses: one server under
libfaketime, started once and emptied before each schedule."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import ClassVar, Iterator

import redis

from devstack.redis_server import RedisServer
from tests.fencing.schedules.clock import FrozenClock


class World:
    """A redis-server whose wall clock is `clock`, and a client to it."""

    _current: ClassVar["World | None"] = None

    def __init__(self, server: RedisServer, clock: FrozenClock) -> None:
        self.server = server
        self.clock = clock
        # No socket timeout of its own: every call returns at once (nothing blocks).
        self.redis = redis.Redis(host=server.host, port=server.port)

    @classmethod
    def current(cls) -> "World":
        if cls._current is None:
            raise RuntimeError("no World: run the machine inside `with World.started():`")
        return cls._current

    @classmethod
    @contextlib.contextmanager
    def started(cls, directory: str | Path | None = None) -> Iterator["World"]:
        """Start the server (in `directory`, or a temporary one) and make it current."""
        with contextlib.ExitStack() as stack:
            if directory is None:
                directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="explorer-"))
            path = Path(directory)
            clock = FrozenClock(path / "redis-clock")
            server = RedisServer(clock=clock, log_path=str(path / "redis.log"))
            stack.enter_context(server)
            world = cls(server, clock)
            stack.callback(world.redis.close)
            previous, cls._current = cls._current, world
            try:
                yield world
            finally:
                cls._current = previous
