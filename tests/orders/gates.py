"""Stop a flow at a named fault point until the test lets it go on.

In place of `sleep:<ms>` faults, so that two flows interleave in exactly the
order a test names, on any machine. `Gates("before_activate").install(...)`
replaces the service's fault hook; each gate stops the first flow that reaches
it, and every flow after it is opened.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.stack import Stack


class Gates:
    def __init__(self, *points: str) -> None:
        self.reached = {point: asyncio.Event() for point in points}
        self.opened = {point: asyncio.Event() for point in points}

    def install(self, stack: Stack, monkeypatch: pytest.MonkeyPatch) -> "Gates":
        """On the orders instance's fault hook (built in test mode: one of its own)."""
        faults = stack.order_service.faults
        assert faults.actions == {}, "start the stack with test_mode=True and no faults"
        monkeypatch.setattr(faults, "point", self.point)
        return self

    async def point(self, name: str) -> None:
        if name in self.reached:
            self.reached[name].set()
            await self.opened[name].wait()

    async def wait(self, point: str) -> None:
        """Until a flow stands at `point`."""
        await self.reached[point].wait()

    def open(self, point: str) -> None:
        self.opened[point].set()


async def expire_leases(stack: Stack) -> None:
    """Delete every lock key of the stack's prefix, as the leases' expiry would: the
    holder stays where it is, as a frozen process would, and any renewal finds its
    lease lost."""
    redis = stack.lock.redis
    keys = [key async for key in redis.scan_iter(f"{stack.settings.lock_prefix}:*:lock:*")]
    assert keys, "a lease was held"
    await redis.delete(*keys)
