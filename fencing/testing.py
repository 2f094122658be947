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
a second, most of it waiting for leases to lapse.
"""

from __future__ import annotations

import asyncio
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Generator, Iterable

from fencing.errors import LockBusy
from fencing.lease import Lease
from fencing.lock import FencedLock
from fencing.sync import FencedLock as SyncFencedLock

__all__ = ["StoreReport", "check_store", "check_store_sync"]

Refusal = Exception | None


@dataclass(frozen=True)
class _Take:
    """Take a lease on the resource, waiting for a lapsing one; answered with its token.
    `keep`: hold it (released when the scenario ends, if it has not lapsed by then);
    else release it at once."""
    keep: bool = True


@dataclass(frozen=True)
class _Write:
    """The adopter's write; answered with the exception it raised, or None."""
    token: int
    value: str


@dataclass(frozen=True)
class _WriteAtOnce:
    """Every write in flight together, started in this order; answered with a Refusal each."""
    writes: tuple[tuple[int, str], ...]


@dataclass(frozen=True)
class _Read:
    """The adopter's read; answered with the value the store holds."""


_Step = _Take | _Write | _WriteAtOnce | _Read
_Scenario = Generator[_Step, Any, None]


@dataclass
class StoreReport:
    """What `check_store` found. `ok` is False if there is any anomaly.

    `anomalies`: each a sentence with the tokens and values involved, e.g.
    "late writer: value 'w3-late' written with token 3 was accepted after token
    4 wrote 'w4'". `warnings`: allowed but unusual (a refused retry, a refused
    write that looked like a success to its caller), each said once with how
    often it happened.
    """

    resource: str
    runs: int
    anomalies: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.anomalies

    def __str__(self) -> str:
        verdict = "no anomaly" if self.ok else f"{len(self.anomalies)} anomalies"
        lines = [f"store check on {self.resource!r}, {self.runs} runs of "
                 f"{len(SCENARIOS)} scenarios: {verdict}, {len(self.warnings)} warnings"]
        lines += [f"  anomaly: {sentence}" for sentence in self.anomalies]
        lines += [f"  warning: {sentence}" for sentence in self.warnings]
        return "\n".join(lines)


class _Findings:
    def __init__(self) -> None:
        self.anomalies: list[str] = []
        self._warnings: dict[str, list[str]] = {}

    def anomaly(self, sentence: str) -> None:
        self.anomalies.append(sentence)

    def warning(self, kind: str, sentence: str) -> None:
        self._warnings.setdefault(kind, []).append(sentence)

    def report(self, resource: str, runs: int) -> StoreReport:
        warnings = [said[0] if len(said) == 1 else f"{said[0]} ({len(said)} times)"
                    for said in self._warnings.values()]
        return StoreReport(resource, runs, self.anomalies, warnings)


def _why(refusal: BaseException) -> str:
    return f"{type(refusal).__name__}: {refusal}"


# -- the scenarios: the steps they take, and what they conclude from the answers ------

def _newest_write(found: _Findings, scenario: str, token: int,
                  value: str) -> Generator[_Step, Any, bool]:
    """The newest lease's write: the store must take it. False (and an anomaly) if not."""
    refusal = yield _Write(token, value)
    if refusal is not None:
        found.anomaly(f"{scenario}: the write of {value!r} with token {token}, the newest "
                      f"lease's, was refused ({_why(refusal)}); if the store holds a token "
                      "from another Redis, pass floor=")
        return False
    held = yield _Read()
    if held != value:
        found.anomaly(f"{scenario}: the write of {value!r} with token {token}, the newest "
                      f"lease's, returned normally but the store holds {held!r}")
        return False
    return True


def _stale_write(found: _Findings, scenario: str, token: int, value: str, winner: int,
                 kept: str) -> _Scenario:
    """A write with `token` after `winner` wrote `kept`: the store must keep `kept`."""
    refusal = yield _Write(token, value)
    held = yield _Read()
    if held == value:
        found.anomaly(f"{scenario}: value {value!r} written with token {token} was accepted "
                      f"after token {winner} wrote {kept!r}")
    elif held != kept:
        found.anomaly(f"{scenario}: after token {winner} wrote {kept!r} and token {token} "
                      f"wrote {value!r}, the store holds {held!r}")
    elif refusal is None:
        found.warning("silent", f"{scenario}: the write of {value!r} with token {token} was "
                      "not applied but returned normally: its caller cannot tell it was "
                      "refused (raise when nothing matched)")


def late_writer(found: _Findings, run: int) -> _Scenario:
    scenario = "late writer"
    a = yield _Take()                # never released: A's lease lapses while it is "paused"
    if not (yield from _newest_write(found, scenario, a, f"w{a}")):
        return
    b = yield _Take()                # waits for A's lease to lapse
    if (yield from _newest_write(found, scenario, b, f"w{b}")):
        yield from _stale_write(found, scenario, a, f"w{a}-late", b, f"w{b}")


def unseen_token(found: _Findings, run: int) -> _Scenario:
    scenario = "unseen lower token"
    a = yield _Take()                # A lapses before it writes anything
    b = yield _Take()
    if (yield from _newest_write(found, scenario, b, f"w{b}")):
        yield from _stale_write(found, scenario, a, f"w{a}", b, f"w{b}")


def out_of_order(found: _Findings, run: int, writers: int = 4) -> _Scenario:
    scenario = "out-of-order writers"
    tokens = []
    for _ in range(writers):
        tokens.append((yield _Take(keep=False)))
    # Highest first on the first run: a check in two steps lets the lowest land last.
    order = sorted(tokens, reverse=True)
    if run > 0:
        random.Random(run).shuffle(order)
    refusals = yield _WriteAtOnce(tuple((token, f"w{token}") for token in order))
    highest = max(tokens)
    refusal = refusals[order.index(highest)]
    if refusal is not None:
        found.anomaly(f"{scenario}: the write of 'w{highest}' with token {highest}, the "
                      f"highest, was refused ({_why(refusal)})")
        return
    held = yield _Read()
    values = {f"w{token}": token for token in tokens}
    if held in values and held != f"w{highest}":
        found.anomaly(f"{scenario}: value {held!r} written with token {values[held]} was "
                      f"accepted after token {highest} wrote 'w{highest}'")
    elif held != f"w{highest}":
        found.anomaly(f"{scenario}: tokens {sorted(tokens)} wrote at once and the store holds "
                      f"{held!r}, not 'w{highest}'")


def same_token_retry(found: _Findings, run: int) -> _Scenario:
    scenario = "same-token retry"
    a = yield _Take()
    if not (yield from _newest_write(found, scenario, a, f"w{a}")):
        return
    refusal = yield _Write(a, f"w{a}")
    if refusal is not None:
        found.warning("retry", f"{scenario}: sending 'w{a}' again with token {a} was refused "
                      f"({_why(refusal)}): a holder that retries a write it is not sure "
                      "landed gets an error (fencing.mongo and fencing.sql accept an equal "
                      "token)")
        return
    held = yield _Read()
    if held != f"w{a}":
        found.anomaly(f"{scenario}: after 'w{a}' was sent twice with token {a}, the store "
                      f"holds {held!r}")


SCENARIOS: tuple[Callable[[_Findings, int], _Scenario], ...] = (
    late_writer, unseen_token, out_of_order, same_token_retry)


def _scenarios(found: _Findings, runs: int) -> Iterable[_Scenario]:
    if runs < 1:
        raise ValueError(f"runs must be at least 1, got {runs}")
    for run in range(runs):
        for scenario in SCENARIOS:
            yield scenario(found, run)


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
    found = _Findings()
    lock = FencedLock(redis, ttl_ms=ttl_ms, prefix=prefix)
    leases: list[Lease] = []

    async def attempt(token: int, value: str) -> Refusal:
        try:
            await write(token, value)
        except Exception as exc:
            return exc
        return None

    async def answer(step: _Step) -> Any:
        if isinstance(step, _Take):
            lease = await lock.acquire(resource, timeout=_wait_for(ttl_ms), floor=floor)
            if lease is None:
                raise _busy(resource, ttl_ms)
            if step.keep:
                leases.append(lease)
            else:
                await lock.release(lease)
            return lease.token
        if isinstance(step, _Write):
            return await attempt(step.token, step.value)
        if isinstance(step, _WriteAtOnce):
            return await asyncio.gather(*(attempt(*each) for each in step.writes))
        return await read()

    try:
        for scenario in _scenarios(found, runs):
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
    found = _Findings()
    lock = SyncFencedLock(redis, ttl_ms=ttl_ms, prefix=prefix)
    leases: list[Lease] = []

    def attempt(token: int, value: str) -> Refusal:
        try:
            write(token, value)
        except Exception as exc:
            return exc
        return None

    def answer(step: _Step) -> Any:
        if isinstance(step, _Take):
            lease = lock.acquire(resource, timeout=_wait_for(ttl_ms), floor=floor)
            if lease is None:
                raise _busy(resource, ttl_ms)
            if step.keep:
                leases.append(lease)
            else:
                lock.release(lease)
            return lease.token
        if isinstance(step, _Write):
            return attempt(step.token, step.value)
        if isinstance(step, _WriteAtOnce):
            with ThreadPoolExecutor(len(step.writes)) as pool:
                return list(pool.map(lambda each: attempt(*each), step.writes))
        return read()

    try:
        for scenario in _scenarios(found, runs):
            try:
                _drive(scenario, answer)
            finally:
                for lease in _still_held(leases):
                    lock.release(lease)
    finally:
        lock.close()
    return found.report(resource, runs)


async def _drive_async(scenario: _Scenario, answer: Callable[[_Step], Awaitable[Any]]) -> None:
    try:
        step = next(scenario)
        while True:
            step = scenario.send(await answer(step))
    except StopIteration:
        return


def _drive(scenario: _Scenario, answer: Callable[[_Step], Any]) -> None:
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
