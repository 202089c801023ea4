"""Operator actions on tasks (behind ``app.retry_task``, bypassed steps and the ``tasker tasks`` commands).

Retrying a failed task moves it ``error -> pending`` and each of its failed steps ``error -> pending`` with a
renewed attempt budget (``attempts`` back to 0, the permanent-error flag cleared back to the template's
``default_retryable``, no pending backoff), all in one transaction and each recorded as a transition whose
metadata carries the reason. The events ``step.retry_requested`` and ``task.retry_requested`` announce it
after commit, and the executor is asked to run the task now.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from tasker.errors import TaskNotRetryableError, ValidationError
from tasker.models import Task, WorkflowStep
from tasker.models.base import utcnow
from tasker.orchestration.payloads import step_payload, task_payload
from tasker.orchestration.readiness import execution_context
from tasker.orchestration.runtime import Runtime, TaskInfo, step_view
from tasker.state.machine import Transition, apply_transition
from tasker.state.states import ERROR, PENDING, RESOLVED_MANUALLY
from tasker.telemetry.propagation import with_new_task_span
from tasker.templates import TaskTemplate

logger = logging.getLogger(__name__)

#: Why a task was retried when the caller gives no reason (stored in the transitions' metadata).
DEFAULT_RETRY_REASON = "retry requested by operator"


#: Reason recorded on a step a request bypassed.
BYPASSED = "bypassed"


def check_bypass(template: TaskTemplate, names: list[str]) -> None:
    """Raise ValidationError unless every name is a step of ``template`` marked ``skippable``."""
    steps = template.steps_by_name
    unknown = [n for n in names if n not in steps]
    if unknown:
        raise ValidationError(
            f"bypass_steps names no step of {template.full_name}: {', '.join(unknown)}", field="bypass_steps"
        )
    fixed = [n for n in names if not steps[n].skippable]
    if fixed:
        raise ValidationError(
            f"bypass_steps names steps not marked skippable in {template.full_name}: {', '.join(fixed)}",
            field="bypass_steps",
        )


def bypass_steps(session: Session | Connection, step_ids: dict[str, int], names: list[str]) -> list[Transition]:
    """Resolve the named (new, pending) steps with reason ``bypassed``, in the creating transaction.

    Their dependents' unsatisfied-parent counts drop as for any completed parent, so they proceed.
    """
    written = []
    for name in dict.fromkeys(names):
        t = apply_transition(session, "step", step_ids[name], PENDING, RESOLVED_MANUALLY, {"reason": BYPASSED})
        if t is not None:
            written.append(t)
    return written


class TaskOperations:
    """State-changing operations an operator applies to a task."""

    def __init__(self, runtime: Runtime, load_task: Callable[[int], TaskInfo]) -> None:
        self.rt = runtime
        self.load_task = load_task

    def retry_task(self, task_id: int, reason: str = DEFAULT_RETRY_REASON) -> list[str]:
        """Put a task in ``error`` back to ``pending`` with its failed steps runnable; returns their names.

        Raises TaskNotFoundError for an unknown id and TaskNotRetryableError unless the task is in ``error``.
        """
        task = self.load_task(task_id)
        if task.status != ERROR:
            raise TaskNotRetryableError(task_id, task.status)
        now = utcnow()
        steps: list[tuple[Any, int, Transition]] = []
        with self.rt.db.transaction() as session:
            trace_context = with_new_task_span(task.trace_context)  # the new run gets its own task span
            written = apply_transition(
                session, "task", task_id, ERROR, PENDING, {"reason": reason},
                {"run_at": now, "completed_at": None, "trace_context": trace_context,
                 "claimed_by": None, "claim_expires_at": None},
                now=now,
            )  # fmt: skip
            if written is None:  # moved by someone else since we read it
                status = session.scalar(select(Task.status).where(Task.task_id == task_id))
                raise TaskNotRetryableError(task_id, str(status))
            failed = session.scalars(
                select(WorkflowStep)
                .where(WorkflowStep.task_id == task_id, WorkflowStep.status == ERROR)
                .order_by(WorkflowStep.workflow_step_id)
            ).all()
            for row in failed:
                previous = row.attempts
                step_t = apply_transition(
                    session, "step", row.workflow_step_id, ERROR, PENDING,
                    {"reason": reason, "previous_attempts": previous},
                    {"attempts": 0, "retryable": task.step_template(row.name).default_retryable,
                     "next_retry_at": None, "backoff_request_seconds": None, "in_process": False,
                     "claimed_by": None, "lease_expires_at": None},
                    now=now,
                )  # fmt: skip
                if step_t is not None:
                    steps.append((row, previous, step_t))
            ctx = execution_context(session, task_id, now)
        task.status, task.trace_context = PENDING, trace_context
        names = [row.name for row, _, _ in steps]
        logger.info("task %s (%s) retried: steps %s back to pending (%s)", task_id, task.name, names, reason)
        events = self.rt.events
        for row, previous, step_t in steps:
            view = step_view(row, task.parents(row.name))
            view.status, view.attempts = PENDING, 0
            events.emit(
                "step.retry_requested",
                lambda: step_payload(
                    task, view, "retry",  # noqa: B023 - called immediately
                    previous_attempts=previous, retry_reason=reason,  # noqa: B023
                    from_state=step_t.from_state, to_state=PENDING,  # noqa: B023
                ),
            )  # fmt: skip
        events.emit(
            "task.retry_requested",
            lambda: task_payload(
                task, PENDING, ctx, "retry", from_state=ERROR, to_state=PENDING, reason=reason, retried_steps=names
            ),
        )
        self.rt.schedule(task_id, 0.0)
        return names
