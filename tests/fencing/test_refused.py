"""Refusals a retry cannot cure are plain `LockError`s, not `LockUnavailable` (which the
services answer with 503 and the renewer tries again): a wrong password, a missing ACL
right. Budget: 1 s."""

from __future__ import annotations

from typing import Callable

import pytest

from devstack import RedisServer
from fencing import LockError, LockUnavailable
from tests.fencing.conftest import LockFactory


@pytest.mark.gen_test(timeout=20)
async def test_a_wrong_password_and_a_missing_right_are_lock_errors_not_unavailable(
        make_lock: LockFactory, make_redis_server: Callable[[], RedisServer]) -> None:
    server = make_redis_server()
    admin = make_lock(url=server.url)
    await admin.redis.acl_setuser("locker", enabled=True, passwords=["+pw"], keys=["~*"],
                                  commands=["+@all", "-evalsha"])
    for user in ("locker:wrong", "locker:pw"):
        lock = make_lock(url=server.url.replace("redis://", f"redis://{user}@"))
        with pytest.raises(LockError) as refused:
            await lock.acquire("doc")
        assert not isinstance(refused.value, LockUnavailable), user
