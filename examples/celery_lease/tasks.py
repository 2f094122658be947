"""A Celery task that holds a lease while it works, then writes under the lease's token.

`rebuild_report(report_id, version)` renders a report (slowly) and stores it.
Two workers must not rebuild one report at once, so the task holds a lease on
it (`fencing.sync.FencedLock`), renewed in the background for as long as the
work runs (`keep_alive=True`). Renewal cannot help a worker that stops running:
frozen (SIGSTOP, a paused VM, a host swapping) past its lease, it renews
nothing, the lease lapses and another worker takes the report. When the frozen
one wakes, it carries on and writes::

    worker a: lease, token 7, render ... frozen ......................... wakes, write -> refused
    worker b:               waits ... lease, token 8, render, write -> stored

The store refuses a's write because the UPDATE carries the token and the row
keeps the highest token it took (`fencing.sql.fence`), checked in the same
statement. A task may also look at `lease.lost` (set when a renewal found the
lease gone) between steps of long work, to give up early and save the work;
that is an economy, not the safety: the freeze can come between any check and
the write, and only the store can refuse that write. This task checks nothing,
so that its test shows the store doing it.

Run it by hand, from the repository root, with a redis-server on port 6379
(the broker, the result backend and the lock)::

    pip install -e './fencing[sql]' 'celery[redis]'
    celery -A examples.celery_lease.tasks worker --pool=solo -l INFO -n a@%h   # terminal 1
    celery -A examples.celery_lease.tasks worker --pool=solo -l INFO -n b@%h   # terminal 2
    python -m examples.celery_lease.tasks monthly v1      # queues one rebuild, prints its id
    python -m examples.celery_lease.tasks monthly v2

With WORK_SECONDS=30 the workers render slowly enough to `kill -STOP` the one
that logged "rendering" and `kill -CONT` it after the other stored its version.
Settings come from the environment: REDIS_URL, DATABASE_URL (SQLite file by
default), LOCK_PREFIX, LEASE_TTL_MS, LOCK_WAIT_S, WORK_SECONDS.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import time
from typing import Any

import redis
import sqlalchemy as sa
from celery import Celery

from fencing.sql import fence
from fencing.sync import FencedLock

log = logging.getLogger(__name__)

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
DATABASE_URL = os.environ.get("DATABASE_URL", "sqlite:///recipe-reports.db")
LOCK_PREFIX = os.environ.get("LOCK_PREFIX", "fencing")
# Renewal keeps a lease alive as long as the worker runs, so the ttl only bounds
# how long a report stays blocked after a worker died or froze.
LEASE_TTL_MS = int(os.environ.get("LEASE_TTL_MS", "10000"))
LOCK_WAIT_S = float(os.environ.get("LOCK_WAIT_S", "60"))
WORK_SECONDS = float(os.environ.get("WORK_SECONDS", "3"))
# A rebuild that runs longer than this is stuck: renewal stops, the lease lapses.
MAX_HOLD_S = 600.0

app = Celery("recipe", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(broker_connection_retry_on_startup=True, task_serializer="json",
                result_serializer="json", accept_content=["json"], result_expires=3600)

metadata = sa.MetaData()
reports = sa.Table(
    "reports", metadata,
    sa.Column("id", sa.String(100), primary_key=True),
    sa.Column("body", sa.Text, nullable=False),
    # The highest token the row accepted (NULL: none yet). BIGINT: a token counter starts
    # at Redis's clock in microseconds, far above 2**31.
    sa.Column("fence", sa.BigInteger, nullable=True),
)


# Made on first use, in the process that runs the tasks: a prefork worker forks its
# children after importing this module, and connections must not cross a fork.
@functools.cache
def lock() -> FencedLock:
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    return FencedLock(client, ttl_ms=LEASE_TTL_MS, prefix=LOCK_PREFIX)


@functools.cache
def engine() -> sa.Engine:
    made = sa.create_engine(DATABASE_URL)
    metadata.create_all(made)
    return made


def render(report_id: str, version: str) -> str:
    """The slow part (a stand-in for real work): WORK_SECONDS of sleep."""
    log.info("rendering %s at %s", report_id, version)
    time.sleep(WORK_SECONDS)
    return f"report {report_id}, version {version}"


def store(report_id: str, body: str, token: int) -> bool:
    """Write the body if no higher token wrote this report; True if the row took it."""
    with engine().begin() as connection:
        written = connection.execute(
            fence(reports, reports.c.id == report_id, {"body": body}, token)).rowcount
    return bool(written == 1)


@app.task(name="recipe.rebuild_report")
def rebuild_report(report_id: str, version: str) -> dict[str, Any]:
    """Render and store one report under a lease on it; `written` False if the store
    refused the token (a newer holder wrote: this result is stale, drop it)."""
    with lock().hold(f"report:{report_id}", timeout=LOCK_WAIT_S, keep_alive=True,
                     max_hold=MAX_HOLD_S) as lease:
        body = render(report_id, version)
        written = store(report_id, body, lease.token)
    if not written:
        log.warning("report %s: token %s refused, a newer holder wrote", report_id, lease.token)
    return {"report": report_id, "version": version, "token": lease.token, "written": written}


def create_report(report_id: str) -> None:
    """The row the task updates, with no token yet (a fenced UPDATE needs a row)."""
    with engine().begin() as connection:
        if connection.scalar(sa.select(reports.c.id).where(reports.c.id == report_id)) is None:
            connection.execute(sa.insert(reports).values(id=report_id, body=""))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m examples.celery_lease.tasks REPORT_ID VERSION")
    create_report(sys.argv[1])
    print(rebuild_report.delay(sys.argv[1], sys.argv[2]).id)
