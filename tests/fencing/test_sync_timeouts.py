"""The sync lock bounds every call by `op_timeout`, also on a client without a socket
timeout: a frozen Redis (SIGSTOP) used to hang `acquire` and the exit of `hold()` for good.

Each blocking call runs in a daemon thread that the test waits for with a bound, so a
regression fails the test instead of hanging it. Budget: about 10 s."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Iterator

import pytest
import redis

from devstack import RedisServer
from fencing import LockUnavailable
from fencing.sync import FencedLock
from tests.fencing.test_sync import interrupt_in  # noqa: F401 (a fixture)
from tests.fencing.test_sync import interrupted_while_waiting_leaves_the_line


def finishes_within(seconds: float, call: Callable[[], Any]) -> BaseException | None:
    """Runs `call` in a daemon thread; the error it raised (None if none), or fails the test
    if it has not returned after `seconds`."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # handed to the test
            outcome.append(exc)
        else:
            outcome.append(None)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"still blocked after {seconds:g}s"
    return outcome[0]


@pytest.fixture
def frozen(make_redis_server: Callable[[], RedisServer]) -> Iterator[tuple[RedisServer, Any]]:
    """A redis-server of the test's own and a client without a socket timeout."""
    server = make_redis_server()
    client = redis.Redis.from_url(server.url)
    yield server, client
    server.resume()
    client.close()


def test_a_frozen_redis_bounds_a_sync_acquire_by_op_timeout(
        frozen: tuple[RedisServer, Any], unique_name: str) -> None:
    server, client = frozen
    lock = FencedLock(client, prefix=unique_name, ttl_ms=60_000, op_timeout=1.0)
    held = lock.acquire("held")
    assert held is not None
    server.pause()
    for call in (lambda: lock.acquire("doc"), lambda: lock.acquire("held", timeout=3),
                 lambda: lock.holder("doc")):
        started = time.monotonic()
        assert isinstance(finishes_within(8, call), LockUnavailable)
        assert time.monotonic() - started < 6
    server.resume()
    # The acquire given up on runs when Redis wakes, and takes "doc" for nobody; its
    # clean-up follows it, so "doc" is free again long before the 60 s ttl.
    for _ in range(300):
        if lock.holder("doc") is None:
            break
        time.sleep(0.01)
    lease = lock.acquire("doc")  # and it recovers
    assert lease is not None and lock.release(lease)


def test_leaving_hold_on_a_frozen_redis_is_bounded_by_op_timeout(
        frozen: tuple[RedisServer, Any], unique_name: str) -> None:
    server, client = frozen
    lock = FencedLock(client, prefix=unique_name, ttl_ms=3_000, op_timeout=1.0)

    def hold_while_redis_freezes() -> None:
        with lock.hold("doc", keep_alive=True):
            server.pause()
            time.sleep(1.2)  # a renewal meets the frozen Redis too

    assert finishes_within(10, hold_while_redis_freezes) is None  # the failed release is logged


def test_a_keyboard_interrupt_while_a_call_runs_on_its_own_thread_leaves_the_line(
        frozen: tuple[RedisServer, Any], unique_name: str,
        interrupt_in: Callable[[float], threading.Timer]) -> None:  # noqa: F811 (fixture)
    """Ctrl-C while the acquire's call (a BLPOP) runs on a thread of its own: the acquire
    waits for that call to end, within its bound, then cleans up and leaves the line."""
    _, client = frozen
    lock = FencedLock(client, prefix=unique_name, op_timeout=2.0)
    interrupted_while_waiting_leaves_the_line(lock, client, interrupt_in, after=0.3)
