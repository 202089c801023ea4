"""Step readiness and the task execution context (reference §1.13-§1.14), as set-based queries.

Readiness reads columns kept beside the transition log: ``status``, ``unsatisfied_parents`` (parents
not yet complete), ``next_retry_at`` (explicit or exponential backoff, fixed when the step failed)
and the claim flag ``in_process``. Finding ready steps is one indexed query whose cost depends on the
number of ready candidates, not on the size of the task; the execution context is one aggregate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    Table,
    and_,
    bindparam,
    case,
    func,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from tasker.db.prepared import Prepared
from tasker.models import WorkflowStep
from tasker.models.base import UTCDateTime, utcnow
from tasker.state.states import COMPLETED_STATES, ERROR, IN_PROGRESS, PENDING

S = WorkflowStep


def ready_conditions(
    now: datetime | BindParameter[datetime], status: str | None = None
) -> tuple[ColumnElement[bool], ...]:
    """SQL conditions of §1.13 ``ready_for_execution`` (with the port's fixes Q3/Q4); with ``status``, of the ready
    steps in that one status (``pending`` or ``error``)."""
    return (
        or_(S.status == PENDING, S.status == ERROR) if status is None else S.status == status,
        S.unsatisfied_parents == 0,
        S.processed.is_(False),
        S.in_process.is_(False),
        S.attempts < S.retry_limit,
        or_(S.retryable.is_(True), S.attempts == 0),
        or_(S.next_retry_at.is_(None), S.next_retry_at <= now),
    )


def _permanently_blocked() -> ColumnElement[bool]:
    return and_(S.status == ERROR, or_(S.attempts >= S.retry_limit, S.retryable.is_(False)))


#: Bind parameter ``b_now`` of the prebuilt readiness statements.
NOW: BindParameter[datetime] = bindparam("b_now", type_=UTCDateTime())
_STEPS = cast(Table, WorkflowStep.__table__)
#: What a claim and its step snapshot read of a ready step (not its bookkeeping columns).
SNAPSHOT_COLUMNS = (
    "workflow_step_id", "task_id", "name", "status", "attempts", "retry_limit", "retryable", "results", "inputs",
    "processed", "processed_at", "started_at", "last_attempted_at", "next_retry_at", "backoff_request_seconds",
    "in_process", "skippable",
)  # fmt: skip
#: The ready steps of a task, one status at a time: with ``task_id``, ``unsatisfied_parents`` and ``status`` all
#: equalities the index ``(task_id, unsatisfied_parents, status)`` is searched for candidates only on both
#: databases (PostgreSQL may apply ``status IN (...)`` or an ``OR`` as a filter, reading every finished step of the
#: task, whose counters are 0 too: O(N) per iteration on a chain).
_READY = Prepared(
    union_all(
        *(
            select(*(_STEPS.c[name] for name in SNAPSHOT_COLUMNS)).where(
                _STEPS.c.task_id == bindparam("b_task"), *ready_conditions(NOW, status)
            )
            for status in (PENDING, ERROR)
        )
    ).order_by("workflow_step_id")
)


def _connection(session: Session | Connection) -> Connection:
    return session.connection() if isinstance(session, Session) else session


def find_ready_steps(session: Session | Connection, task_id: int, now: datetime | None = None) -> list[Any]:
    """The task's steps ready to execute now (their :data:`SNAPSHOT_COLUMNS`), by ascending id."""
    return _READY.rows(_connection(session), {"b_task": task_id, "b_now": now or utcnow()})


@dataclass(frozen=True)
class ExecutionContext:
    """Aggregate view of a task's steps (§1.14)."""

    task_id: int
    total_steps: int
    pending_steps: int
    in_progress_steps: int
    completed_steps: int
    failed_steps: int
    ready_steps: int
    permanently_blocked_steps: int
    next_retry_at: datetime | None
    next_lease_expiry: datetime | None

    @property
    def execution_status(self) -> str:
        """``has_ready_steps`` / ``processing`` / ``blocked_by_failures`` / ``all_complete`` / waiting."""
        if self.ready_steps > 0:
            return "has_ready_steps"
        if self.in_progress_steps > 0:
            return "processing"
        if self.permanently_blocked_steps > 0:
            return "blocked_by_failures"
        if self.total_steps > 0 and self.completed_steps == self.total_steps:
            return "all_complete"
        return "waiting_for_dependencies"

    @property
    def recommended_action(self) -> str:
        """The action matching :attr:`execution_status`."""
        return {
            "has_ready_steps": "execute_ready_steps",
            "processing": "wait_for_completion",
            "blocked_by_failures": "handle_failures",
            "all_complete": "finalize_task",
        }.get(self.execution_status, "wait_for_dependencies")

    @property
    def health_status(self) -> str:
        """``healthy`` / ``recovering`` / ``blocked`` (§1.14)."""
        if self.failed_steps == 0:
            return "healthy"
        if self.ready_steps > 0:
            return "recovering"
        if self.permanently_blocked_steps > 0:
            return "blocked"
        return "recovering"

    @property
    def completion_percentage(self) -> float:
        """Completed steps over total, in percent, 2 decimals."""
        if self.total_steps == 0:
            return 0.0
        return round(self.completed_steps / self.total_steps * 100, 2)

    def as_payload(self) -> dict[str, Any]:
        """The fields finalization events carry."""
        return {
            "execution_status": self.execution_status,
            "health_status": self.health_status,
            "completion_percentage": self.completion_percentage,
            "total_steps": self.total_steps,
            "ready_steps": self.ready_steps,
            "failed_steps": self.failed_steps,
            "recommended_action": self.recommended_action,
        }


def _count_if(*conditions: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(case((and_(*conditions), 1), else_=0)), 0)


#: The execution context of task ``b_task`` at ``b_now``: one aggregate, built once.
_CONTEXT = Prepared(
    select(
        func.count(),
        _count_if(S.status == PENDING),
        _count_if(or_(S.status == IN_PROGRESS, S.in_process.is_(True))),  # running, or reserved for a worker
        _count_if(or_(*(S.status == state for state in COMPLETED_STATES))),
        _count_if(S.status == ERROR),
        _count_if(*ready_conditions(NOW)),
        _count_if(_permanently_blocked()),
        func.min(
            case(
                (and_(S.status == ERROR, S.attempts < S.retry_limit, S.retryable.is_(True)), S.next_retry_at),
                else_=None,
            )
        ),
        func.min(case((S.in_process.is_(True), S.lease_expires_at), else_=None)),
    ).where(S.task_id == bindparam("b_task"))
)


def execution_context(session: Session | Connection, task_id: int, now: datetime | None = None) -> ExecutionContext:
    """Compute the execution context of a task in one aggregate query."""
    (row,) = _CONTEXT.rows(_connection(session), {"b_task": task_id, "b_now": now or utcnow()})
    total, pending, in_progress, completed, failed, ready, blocked = (int(v) for v in row[:7])
    return ExecutionContext(
        task_id=task_id,
        total_steps=total,
        pending_steps=pending,
        in_progress_steps=in_progress,
        completed_steps=completed,
        failed_steps=failed,
        ready_steps=ready,
        permanently_blocked_steps=blocked,
        next_retry_at=_as_datetime(row[7]),
        next_lease_expiry=_as_datetime(row[8]),
    )


def _as_datetime(value: Any) -> datetime | None:
    """Aggregates of timestamp columns come back as naive text on SQLite."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
