"""Instance tables: tasks, workflow steps, edges, transition logs and annotations (§1.7-§1.11)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ColumnElement, ForeignKey, Index, String, UniqueConstraint, column, text
from sqlalchemy.orm import Mapped, mapped_column

from tasker.models.base import Base, BigId, Timestamps, utcnow
from tasker.state.states import ERROR, STATES

_STATE_CHECK = "to_state IN (" + ", ".join(f"'{s}'" for s in STATES) + ")"
_FROM_CHECK = "from_state IS NULL OR from_state IN (" + ", ".join(f"'{s}'" for s in STATES) + ")"


def partial(condition: ColumnElement[bool] | str) -> dict[str, Any]:
    """The keyword arguments of an index over the rows meeting ``condition`` only, on both databases.

    A step's commit writes every index page its changes touch: an index that leaves out the rows no query looks
    for (the steps not claimed, not finished; the transitions that are not failures) is written less and stays
    small. Queries meet the condition in the same words (``in_process IS true``) or imply it (a range on a
    column implies it is not null), so both planners can use it.
    """
    where = text(condition) if isinstance(condition, str) else condition
    return {"sqlite_where": where, "postgresql_where": where}


#: Rows a partial index keeps (see :func:`partial`); the migration that made them partial (0006) spells them the same.
CLAIMED = column("in_process").is_(True)
FINISHED = "processed_at IS NOT NULL"
FAILED = f"to_state = '{ERROR}'"


class Task(Timestamps, Base):
    """One run of a named task, with its context and current status."""

    __tablename__ = "tasker_tasks"
    __table_args__ = (
        Index(None, "status", "run_at"),
        # Listing newest first (keyset on task_id), filtered by status, by template, or by creation time.
        Index(None, "status", "task_id"),
        Index(None, "named_task_id", "task_id"),
        Index(None, "created_at"),
        # statistics of the tasks finished in a period (PostgreSQL: answered from the index alone)
        Index(None, "completed_at", postgresql_include=["status", "started_at", "created_at"]),
    )

    task_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    named_task_id: Mapped[int] = mapped_column(ForeignKey("tasker_named_tasks.named_task_id"))
    status: Mapped[str] = mapped_column(String(32), default="pending")
    complete: Mapped[bool] = mapped_column(default=False)
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    initiator: Mapped[str] = mapped_column(String(128), default="unknown")
    source_system: Mapped[str] = mapped_column(String(128), default="unknown")
    reason: Mapped[str] = mapped_column(String(128), default="unknown")
    bypass_steps: Mapped[Any] = mapped_column(default=list)
    tags: Mapped[Any] = mapped_column(default=list)
    context: Mapped[dict[str, Any]] = mapped_column()
    identity_hash: Mapped[str] = mapped_column(String(128), unique=True)
    #: W3C carrier of the task's trace (see tasker.telemetry.propagation).
    trace_context: Mapped[dict[str, Any] | None] = mapped_column()
    #: When the task is next due to run (set on creation and on re-enqueue; NULL once terminal).
    run_at: Mapped[datetime | None] = mapped_column()
    started_at: Mapped[datetime | None] = mapped_column()
    completed_at: Mapped[datetime | None] = mapped_column()
    #: A worker's claim on running passes of this task, with its expiry.
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claim_expires_at: Mapped[datetime | None] = mapped_column()


class WorkflowStep(Timestamps, Base):
    """One step of a task, with retry bookkeeping, claim lease and results."""

    __tablename__ = "tasker_workflow_steps"
    __table_args__ = (
        UniqueConstraint("task_id", "name"),
        Index(None, "task_id", "unsatisfied_parents", "status"),
        # expired claims: the steps claimed (reserved or running) only
        Index(None, "in_process", "lease_expires_at", **partial(CLAIMED)),
        # statistics of the steps finished in a period (PostgreSQL: answered from the index alone)
        Index(None, "processed_at", postgresql_include=["status", "started_at", "named_step_id"], **partial(FINISHED)),
    )

    workflow_step_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasker_tasks.task_id", ondelete="CASCADE"))
    named_step_id: Mapped[int] = mapped_column(ForeignKey("tasker_named_steps.named_step_id"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(32), default="pending")
    retryable: Mapped[bool] = mapped_column(default=True)
    retry_limit: Mapped[int] = mapped_column(default=3)
    in_process: Mapped[bool] = mapped_column(default=False)
    processed: Mapped[bool] = mapped_column(default=False)
    processed_at: Mapped[datetime | None] = mapped_column()
    attempts: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[datetime | None] = mapped_column()
    last_attempted_at: Mapped[datetime | None] = mapped_column()
    backoff_request_seconds: Mapped[float | None] = mapped_column()
    next_retry_at: Mapped[datetime | None] = mapped_column()
    lease_expires_at: Mapped[datetime | None] = mapped_column()
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    inputs: Mapped[Any] = mapped_column(default=dict)
    results: Mapped[Any] = mapped_column(default=dict)
    skippable: Mapped[bool] = mapped_column(default=False)
    #: Parents not yet complete/resolved: readiness checks ``= 0`` instead of joining every parent.
    unsatisfied_parents: Mapped[int] = mapped_column(default=0)


class WorkflowStepEdge(Timestamps, Base):
    """A dependency: ``to_step`` (child) depends on ``from_step`` (parent); name ``provides``."""

    __tablename__ = "tasker_workflow_step_edges"
    __table_args__ = (UniqueConstraint("from_step_id", "to_step_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    from_step_id: Mapped[int] = mapped_column(ForeignKey("tasker_workflow_steps.workflow_step_id", ondelete="CASCADE"))
    to_step_id: Mapped[int] = mapped_column(
        ForeignKey("tasker_workflow_steps.workflow_step_id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(64), default="provides")


def _transition_table_args(table: str, entity_column: str) -> tuple[Any, ...]:
    """Constraints of a transition log: unique sort keys, one ``most_recent`` row, known states."""
    return (
        UniqueConstraint(entity_column, "sort_key"),
        Index(
            f"ix_{table}_most_recent",
            entity_column,
            unique=True,
            **partial("most_recent"),
        ),
        CheckConstraint(_STATE_CHECK, name="to_state"),
        CheckConstraint(_FROM_CHECK, name="from_state"),
    )


class TransitionColumns(Timestamps):
    """The columns every transition log row has."""

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    to_state: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(32))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    sort_key: Mapped[int] = mapped_column()
    most_recent: Mapped[bool] = mapped_column(default=True)


class TaskTransition(TransitionColumns, Base):
    """Audit log of task state changes; exactly one ``most_recent`` row per task."""

    __tablename__ = "tasker_task_transitions"
    __table_args__ = _transition_table_args(__tablename__, "task_id")

    task_id: Mapped[int] = mapped_column(ForeignKey("tasker_tasks.task_id", ondelete="CASCADE"))


class WorkflowStepTransition(TransitionColumns, Base):
    """Audit log of step state changes; exactly one ``most_recent`` row per step."""

    __tablename__ = "tasker_workflow_step_transitions"
    # statistics: the failed attempts of a period
    __table_args__ = (
        *_transition_table_args(__tablename__, "workflow_step_id"),
        Index(None, "to_state", "created_at", **partial(FAILED)),
    )

    workflow_step_id: Mapped[int] = mapped_column(
        ForeignKey("tasker_workflow_steps.workflow_step_id", ondelete="CASCADE")
    )


class AnnotationType(Timestamps, Base):
    """A kind of task annotation."""

    __tablename__ = "tasker_annotation_types"

    annotation_type_id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str | None] = mapped_column(String(255))


class TaskAnnotation(Timestamps, Base):
    """A JSON annotation attached to a task."""

    __tablename__ = "tasker_task_annotations"

    task_annotation_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasker_tasks.task_id", ondelete="CASCADE"), index=True)
    annotation_type_id: Mapped[int] = mapped_column(ForeignKey("tasker_annotation_types.annotation_type_id"))
    annotation: Mapped[dict[str, Any]] = mapped_column(default=dict)
