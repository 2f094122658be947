"""Every key a script touches is one of its KEYS: watched with MONITOR on a real
redis-server while every kind of call runs, each command inside a script checked
with COMMAND GETKEYS against the KEYS of the call that ran it.

Why it matters: on a Redis Cluster a script whose keys are declared meets a
migrating slot with TRYAGAIN or ASK before it runs, never half-way; strict servers
(Dragonfly, Kvrocks with lua-strict-key-accessing) refuse undeclared keys.
"""

from __future__ import annotations

import asyncio
import re
import threading
from typing import Iterator

import pytest
import redis
from redis.exceptions import ResponseError

from fencing import FencedLock, scripts
from fencing.core import SCRIPTS
from tests.fencing.backends import acquire_script, queued, warm_scripts
from tests.fencing.conftest import LockFactory

ARG = re.compile(rb'"((?:\\.|[^"\\])*)"')


@pytest.fixture
def lock_target(redis_url: str) -> str:
    return redis_url  # one MONITOR sees every command of one server


class Monitor:
    """MONITOR in a thread: the raw lines Redis sends, until `stop`."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)
        self.lines: list[bytes] = []
        self._monitor = self.client.monitor().__enter__()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        connection = self._monitor.connection
        while True:
            line = connection.read_response()
            self.lines.append(line)
            if b'"fencing-monitor-stop"' in line:
                return

    def stop(self) -> None:
        with redis.Redis(connection_pool=self.client.connection_pool) as stopper:
            stopper.get("fencing-monitor-stop")
        self._thread.join(timeout=10)
        self.client.close()


@pytest.fixture
def monitor(redis_url: str) -> Iterator[Monitor]:
    watching = Monitor(redis_url)
    yield watching
    if watching._thread.is_alive():
        watching.stop()


def commands(lines: list[bytes]) -> Iterator[tuple[bool, list[bytes]]]:
    """(run by a script, the command's arguments) for each line MONITOR sent."""
    for line in lines:
        if b" [" not in line:
            continue
        where = line.split(b" [", 1)[1].split(b"]", 1)[0]
        args = [re.sub(rb"\\(.)", rb"\1", arg) for arg in ARG.findall(line)]
        yield where.endswith(b" lua"), args


def undeclared(client: redis.Redis, lines: list[bytes]) -> tuple[list[str], set[bytes]]:
    """The commands run inside a script that touched a key its call did not declare, and
    the SHAs of the scripts seen."""
    found: list[str] = []
    shas: set[bytes] = set()
    declared: set[bytes] = set()
    for in_script, args in commands(lines):
        if not args:
            continue
        if not in_script:
            name = args[0].upper()
            if name in (b"EVALSHA", b"EVAL"):
                shas.add(args[1])
                declared = set(args[3:3 + int(args[2])])
            continue
        try:
            touched = client.command_getkeys(*args)
        except ResponseError:  # no key arguments (TIME)
            touched = []
        for key in touched:
            key = key if isinstance(key, bytes) else key.encode()
            if key not in declared:
                found.append(f"{args[0].decode()} {key.decode()}")
    return found, shas


@pytest.mark.gen_test(timeout=60)
async def test_every_command_a_script_runs_touches_only_keys_of_its_call(
        make_lock: LockFactory, monitor: Monitor, redis_url: str) -> None:
    lock: FencedLock = make_lock(ttl_ms=2_000, max_poll=0.2)
    await warm_scripts(lock.redis)  # EVALSHA only: its arguments are what MONITOR shows

    lease = await lock.acquire("doc")  # the fast path
    assert lease is not None and await lock.extend(lease)
    waiter = asyncio.create_task(lock.acquire("doc", timeout=10))  # busy: joins the line
    await queued(lock, "doc")
    assert await lock.release(lease)  # hands off, then NOTIFY
    handed = await waiter
    assert handed is not None
    assert await lock.acquire("doc", timeout=0.1) is None  # gives up: leaves in its last try
    assert await lock.holder("doc") == handed.token  # holder: a plain GET
    assert await lock.release(handed)
    # Several resources: in two buckets (one server), and under one tag.
    for names in [("order:1", "invoice:1"), ("{p}order", "{p}invoice")]:
        pair = await lock.acquire(*names)
        assert pair is not None
        waiter = asyncio.create_task(lock.acquire(*names, timeout=10))
        await queued(lock, names[1])
        assert await lock.release(pair)
        again = await waiter
        assert again is not None and await lock.release(again)
    # A waiter that leaves (LEAVE: a cancelled or failed acquire) with a grant it never saw.
    blocker = await lock.acquire("left")
    assert blocker is not None
    keys = lock._core.keys(("left",)) if hasattr(lock, "_core") else lock.sync._core.keys(
        ("left",))
    assert scripts.acquired_token(await acquire_script(lock)(keys, "gone", 5_000)) is None
    assert await lock.release(blocker)  # granted to "gone"
    leave = lock.redis.register_script(scripts.LEAVE)
    await leave(keys=keys.with_wake("gone"), args=["gone", *keys.layout])
    monitor.stop()

    with redis.Redis.from_url(redis_url) as client:
        found, shas = undeclared(client, monitor.lines)
        assert found == [], found
        # Every script ran (EXTEND, NOTIFY and LEAVE included), so every one was checked.
        expected = {client.script_load(source).encode() for source in
                    [*SCRIPTS.values(), scripts.EXTEND]}
    assert expected <= shas, "a script never ran under MONITOR"


@pytest.mark.gen_test(timeout=20)
async def test_the_check_catches_a_script_that_builds_a_key_name(
        monitor: Monitor, redis_url: str) -> None:
    # The control: what the scripts did before, a key built inside the script.
    with redis.Redis.from_url(redis_url) as client:
        client.eval("return redis.call('EXISTS', string.sub(KEYS[1], 1, 3) .. 'queue:x')",
                    1, "p:{t}:lock:x")
        monitor.stop()
        found, _ = undeclared(client, monitor.lines)
    assert found == ["EXISTS p:{queue:x"], found
