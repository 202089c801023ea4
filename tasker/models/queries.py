"""Lookups shared by the engine, the app and the CLI."""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from tasker.models.catalog import NamedTask, TaskNamespace
from tasker.models.instances import Task, WorkflowStep, WorkflowStepEdge


class TaskIdentity(NamedTuple):
    """A task row with the namespace, name and version of its template."""

    task: Task
    name: str
    version: str
    namespace: str


def find_task(session: Session, task_id: int) -> TaskIdentity | None:
    """The task and its template identity, or None."""
    row = session.execute(
        select(Task, NamedTask.name, NamedTask.version, TaskNamespace.name)
        .join(NamedTask, NamedTask.named_task_id == Task.named_task_id)
        .join(TaskNamespace, TaskNamespace.task_namespace_id == NamedTask.task_namespace_id)
        .where(Task.task_id == task_id)
    ).one_or_none()
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
