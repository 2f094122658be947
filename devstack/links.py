"""A network link between one client and one server that a test can cut, slow and heal.

    link = Link.toward(redis.url).start()  # a TCP proxy on a free loopback port
    env["REDIS_URL"] = link.through(redis.url)  # one process's route to the server
    link.cut()            # blackhole: connections stay open, nothing gets through
    link.cut("reset")     # every connection reset (RST), new ones reset at once
    link.delay(200)       # each chunk, each way, arrives 200 ms late
    link.heal()           # back to normal; what a blackhole held is delivered now
    link.stop()

Why a proxy and not network namespaces: a link is one process's route to one
server, so a test cuts orders-0 off from Redis while orders-1 keeps its own
route, and it needs no privileges (`ip netns` needs root and a kernel that allows
it, which CI containers often do not). What reaches the client is still a real
TCP fault: a blackhole leaves the connection open and silent, so only the
client's own timeouts end the call, and a reset is a real RST.

The proxy runs on an event loop in a thread of its own, so a test that blocks
its own loop cannot stall the link, and a link's state never depends on the
test's timing.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from types import TracebackType
from typing import Any, Coroutine
from urllib.parse import urlsplit, urlunsplit

from devstack.ports import free_port

CHUNK = 65536


class Link:
    """A fault-injecting TCP proxy from `host:port` to `target`."""

    def __init__(self, target: tuple[str, int] | None = None, host: str = "127.0.0.1",
                 port: int | None = None, name: str = "link") -> None:
        self.target = target  # may be set after start, before the first connection
        self.host = host
        self.port = port or free_port(host)
        self.name = name
        self.mode = "open"  # open, blackhole or reset
        self.delay_ms = 0
        self.connections = 0  # accepted so far
        # made by start(): a link never started holds no loop and no socket
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._flowing: asyncio.Event | None = None
        self._pipes: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    def toward(cls, url: str, name: str = "link") -> "Link":
        """A link to the host and port a server's URL names (one host, with its port)."""
        parts = urlsplit(url)
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"a link needs a URL with a host and a port, not {url!r}")
        return cls((parts.hostname, parts.port), name=name)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def through(self, url: str) -> str:
        """`url` with this link's address for its host and port; the rest kept."""
        parts = urlsplit(url)
        credentials = parts.netloc.rpartition("@")[0]
        netloc = f"{credentials}@{self.address}" if credentials else self.address
        return urlunsplit(parts._replace(netloc=netloc))

    def start(self) -> "Link":
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever,
                                        name=f"link-{self.name}", daemon=True)
        self._thread.start()
        self._run(self._start())
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        self._run(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()
        self._loop = self._thread = None

    def cut(self, how: str = "blackhole") -> None:
        """`blackhole`: accept, hold and forward nothing, either way; `reset`: RST all."""
        if how not in ("blackhole", "reset"):
            raise ValueError(f"a link is cut by blackhole or reset, not {how!r}")
        self._run(self._set(how))

    def heal(self) -> None:
        self._run(self._set("open"))
        self.delay(0)

    def delay(self, ms: int) -> None:
        """Hold each chunk `ms` milliseconds before passing it on (0: none)."""
        self.delay_ms = max(0, int(ms))

    def _run(self, work: Coroutine[Any, Any, None]) -> None:
        if self._loop is None:
            work.close()
            raise RuntimeError(f"link {self.name} is not started")
        asyncio.run_coroutine_threadsafe(work, self._loop).result(10)

    async def _start(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server = await asyncio.start_server(self._serve, self.host, self.port)

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._pipes):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _set(self, mode: str) -> None:
        assert self._flowing is not None
        self.mode = mode
        if mode == "open":
            self._flowing.set()
            return
        self._flowing.clear()
        if mode == "reset":
            for writer in list(self._pipes):
                _reset(writer)

    async def _serve(self, client_in: asyncio.StreamReader,
                     client_out: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._pipes.add(client_out)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        try:
            if self.mode == "reset":
                _reset(client_out)
                return
            assert self._flowing is not None
            try:
                await self._flowing.wait()  # a blackhole holds a new connection, silent
            except asyncio.CancelledError:
                return
            if self.target is None:
                raise RuntimeError(f"link {self.name} has no target")
            try:
                server_in, server_out = await asyncio.open_connection(*self.target)
            except OSError:
                _reset(client_out)  # as the server's refusal would
                return
            self._pipes.add(server_out)
            try:
                await asyncio.gather(self._pump(client_in, server_out),
                                     self._pump(server_in, client_out))
            except asyncio.CancelledError:
                # the link stops: end quietly (asyncio's stream server reports a
                # cancelled connection task as an error)
                pass
            finally:
                self._pipes.discard(server_out)
                server_out.transport.abort()
        finally:
            self._pipes.discard(client_out)
            if not client_out.transport.is_closing():
                client_out.close()

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        assert self._flowing is not None
        try:
            while data := await source.read(CHUNK):
                if self.delay_ms:
                    await asyncio.sleep(self.delay_ms / 1000)
                await self._flowing.wait()  # a blackhole holds what was sent, as a lost
                if sink.transport.is_closing():  # route does until TCP's retransmission
                    return
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            # one side finished or failed: the other learns it as TCP would tell it
            try:
                if not sink.transport.is_closing():
                    sink.write_eof()
            except OSError:  # the other side is gone already
                sink.transport.abort()

    def __enter__(self) -> "Link":
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST (SO_LINGER 0), not a FIN: the peer's next read fails at once."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()
