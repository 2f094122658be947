"""The Celery recipe (examples/celery_lease) in real Celery worker processes.

Two workers, each on a queue of its own (so the test says which runs what), on a
redis-server of the module's own (broker, result backend and lock) and a SQLite
file. Worker a takes the report's lease and renders; the test freezes it
(SIGSTOP) past its lease; worker b waits the lease out, renders and stores; the
test resumes a, which finishes its render and writes late. The recipe's fenced
write is refused and b's version stays; the control task, the same with a plain
UPDATE, overwrites b's version with a's stale one (asserted every run). And
unfrozen, renewal keeps a's lease through work longer than its ttl, so b waits;
without renewal (the other control) the lease lapses under a's work.
Budget: about 25 s (two worker start-ups, four scenarios of 3 to 5 s).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
import uuid
from typing import Any, Iterator, Sequence

import pytest
import redis
import sqlalchemy as sa
from celery import Celery

from devstack import RedisServer, ServerProcess
from examples.celery_lease.tasks import metadata, reports
from fencing.sync import FencedLock

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# a renews every third of a second while it runs; frozen, it loses the lease after 1 s.
LEASE_TTL_MS = 1_000
# Long enough that a is still rendering when the test freezes it, just after it took
# the lease.
WORK_SECONDS = 2.0
RESULT_WAIT_S = 30.0


class CeleryWorker(ServerProcess):
    """`celery -A examples.celery_lease.tasks worker --pool=solo` on one queue: the solo
    pool runs the task in the worker process itself, so SIGSTOP freezes the task and its
    renewal thread together."""

    name = "celery-worker"

    def __init__(self, queue: str, env: dict[str, str], log_path: str) -> None:
        super().__init__(log_path=log_path)
        self.queue = queue
        self.env = env

    def command(self) -> Sequence[str]:
        return [sys.executable, "-m", "celery", "-A", "examples.celery_lease.tasks", "worker",
                "--pool=solo", "-Q", self.queue, "-n", f"{self.queue}@%h",
                "--include", "tests.examples.celery_control", "--loglevel=INFO",
                "--without-heartbeat", "--without-gossip", "--without-mingle"]

    def environment(self) -> dict[str, str]:
        path = os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))
        return {**os.environ, **self.env, "PYTHONPATH": path}

    def is_ready(self) -> bool:
        assert self.log_path is not None
        with open(self.log_path, errors="replace") as log:
            return f"{self.queue}@" in (text := log.read()) and " ready." in text


@dataclasses.dataclass
class Rig:
    a: CeleryWorker
    b: CeleryWorker
    client: Celery
    lock: FencedLock
    engine: sa.Engine


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    work = tmp_path_factory.mktemp("celery")
    database_url = f"sqlite:///{work}/reports.db"
    engine = sa.create_engine(database_url)
    metadata.create_all(engine)
    with RedisServer(log_path=str(work / "redis.log")) as server:
        env = {"REDIS_URL": server.url, "DATABASE_URL": database_url, "LOCK_PREFIX": "recipe",
               "LEASE_TTL_MS": str(LEASE_TTL_MS), "WORK_SECONDS": str(WORK_SECONDS),
               "LOCK_WAIT_S": str(RESULT_WAIT_S)}
        workers = [CeleryWorker(queue, env, str(work / f"worker-{queue}.log"))
                   for queue in ("a", "b")]
        client = Celery("recipe-test", broker=server.url, backend=server.url)
        lock_client = redis.Redis.from_url(server.url, socket_timeout=2)
        try:
            for worker in workers:
                worker.start()
            yield Rig(*workers, client=client, lock=FencedLock(lock_client, prefix="recipe"),
                      engine=engine)
        finally:
            for worker in workers:
                worker.stop()
            client.close()
            lock_client.close()
            engine.dispose()


def new_report(rig: Rig) -> str:
    report_id = f"report-{uuid.uuid4().hex[:8]}"
    with rig.engine.begin() as connection:
        connection.execute(sa.insert(reports).values(id=report_id, body=""))
    return report_id


def body_of(rig: Rig, report_id: str) -> str:
    with rig.engine.connect() as connection:
        body: str = connection.scalar(
            sa.select(reports.c.body).where(reports.c.id == report_id))
    return body


def lease_taken(rig: Rig, report_id: str) -> int:
    """Waits until someone holds the report's lease; its token."""
    deadline = time.monotonic() + RESULT_WAIT_S
    while (token := rig.lock.holder(f"report:{report_id}")) is None:
        assert time.monotonic() < deadline, "no worker took the lease"
        time.sleep(0.01)
    return token


def holder_during_long_work(rig: Rig, task: str) -> tuple[int, int | None]:
    """a works 2 s on a 1 s lease while b waits for it: a's token, and who holds the
    lease 1.3 s in."""
    report_id = new_report(rig)
    a = rig.client.send_task(task, (report_id, "from a"), queue="a")
    token = lease_taken(rig, report_id)
    b = rig.client.send_task(task, (report_id, "from b"), queue="b")
    time.sleep(1.3 * LEASE_TTL_MS / 1000)
    holder = rig.lock.holder(f"report:{report_id}")
    assert a.get(RESULT_WAIT_S)["token"] == token < b.get(RESULT_WAIT_S)["token"]
    assert body_of(rig, report_id).endswith("version from b")
    return token, holder


def test_renewal_keeps_the_lease_through_work_longer_than_its_ttl(rig: Rig) -> None:
    token, holder = holder_during_long_work(rig, "recipe.rebuild_report")

    assert holder == token  # b still waits


def test_unrenewed_the_lease_lapses_under_work_longer_than_its_ttl(rig: Rig) -> None:
    token, holder = holder_during_long_work(rig, "recipe.rebuild_report_unrenewed")

    assert holder != token  # gone by its ttl, or b's already


def late_write(rig: Rig, task: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """a renders, frozen past its lease; b rebuilds the report; a resumes and writes.
    Returns a's result, b's, and the body the report ends with."""
    report_id = new_report(rig)
    a = rig.client.send_task(task, (report_id, "from a"), queue="a")
    lease_taken(rig, report_id)  # a has the lease, and renders
    rig.a.pause()
    try:
        b = rig.client.send_task(task, (report_id, "from b"), queue="b").get(RESULT_WAIT_S)
    finally:
        rig.a.resume()
    return a.get(RESULT_WAIT_S), b, body_of(rig, report_id)


def test_a_worker_frozen_past_its_lease_has_its_late_write_refused(rig: Rig) -> None:
    a, b, body = late_write(rig, "recipe.rebuild_report")

    assert b["written"] is True
    assert a["token"] < b["token"]
    # Had a stored before the freeze (its render outran the test), b's write would come
    # after it and a["written"] would be True: the timeline would not be the one above.
    assert a["written"] is False, a
    assert body.endswith("version from b")


def test_unfenced_the_frozen_workers_late_write_wins(rig: Rig) -> None:
    a, b, body = late_write(rig, "recipe.rebuild_report_unfenced")

    assert b["written"] is True
    assert a["token"] < b["token"]
    assert a["written"] is True
    assert body.endswith("version from a")  # b's newer version is lost
