"""The controls for the Celery recipe: its task with one part left out.

Loaded into the test's workers beside the recipe (`celery worker --include`), never
part of the recipe itself: they show what the token check and the renewal prevent.
"""

from __future__ import annotations

from typing import Any, Callable

import sqlalchemy as sa

from examples.celery_lease import tasks


def store_unfenced(report_id: str, body: str, token: int) -> bool:
    with tasks.engine().begin() as connection:
        written = connection.execute(sa.update(tasks.reports).where(
            tasks.reports.c.id == report_id).values(body=body)).rowcount
    return bool(written == 1)


def rebuild(report_id: str, version: str, keep_alive: bool,
            store: Callable[[str, str, int], bool]) -> dict[str, Any]:
    """`tasks.rebuild_report`, with its renewal and its write as given."""
    with tasks.lock().hold(f"report:{report_id}", timeout=tasks.LOCK_WAIT_S,
                           keep_alive=keep_alive, max_hold=tasks.MAX_HOLD_S) as lease:
        body = tasks.render(report_id, version)
        written = store(report_id, body, lease.token)
    return {"report": report_id, "version": version, "token": lease.token, "written": written}


@tasks.app.task(name="recipe.rebuild_report_unfenced")
def rebuild_report_unfenced(report_id: str, version: str) -> dict[str, Any]:
    """The same lease and renewal, but a plain UPDATE."""
    return rebuild(report_id, version, True, store_unfenced)


@tasks.app.task(name="recipe.rebuild_report_unrenewed")
def rebuild_report_unrenewed(report_id: str, version: str) -> dict[str, Any]:
    """The same fenced write, but a lease that is not renewed."""
    return rebuild(report_id, version, False, tasks.store)
