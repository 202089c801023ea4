"""Lookups shared by the engine, the app and the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Join, Select, case, func, join, select
from sqlalchemy.orm import Session

from tasker.models.catalog import NamedTask, TaskNamespace
from tasker.models.instances import Task, WorkflowStep, WorkflowStepEdge
from tasker.state.states import COMPLETED_STATES


class TaskIdentity(NamedTuple):
    """A task row with the namespace, name and version of its template."""

    task: Task
    name: str
    version: str
    namespace: str


def find_task(session: Session, task_id: int) -> TaskIdentity | None:
    """The task and its template identity, or None."""
    row = session.execute(_identity_query().where(Task.task_id == task_id)).one_or_none()
    return TaskIdentity(*row) if row is not None else None


def task_steps(session: Session, task_id: int) -> list[tuple[WorkflowStep, tuple[str, ...]]]:
    """The task's steps in creation order, each with the names of its parents."""
    steps = list(
        session.scalars(
            select(WorkflowStep).where(WorkflowStep.task_id == task_id).order_by(WorkflowStep.workflow_step_id)
        )
    )
    names = {s.workflow_step_id: s.name for s in steps}
    parents: dict[int, list[str]] = {}
    for parent_id, child_id in session.execute(
        select(WorkflowStepEdge.from_step_id, WorkflowStepEdge.to_step_id)
        .where(WorkflowStepEdge.to_step_id.in_(names))
        .order_by(WorkflowStepEdge.id)
    ):
        parents.setdefault(child_id, []).append(names[parent_id])
    return [(s, tuple(parents.get(s.workflow_step_id, ()))) for s in steps]


@dataclass(frozen=True)
class TaskFilter:
    """Which tasks :func:`list_tasks` returns: every given field must match (times compare ``created_at``)."""

    status: str | None = None
    namespace: str | None = None
    name: str | None = None
    version: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    #: Keyset pagination: only tasks whose id is smaller than this (the last id of the previous page).
    after: int | None = None
    limit: int = 50


class TaskSummary(NamedTuple):
    """A task row with its template identity and step aggregates."""

    task: Task
    name: str
    version: str
    namespace: str
    steps_total: int
    steps_complete: int
    last_error: str | None


#: Tasks joined to their template and its namespace: what names a task.
TASK_WITH_TEMPLATE: Join = join(Task, NamedTask, NamedTask.named_task_id == Task.named_task_id).join(
    TaskNamespace, TaskNamespace.task_namespace_id == NamedTask.task_namespace_id
)


def _identity_query() -> Select[Task, str, str, str]:
    return select(Task, NamedTask.name, NamedTask.version, TaskNamespace.name).select_from(TASK_WITH_TEMPLATE)


def list_tasks(session: Session, where: TaskFilter) -> list[TaskSummary]:
    """Tasks matching ``where``, newest first (by id), at most ``where.limit``, with step aggregates."""
    rows = list(session.execute(task_page_query(where)))
    return summarize(session, [TaskIdentity(*row) for row in rows])


def task_page_query(where: TaskFilter) -> Select[Task, str, str, str]:
    """The page of tasks matching ``where`` (the indexes ``(status, task_id)``, ``(named_task_id, task_id)`` and
    ``created_at`` serve its filters; the order is the primary key's)."""
    query = _identity_query()
    for column, value in (
        (Task.status, where.status),
        (TaskNamespace.name, where.namespace),
        (NamedTask.name, where.name),
        (NamedTask.version, where.version),
    ):
        if value is not None:
            query = query.where(column == value)
    if where.since is not None:
        query = query.where(Task.created_at >= where.since)
    if where.until is not None:
        query = query.where(Task.created_at < where.until)
    if where.after is not None:
        query = query.where(Task.task_id < where.after)
    return query.order_by(Task.task_id.desc()).limit(where.limit)


def summarize(session: Session, found: list[TaskIdentity]) -> list[TaskSummary]:
    """Add step counts and the latest unresolved error message to each task (two queries in all)."""
    ids = [f.task.task_id for f in found]
    if not ids:
        return []
    S = WorkflowStep
    counts = {
        task_id: (int(total), int(done or 0))
        for task_id, total, done in session.execute(
            select(S.task_id, func.count(), func.sum(case((S.status.in_(COMPLETED_STATES), 1), else_=0)))
            .where(S.task_id.in_(ids))
            .group_by(S.task_id)
        )
    }
    errors: dict[int, tuple[datetime, str]] = {}
    for task_id, results, attempted_at in session.execute(
        select(S.task_id, S.results, S.last_attempted_at).where(
            S.task_id.in_(ids), S.status.not_in(COMPLETED_STATES), S.last_attempted_at.is_not(None)
        )
    ):
        message = results.get("error") if isinstance(results, dict) else None
        if message and (task_id not in errors or attempted_at > errors[task_id][0]):
            errors[task_id] = (attempted_at, str(message))
    return [
        TaskSummary(*f, *counts.get(f.task.task_id, (0, 0)), errors.get(f.task.task_id, (None, None))[1]) for f in found
    ]
