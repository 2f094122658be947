"""A waiting acquire cancelled by `asyncio.run`'s shutdown leaves the line before the loop
closes: its clean-up used to be a task of its own, destroyed pending ("Task was destroyed
but it is pending") with its LEAVE unsent, so the resource went to the dead waiter.

Each `asyncio.run` runs in a thread of its own, beside the test's loop. Budget: 2 s."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from typing import Any

import pytest
import redis
import redis.asyncio as aredis

from fencing import FencedLock
from fencing.sync import FencedLock as SyncFencedLock


def run_in_a_thread(coroutine: Any) -> None:
    worker = threading.Thread(target=asyncio.run, args=(coroutine,))
    worker.start()
    worker.join(20)
    assert not worker.is_alive()


# The client cannot be closed before asyncio.run cancels the waiter, nor after (the loop is
# closed by then): its connection's writer warns when it is collected.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_waiter_cancelled_at_asyncio_run_shutdown_leaves_the_line(
        redis_url: str, unique_name: str, caplog: pytest.LogCaptureFixture) -> None:
    sync_client = redis.Redis.from_url(redis_url, socket_timeout=2.0)
    holder_lock = SyncFencedLock(sync_client, prefix=unique_name)
    holder = holder_lock.acquire("doc")
    assert holder is not None

    async def main() -> None:
        client = aredis.Redis.from_url(redis_url, socket_timeout=2.0)
        lock = FencedLock(client, prefix=unique_name)
        asyncio.ensure_future(lock.acquire("doc", timeout=30))  # never awaited
        await asyncio.sleep(0.2)  # in line now; asyncio.run cancels it when main returns

    caplog.set_level(logging.ERROR, logger="asyncio")
    try:
        run_in_a_thread(main())
        gc.collect()
        assert not [r for r in caplog.records if "destroyed but it is pending" in r.getMessage()]
        assert holder_lock.release(holder)
        # Nobody is in line any more, so the release left "doc" free rather than handing it
        # to the waiter that is gone.
        after = holder_lock.acquire("doc")
        assert after is not None and holder_lock.release(after)
    finally:
        sync_client.close()
