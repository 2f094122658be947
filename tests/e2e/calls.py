"""Every call the workload tools make, with the moment it started and how it ended.

`record_calls(monkeypatch)` wraps `devstack.workload.request`, which the workload,
its watcher, `create_orders` and `check` all send through, so a test can judge the
calls started after a fault was healed apart from those sent during it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pytest

import devstack.workload


@dataclass(frozen=True)
class Call:
    method: str
    url: str
    started: float  # time.monotonic()
    seconds: float
    status: int | None  # None: no answer within the call's timeout
    timeout: float

    @property
    def failed(self) -> bool:
        """A 5xx; 4xx are the contract's own answers, and a call with no answer is
        judged by `unanswered` (the watcher's reads have a short timeout of their own,
        and how fast a call answers is for benchmarks to say)."""
        return self.status is not None and self.status >= 500


def record_calls(monkeypatch: pytest.MonkeyPatch) -> list[Call]:
    calls: list[Call] = []
    send = devstack.workload.request

    async def recorded(method: str, url: str, body: Any = None,
                       timeout: float = 10.0) -> tuple[int | None, Any]:
        started = time.monotonic()
        status, reply = await send(method, url, body, timeout)
        calls.append(Call(method, url, started, time.monotonic() - started, status, timeout))
        return status, reply

    monkeypatch.setattr(devstack.workload, "request", recorded)
    return calls


def unanswered(calls: list[Call], bound: float = 10.0) -> list[Call]:
    """Calls that got no answer though they waited `bound` seconds, longer than any
    timeout of the services. The workload's watcher reads give up after 2 s, before
    a 503 for a silent MongoDB is due: they are left out, the writes judge that."""
    return [c for c in calls if c.status is None and c.timeout >= bound]


def started_after(calls: list[Call], moment: float, before: float | None = None) -> list[Call]:
    return [c for c in calls if c.started >= moment and (before is None or c.started < before)]


def on(calls: list[Call], base_url: str) -> list[Call]:
    return [c for c in calls if c.url.startswith(base_url + "/")]
