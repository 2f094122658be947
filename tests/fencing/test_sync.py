"""What only the sync lock has: KeyboardInterrupt, a renewal thread, and sharing Redis
with the async lock (every other test of tests/fencing runs on both locks already)."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from typing import Any, Callable, Iterator

import pytest
import redis
from redis.exceptions import ConnectionError as RedisConnectionError

from fencing import FencedLock as AsyncFencedLock
from fencing.core import client_retries
from fencing.keys import KeySpace
from fencing.sync import FencedLock
from tests.fencing.backends import client_for, queued, sync_client_for


@pytest.fixture
def client(lock_target: str) -> Iterator[Any]:
    made = sync_client_for(lock_target)
    yield made
    made.close()


@pytest.fixture
def lock(client: Any, unique_name: str) -> FencedLock:
    return FencedLock(client, ttl_ms=5_000, prefix=unique_name)


@pytest.fixture
def interrupt_in() -> Iterator[Callable[[float], threading.Timer]]:
    """`interrupt_in(s)`: a KeyboardInterrupt in this (the main) thread after s seconds, as
    Ctrl-C would raise it: a signal interrupts the blocking socket call. SIGUSR1, so that
    pytest-timeout keeps SIGALRM."""
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGUSR1, interrupt)
    timers: list[threading.Timer] = []

    def arm(seconds: float) -> threading.Timer:
        timer = threading.Timer(seconds, os.kill, args=(os.getpid(), signal.SIGUSR1))
        timers.append(timer)
        timer.start()
        return timer

    yield arm
    for timer in timers:
        timer.cancel()
        timer.join()
    signal.signal(signal.SIGUSR1, previous)


def queue_of(lock: FencedLock, resource: str) -> str:
    return KeySpace.of(lock.prefix, (resource,)).queue(resource)


def test_a_keyboard_interrupt_while_waiting_leaves_the_line(
        lock: FencedLock, client: Any, interrupt_in: Callable[[float], threading.Timer]) -> None:
    interrupted_while_waiting_leaves_the_line(lock, client, interrupt_in, after=0.2)


def interrupted_while_waiting_leaves_the_line(
        lock: FencedLock, client: Any, interrupt_in: Callable[[float], threading.Timer],
        after: float) -> None:
    """Ctrl-C `after` seconds into a wait: the acquire leaves the line before raising."""
    holder = lock.acquire("hot")
    assert holder is not None
    timer = interrupt_in(after)
    with pytest.raises(KeyboardInterrupt):
        lock.acquire("hot", timeout=5)
        timer.join()
        time.sleep(0.01)  # where a signal sent just now is handled
    assert client.exists(queue_of(lock, "hot")) == 0  # left the line before raising
    assert lock.release(holder)
    assert lock.acquire("hot") is not None


def test_a_keyboard_interrupt_as_the_lease_is_handed_over_leaves_nothing_held(
        lock: FencedLock, interrupt_in: Callable[[float], threading.Timer]) -> None:
    for attempt in range(6):
        holder = lock.acquire("hot")
        assert holder is not None
        releaser = threading.Timer(0.1, lock.release, args=(holder,))
        releaser.start()
        timer = interrupt_in(0.1 + attempt * 0.0005)  # about when the hand-off arrives
        lease = None
        try:
            lease = lock.acquire("hot", timeout=5)
            timer.join()
            time.sleep(0.01)  # where a signal sent just now is handled
        except KeyboardInterrupt:
            pass
        releaser.join()
        if lease is not None:
            assert lock.release(lease)
        assert lock.holder("hot") is None, "an interrupted acquire kept what it was handed"
        again = lock.acquire("hot")
        assert again is not None
        assert lock.release(again)


def test_keep_alive_renews_from_a_thread_that_stops_with_the_block(
        lock: FencedLock, client: Any) -> None:
    short = FencedLock(client, ttl_ms=300, prefix=lock.prefix)
    with short.hold("a", keep_alive=True) as lease:
        time.sleep(0.8)
        assert lease.held
        assert short.holder("a") == lease.token
        renewers = [t for t in threading.enumerate() if t.name.startswith("fencing-keep-alive")]
        assert len(renewers) == 1
    assert not renewers[0].is_alive()
    assert short.holder("a") is None


def test_keep_alive_marks_the_lease_lost_when_a_renewal_finds_it_gone(
        lock: FencedLock, client: Any) -> None:
    short = FencedLock(client, ttl_ms=300, prefix=lock.prefix)
    with short.hold("a", keep_alive=True) as lease:
        client.delete(KeySpace.of(lock.prefix, ("a",)).lock("a"))  # taken away
        assert lease.wait_lost_blocking(timeout=2)
        assert not lease.held


@pytest.mark.gen_test(timeout=30)
async def test_the_async_and_the_sync_lock_exclude_each_other_and_share_the_counter(
        lock: FencedLock, lock_target: str) -> None:
    aclient = client_for(lock_target)
    alock = AsyncFencedLock(aclient, ttl_ms=5_000, prefix=lock.prefix)
    loop = asyncio.get_running_loop()
    tokens: list[int] = []
    try:
        for _ in range(3):
            taken = await loop.run_in_executor(None, lock.acquire, "doc")
            assert taken is not None
            assert await alock.acquire("doc") is None  # held by the sync lock
            waiter = asyncio.ensure_future(alock.acquire("doc", timeout=5))
            await queued(alock, "doc")
            assert await loop.run_in_executor(None, lock.release, taken)
            handed = await waiter  # the sync release handed it to the async waiter
            assert handed is not None
            assert await loop.run_in_executor(None, lock.acquire, "doc") is None
            assert await alock.release(handed)
            tokens += [taken.token, handed.token]
    finally:
        await alock.close()
        await aclient.aclose()
    assert tokens == sorted(set(tokens))


def test_a_sync_acquire_whose_answer_was_lost_returns_the_same_lease(
        redis_url: str, unique_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    client = redis.Redis.from_url(redis_url, socket_timeout=2.0)  # does not retry: the lock does
    lock = FencedLock(client, prefix=unique_name)
    real_evalsha = client.evalsha
    lost: list[object] = []

    def answer_lost_once(*args: Any) -> Any:
        result = real_evalsha(*args)
        if not lost:
            lost.append(result)
            raise RedisConnectionError("Connection closed by server.")
        return result

    monkeypatch.setattr(client, "evalsha", answer_lost_once)
    lease = lock.acquire("doc")
    monkeypatch.undo()
    try:
        assert lease is not None and lost == [lease.token]
        assert lock.holder("doc") == lease.token
        assert lock.release(lease)
    finally:
        client.close()


def test_either_the_sync_lock_or_its_client_retries() -> None:
    assert client_retries(redis.Redis.from_url("redis://127.0.0.1:1/0")) == 0
    assert client_retries(redis.Redis(host="127.0.0.1", port=1)) > 0
