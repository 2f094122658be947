"""Servers a test starts for itself, to kill, freeze or restart them."""

from __future__ import annotations

from typing import Callable, Iterator, TypeVar

from devstack.process import ServerProcess

Server = TypeVar("Server", bound=ServerProcess)


def own_servers(build: Callable[[], Server]) -> Iterator[Callable[[], Server]]:
    """For a fixture: a `make()` that starts a server of the test's own (to kill or
    restart), each stopped at teardown."""
    started: list[Server] = []

    def make() -> Server:
        server = build()
        server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()
