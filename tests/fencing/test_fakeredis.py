"""fakeredis for an adopter's unit tests: exactly what docs/library/adopting.md claims.

With `fakeredis[lua]` both locks run on a FakeRedis (the scripts run in lupa):
one try, waiting for a lease to lapse, the hand-off to a waiter, renewal, a
lost lease, `floor`, and the store check of `fencing.testing`. Clients share
locks only through one `FakeServer`. Without lupa the first call fails with a
`LockError`. The library's own tests never use it: they run on real servers.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys

import fakeredis

from fencing import FencedLock
from fencing.sync import FencedLock as SyncFencedLock
from fencing.testing import check_store_sync


def test_the_async_lock_runs_on_fakeredis() -> None:
    # A loop of its own, closed here: run under pytest-tornado's per-test loop, this test
    # left an event loop unclosed for a later test's garbage collection to report (seen
    # with test_cli.py after it; the cause inside fakeredis was not pinned down).
    asyncio.run(asyncio.wait_for(async_lock_on_fakeredis(), 20))


async def async_lock_on_fakeredis() -> None:
    client = fakeredis.FakeAsyncRedis()
    lock = FencedLock(client, ttl_ms=200)
    first = await lock.acquire("doc:1")
    assert first is not None and await lock.acquire("doc:1") is None
    second = await lock.acquire("doc:1", timeout=2.0)            # after the first lapsed
    assert second is not None and second.token > first.token
    assert await lock.extend(first) is False and first.lost

    waiter = asyncio.ensure_future(lock.acquire("doc:1", timeout=2.0))
    await asyncio.sleep(0.05)
    assert await lock.release(second)
    third = await waiter                                          # handed over on release
    assert third is not None and third.token > second.token
    assert await lock.holder("doc:1") == third.token
    await lock.release(third)

    async with lock.hold("doc:2", "doc:3", keep_alive=True) as held:
        await asyncio.sleep(0.4)                                  # twice the ttl: renewed
        assert held.held and await lock.holder("doc:2") == held.token
    floored = await lock.acquire("doc:4", floor=10_000)
    assert floored is not None and floored.token > 10_000
    await lock.close()
    await client.aclose()


def test_the_sync_lock_and_the_store_check_run_on_fakeredis() -> None:
    lock = SyncFencedLock(fakeredis.FakeRedis(), ttl_ms=200)
    lease = lock.acquire("doc:1")
    assert lease is not None and lock.acquire("doc:1") is None
    assert lock.release(lease)

    store: dict[str, object] = {"value": None, "fence": 0}

    def write(token: int, value: str) -> None:
        if token < store["fence"]:  # type: ignore[operator]
            raise ValueError(f"stale token {token}")
        store.update(value=value, fence=token)

    report = check_store_sync(write, lambda: store["value"], redis=fakeredis.FakeRedis(),
                              resource="doc:1", runs=1, ttl_ms=100)
    assert report.ok, report


def test_clients_share_locks_only_through_one_fake_server() -> None:
    server = fakeredis.FakeServer()
    one = SyncFencedLock(fakeredis.FakeRedis(server=server))
    same_server = SyncFencedLock(fakeredis.FakeRedis(server=server))
    elsewhere = SyncFencedLock(fakeredis.FakeRedis())
    lease = one.acquire("doc:1")
    assert lease is not None
    assert same_server.acquire("doc:1") is None
    other = elsewhere.acquire("doc:1")
    assert other is not None, "a FakeRedis of its own is another Redis"


def test_without_lupa_the_first_call_fails_with_a_lock_error() -> None:
    # Hide lupa the way a plain `pip install fakeredis` leaves it: not installed.
    script = ("import sys; sys.modules['lupa'] = None\n"
              "import fakeredis\n"
              "from fencing.sync import FencedLock\n"
              "FencedLock(fakeredis.FakeRedis()).acquire('doc:1')\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1
    assert "fencing.errors.LockError: Redis refused the lock operation: unknown command " \
           "'evalsha'" in done.stderr
