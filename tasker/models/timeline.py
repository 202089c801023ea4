"""A task's timeline of step attempts, read from the transition tables (no tracing backend needed).

Each ``pending -> in_progress`` step transition starts an attempt and the next transition out of
``in_progress`` (``complete``, ``error``, ...) ends it. Attempts are numbered by run (the step's first claim is
1, its next 2...), so a run after an operator retry, which renews the attempt budget, is not numbered 1 again;
a failed attempt's message is in that transition's
metadata (``error_message``). ``tasker trace`` and the HTTP API's ``/trace`` draw their waterfalls from it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from tasker.db import Database
from tasker.errors import TaskNotFoundError
from tasker.models.base import utcnow
from tasker.models.instances import TaskTransition, WorkflowStepTransition
from tasker.models.queries import find_task, task_steps
from tasker.state.states import CANCELLED, ERROR, IN_PROGRESS, RESOLVED_MANUALLY, TERMINAL_TASK_STATES

__all__ = ["Attempt", "TaskTrace", "load_trace"]


@dataclass(frozen=True)
class Attempt:
    """One row of the waterfall: a step attempt, or a step that never ran (``number`` None)."""

    step: str
    number: int | None
    status: str
    start: datetime | None
    end: datetime | None
    error: str | None = None


@dataclass(frozen=True)
class TaskTrace:
    """A task's identity, status, time window and step attempts in the order they started."""

    task_id: int
    full_name: str
    status: str
    start: datetime
    end: datetime
    attempts: list[Attempt]
    #: The task's stored W3C trace ids (see :mod:`tasker.telemetry.propagation`), when it has them.
    trace_context: dict[str, Any] | None = None

    @property
    def duration(self) -> float:
        """Seconds from the task's creation to its end (or to now while it runs)."""
        return max((self.end - self.start).total_seconds(), 0.0)


def _step_attempts(step: str, status: str, transitions: list[WorkflowStepTransition]) -> Iterator[Attempt]:
    """Pair one step's transitions (in ``sort_key`` order) into attempts (see the module docstring)."""
    number: int | None = None
    started: datetime | None = None
    claims = rows = 0
    for t in transitions:
        meta = t.metadata_ or {}
        if t.to_state == IN_PROGRESS:
            claims += 1
            number, started = claims, t.created_at
        elif t.from_state == IN_PROGRESS and started is not None:
            error = meta.get("error_message") if t.to_state == ERROR else None
            yield Attempt(step, number, t.to_state, started, t.created_at, str(error) if error else None)
            number, started, rows = None, None, rows + 1
        elif t.to_state in (CANCELLED, RESOLVED_MANUALLY):  # settled without running
            yield Attempt(step, None, t.to_state, None, t.created_at)
            rows += 1
    if started is not None:
        yield Attempt(step, number, IN_PROGRESS, started, None)
    elif rows == 0:  # never attempted
        yield Attempt(step, None, status, None, None)


def load_trace(db: Database, task_id: int) -> TaskTrace:
    """Read the task, its steps and their transitions; raises :class:`TaskNotFoundError`."""
    with db.read() as session:
        found = find_task(session, task_id)
        if found is None:
            raise TaskNotFoundError(task_id)
        task, name, version, namespace = found
        steps = [step for step, _parents in task_steps(session, task_id)]
        by_step: dict[int, list[WorkflowStepTransition]] = {s.workflow_step_id: [] for s in steps}
        for t in session.scalars(
            select(WorkflowStepTransition)
            .where(WorkflowStepTransition.workflow_step_id.in_(by_step))
            .order_by(WorkflowStepTransition.workflow_step_id, WorkflowStepTransition.sort_key)
        ):
            by_step[t.workflow_step_id].append(t)
        last_task_change = session.scalar(
            select(func.max(TaskTransition.created_at)).where(TaskTransition.task_id == task_id)
        )
    attempts = [a for s in steps for a in _step_attempts(s.name, s.status, by_step[s.workflow_step_id])]
    start = task.created_at
    if task.status in TERMINAL_TASK_STATES:
        ends = [t for t in (task.completed_at, last_task_change, *(a.end for a in attempts)) if t is not None]
        end = max(ends, default=start)
    else:
        end = utcnow()
    order = {s.name: i for i, s in enumerate(steps)}
    attempts.sort(key=lambda a: (a.start is None, a.start or start, order[a.step], a.number or 0))
    return TaskTrace(
        task.task_id, f"{namespace}.{name}@{version}", task.status, start, end, attempts, task.trace_context
    )
