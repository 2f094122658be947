"""Mutual exclusion and growing tokens under contention, across tasks AND processes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import defaultdict
from typing import Any

import pytest

from fencing import FencedLock
from fencing.keys import KeySpace
from tests.fencing.backends import keys
from tests.fencing.contender import A, B, C, run, run_sync

SECONDS = 3.0


def check_holds(holds: list[dict[str, Any]]) -> dict[str, int]:
    """No two holds of one resource overlap; each later holder has a higher token."""
    by_resource: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for hold in holds:
        assert hold["held"], f"lease expired during a hold: {hold}"
        for name in hold["resources"]:
            by_resource[name].append(hold)
    for name, resource_holds in by_resource.items():
        resource_holds.sort(key=lambda hold: hold["start"])
        for before, after in zip(resource_holds, resource_holds[1:]):
            assert before["end"] <= after["start"], f"overlapping holds of {name}: {before} {after}"
            assert before["token"] < after["token"], f"token went down on {name}: {before} {after}"
    return {name: len(resource_holds) for name, resource_holds in by_resource.items()}


@pytest.mark.slow
@pytest.mark.gen_test(timeout=60)
async def test_holds_never_overlap_and_tokens_grow_across_processes_and_tasks(
        lock_target: str, unique_name: str, lock: FencedLock, flavor: str) -> None:
    """Three processes of this flavor of lock, and this one with the other flavor: the
    async and the sync lock exclude each other too."""
    processes = [subprocess.Popen([sys.executable, "-m", "tests.fencing.contender", lock_target,
                                   unique_name, str(SECONDS), "4", str(seed), flavor],
                                  stdout=subprocess.PIPE, text=True)
                 for seed in range(3)]
    if flavor == "sync":
        local = await run(lock_target, unique_name, SECONDS, 4, seed=99)
    else:
        local = await asyncio.get_running_loop().run_in_executor(
            None, run_sync, lock_target, unique_name, SECONDS, 4, 99)
    holds = list(local)
    for process in processes:
        out, _ = await asyncio.get_running_loop().run_in_executor(None, process.communicate,
                                                                  None, 30)
        assert process.returncode == 0
        holds.extend(json.loads(line) for line in out.splitlines())
    counts = check_holds(holds)
    assert set(counts) == {A, B, C}
    assert min(counts.values()) >= 50, counts  # real contention, every resource served
    assert {h["token"] for h in holds if h in local} and len(holds) > len(local)
    # Nothing is left behind but the counter and notifications that came after their
    # waiter had found its grant by itself, and they expire (see fencing.keys).
    space = KeySpace.of(unique_name, (A,))
    left = await keys(lock.redis, f"{unique_name}:*")
    assert {key for key in left if not key.startswith(space.wake(""))} <= {space.seq}, left
    for key in left:
        assert 0 < await lock.redis.pttl(key) <= 2 * 5_000, key
