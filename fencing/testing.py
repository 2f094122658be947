"""Prove that your own store refuses stale tokens: one test in your suite.

::

    from fencing.testing import check_store

    async def write(token: int, value: str) -> None:     # your write path, for one document
        query, update = fence({"_id": "doc-42"}, {"$set": {"value": value}}, token)
        if (await docs.update_one(query, update)).matched_count != 1:
            raise StaleToken(token)                       # any exception means "refused"

    async def read() -> str | None:                       # the value the store holds now
        doc = await docs.find_one({"_id": "doc-42"})
        return doc and doc["value"]

    report = await check_store(write, read, redis=client, resource="doc:42")
    assert report.ok, report        # str(report) tells every anomaly, with tokens and values

`check_store_sync` is the same check with blocking callables and a `redis.Redis`.

The kit takes real leases on `resource` in the given Redis (with the lock's
default key prefix, so its tokens come after those your code was given) and
writes through your `write`, in these scenarios, each `runs` times::

    late writer       A: lease (token 3), write 'w3' ... paused past its lease ... write 'w3-late'
                      B:                      lease (token 4), write 'w4'
                      -> the store must keep 'w4'
    unseen token      the same, but A never wrote before: the store has not seen token 3,
                      only a higher one
    out of order      tokens 5..8 from leases taken one after another, written all at once,
                      highest first on the first run, shuffled after
                      -> the store must end with token 8's value
    same-token retry  a holder sends its write again with the same token
                      -> accepted (a refusal is only a warning)

`report.ok` is False when a lower token's value was kept over a higher one's,
or when the newest holder's write was refused or not kept. A write that
returned normally but was not applied is a warning: your caller cannot tell
it was refused. The document must exist before the check, or `write` must
create it. With the defaults (3 runs, a lease of 150 ms) the check takes about
a second, most of it waiting for leases to lapse. The scenarios themselves,
without I/O, are in `fencing.store_scenarios`; this module drives them.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Awaitable, Callable

from fencing.errors import LockBusy
from fencing.lease import Lease
from fencing.lock import FencedLock
from fencing.store_scenarios import (Findings, Refusal, Scenario, Step, StoreReport, Take,
                                     Write, WriteAtOnce, all_scenarios)
from fencing.sync import FencedLock as SyncFencedLock

__all__ = ["StoreReport", "check_store", "check_store_sync"]


def _wait_for(ttl_ms: int) -> float:
    """How long a take waits in line: a lapsing lease of the kit's own ends within its ttl."""
    return 4 * ttl_ms / 1000 + 2.0


# -- the two drivers: asyncio, and blocking ---------------------------------------------

async def check_store(write: Callable[[int, str], Awaitable[object]],
                      read: Callable[[], Awaitable[object]], *, redis: Any, resource: str,
                      runs: int = 3, ttl_ms: int = 150, prefix: str = "fencing",
                      floor: int | None = None) -> StoreReport:
    """Run every scenario `runs` times against your store; see the module docstring.

    `write(token, value)` and `read()` are coroutine functions; `redis` is a
    `redis.asyncio.Redis` (or `RedisCluster`). `prefix` must be your lock's, so the
    kit's tokens come after the ones your store has seen; `floor` lifts them past
    a store's highest token if that came from another Redis. Raises `LockBusy` if
    someone else holds `resource` for longer than the kit waits, `LockError` if
    Redis fails.
    """
    found = Findings()
    lock = FencedLock(redis, ttl_ms=ttl_ms, prefix=prefix)
    leases: list[Lease] = []

    async def attempt(token: int, value: str) -> Refusal:
        try:
            await write(token, value)
        except Exception as exc:
            return exc
        return None

    async def answer(step: Step) -> Any:
        if isinstance(step, Take):
            lease = await lock.acquire(resource, timeout=_wait_for(ttl_ms), floor=floor)
            if lease is None:
                raise _busy(resource, ttl_ms)
            if step.keep:
                leases.append(lease)
            else:
                await lock.release(lease)
            return lease.token
        if isinstance(step, Write):
            return await attempt(step.token, step.value)
        if isinstance(step, WriteAtOnce):
            return await asyncio.gather(*(attempt(*each) for each in step.writes))
        return await read()

    try:
        for scenario in all_scenarios(found, runs):
            try:
                await _drive_async(scenario, answer)
            finally:
                for lease in _still_held(leases):
                    await lock.release(lease)
    finally:
        await lock.close()
    return found.report(resource, runs)


def check_store_sync(write: Callable[[int, str], object], read: Callable[[], object], *,
                     redis: Any, resource: str, runs: int = 3, ttl_ms: int = 150,
                     prefix: str = "fencing", floor: int | None = None) -> StoreReport:
    """`check_store` with blocking `write` and `read` and a `redis.Redis` (or the sync
    `RedisCluster`). Concurrent writes run in threads, one per writer."""
    found = Findings()
    lock = SyncFencedLock(redis, ttl_ms=ttl_ms, prefix=prefix)
    leases: list[Lease] = []

    def attempt(token: int, value: str) -> Refusal:
        try:
            write(token, value)
        except Exception as exc:
            return exc
        return None

    def answer(step: Step) -> Any:
        if isinstance(step, Take):
            lease = lock.acquire(resource, timeout=_wait_for(ttl_ms), floor=floor)
            if lease is None:
                raise _busy(resource, ttl_ms)
            if step.keep:
                leases.append(lease)
            else:
                lock.release(lease)
            return lease.token
        if isinstance(step, Write):
            return attempt(step.token, step.value)
        if isinstance(step, WriteAtOnce):
            with ThreadPoolExecutor(len(step.writes)) as pool:
                return list(pool.map(lambda each: attempt(*each), step.writes))
        return read()

    try:
        for scenario in all_scenarios(found, runs):
            try:
                _drive(scenario, answer)
            finally:
                for lease in _still_held(leases):
                    lock.release(lease)
    finally:
        lock.close()
    return found.report(resource, runs)


async def _drive_async(scenario: Scenario, answer: Callable[[Step], Awaitable[Any]]) -> None:
    try:
        step = next(scenario)
        while True:
            step = scenario.send(await answer(step))
    except StopIteration:
        return


def _drive(scenario: Scenario, answer: Callable[[Step], Any]) -> None:
    try:
        step = next(scenario)
        while True:
            step = scenario.send(answer(step))
    except StopIteration:
        return


def _still_held(leases: list[Lease]) -> list[Lease]:
    """Empties `leases`; the ones to release. A lapsed lease is left alone: releasing it
    would only log that it had expired, which is what the kit meant it to do."""
    held = [lease for lease in leases if lease.held]
    leases.clear()
    return held


def _busy(resource: str, ttl_ms: int) -> LockBusy:
    return LockBusy((resource,), _wait_for(ttl_ms))
