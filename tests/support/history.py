"""Reading a task's transition log in tests."""

from __future__ import annotations

from sqlalchemy import select

from tasker import Tasker
from tasker.models import TaskTransition


def task_log(app: Tasker, task_id: int) -> list[tuple[str | None, str, dict]]:
    """The task's transitions (from, to, metadata), oldest first."""
    with app.db.read() as session:
        rows = session.execute(
            select(TaskTransition.from_state, TaskTransition.to_state, TaskTransition.metadata_)
            .where(TaskTransition.task_id == task_id)
            .order_by(TaskTransition.sort_key)
        ).all()
    return [tuple(row) for row in rows]
