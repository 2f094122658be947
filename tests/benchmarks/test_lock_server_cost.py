"""`make bench-lock`'s count of redis-server's instructions per cycle, in a tiny run, so it
cannot rot: the count is a count (the same whatever the machine does), and a cycle of
FencedLock costs the server more than one of redis-py's Lock (a script against a plain
SET NX PX), which is what the count is there to show."""

from __future__ import annotations

import shutil

import pytest

from benchmarks import lock_server_cost


@pytest.mark.slow  # redis-server under valgrind, four times: a few seconds
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_a_fenced_cycle_costs_the_server_more_than_redis_pys() -> None:
    fenced = lock_server_cost.per_cycle("FencedLock sync, 1 res", low=10, high=60)
    redis_py = lock_server_cost.per_cycle("redis-py sync Lock", low=10, high=60)
    assert 10_000 < redis_py < fenced < 1_000_000, (redis_py, fenced)
