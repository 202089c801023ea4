"""Standardized event payloads (reference §6.4), built from the engine's own state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tasker.models.base import utcnow
from tasker.orchestration.readiness import ExecutionContext
from tasker.orchestration.runtime import TaskInfo
from tasker.views import StepView


def iso(value: datetime | None) -> str | None:
    """ISO-8601 text of a timestamp, or None."""
    return value.isoformat() if value is not None else None


def step_payload(task: TaskInfo, step: StepView, event_type: str, **extra: Any) -> dict[str, Any]:
    """The standardized payload of every step event, plus ``extra``."""
    payload: dict[str, Any] = {
        "task_id": task.task_id,
        "step_id": step.step_id,
        "step_name": step.name,
        "task_name": task.name,
        "namespace": task.namespace,
        "version": task.version,
        "attempt_number": step.attempts,
        "retry_limit": step.retry_limit,
        "event_type": event_type,
        "started_at": iso(step.started_at),
        "completed_at": iso(step.processed_at),
    }
    if task.trace_context:
        payload["trace_context"] = task.trace_context
    payload.update(extra)
    return payload


def task_payload(
    task: TaskInfo, status: str, counts: ExecutionContext | None, event_type: str, **extra: Any
) -> dict[str, Any]:
    """The standardized payload of every task event, plus ``extra``."""
    now = utcnow()
    total = counts.total_steps if counts else len(task.template.step_templates)
    completed = counts.completed_steps if counts else 0
    failed = counts.failed_steps if counts else 0
    done = counts is not None and total > 0 and completed == total
    payload: dict[str, Any] = {
        "task_id": task.task_id,
        "task_name": task.name,
        "namespace": task.namespace,
        "version": task.version,
        "event_type": event_type,
        "status": status,
        "total_steps": total,
        "completed_steps": completed,
        "failed_steps": failed,
        "pending_steps": total - completed - failed,
        "completion_percentage": counts.completion_percentage if counts else 0.0,
        "started_at": iso(task.started_at or task.created_at),
        "completed_at": iso(now) if done else None,
        "total_execution_duration": round((now - task.created_at).total_seconds(), 3) if done else None,
        "current_execution_duration": None if done else round((now - task.created_at).total_seconds(), 3),
    }
    if task.trace_context:
        payload["trace_context"] = task.trace_context
    payload.update(extra)
    return payload
