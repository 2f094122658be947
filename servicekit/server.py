"""Start one service instance, and stop it cleanly.

On SIGTERM or SIGINT: stop accepting connections, let in-flight requests
finish (each releases its own lease in `finally`) for up to
SHUTDOWN_GRACE_MS, then close the lock, Redis and MongoDB clients.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Generic, TypeVar

from tornado.httpserver import HTTPServer

from fencing import FencedLock
from servicekit.app import ServiceApp
from servicekit.clients import close_redis, make_lock, make_mongo, make_redis
from servicekit.logs import configure_logging
from servicekit.settings import Settings, SettingsError, load_settings, port_setting
from servicekit.tracing import setup_tracing

log = logging.getLogger(__name__)

# The server accepts bodies a little over the contract's 64 KiB so the handler can
# answer 413 in JSON; far larger ones are cut off by Tornado itself.
MAX_ACCEPTED_BODY = 1024 * 1024


S = TypeVar("S", bound=Settings)


@dataclass
class Resources(Generic[S]):
    """What an instance opens at start-up and closes at shutdown, from its settings (a
    service's own class: `Resources[OrderSettings]`)."""

    settings: S
    mongo: Any
    redis: Any
    lock: FencedLock
    background: list[asyncio.Task] = field(default_factory=list)
    # What the factory opened on top (orders' HTTP client to invoices), closed first.
    closing: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    @classmethod
    def open(cls, settings: S) -> "Resources[S]":
        redis = make_redis(settings)
        return cls(settings, make_mongo(settings), redis, make_lock(settings, redis))

    async def close(self) -> None:
        for task in self.background:
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        for close in self.closing:
            await close()
        await self.lock.close()
        await close_redis(self.redis)
        await self.mongo.close()


AppFactory = Callable[[Resources[Any]], Awaitable[ServiceApp[Any]]]


async def serve(name: str, port: int, factory: AppFactory, settings: Settings) -> None:
    resources = Resources.open(settings)
    try:
        app = await factory(resources)
        server = HTTPServer(app.application, max_body_size=MAX_ACCEPTED_BODY,
                            idle_connection_timeout=60)
        server.listen(port, settings.host)
        log.info("%s listening on http://%s:%s", name, settings.host, port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        log.info("%s stopping: no new connections; finishing requests in flight", name)
        server.stop()
        grace = settings.shutdown_grace_ms / 1000
        if not await app.inflight.wait_idle(grace):
            log.warning("%s: requests still running after %ss; their leases end by ttl",
                        name, grace)
        await server.close_all_connections()
    finally:
        await resources.close()
        log.info("%s stopped", name)


def main(name: str, kind: type[Settings], factory: AppFactory) -> None:
    """Entry point of `python -m <service>`, whose settings are a `kind`."""
    try:
        settings = load_settings(sys.argv[1:], kind=kind)
    except SettingsError as exc:
        sys.exit(f"{name}: bad setting: {exc}")
    port: int = getattr(settings, port_setting(kind).field)
    configure_logging(name, port, settings.log_format)
    setup_tracing(name)
    asyncio.run(serve(name, port, factory, settings))
