"""The control for the Celery recipe: its task with the token check left out.

Loaded into the test's workers beside the recipe (`celery worker --include`), never
part of the recipe itself: it shows what the fence prevents.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from examples.celery_lease import tasks


@tasks.app.task(name="recipe.rebuild_report_unfenced")
def rebuild_report_unfenced(report_id: str, version: str) -> dict[str, Any]:
    """`tasks.rebuild_report`, the same lease and renewal, but a plain UPDATE."""
    with tasks.lock().hold(f"report:{report_id}", timeout=tasks.LOCK_WAIT_S, keep_alive=True,
                           max_hold=tasks.MAX_HOLD_S) as lease:
        body = tasks.render(report_id, version)
        with tasks.engine().begin() as connection:
            written = connection.execute(sa.update(tasks.reports).where(
                tasks.reports.c.id == report_id).values(body=body)).rowcount == 1
    return {"report": report_id, "version": version, "token": lease.token, "written": written}
