"""Failure injection for the examples: ``context["simulate"][<step name>]`` makes a step fail on purpose."""

from __future__ import annotations

from tasker import StepView, TaskView
from tasker.errors import PermanentError, RetryableError


def maybe_fail(task: TaskView, step: StepView) -> None:
    """Fail the first ``fail_times`` attempts (``error``: ``retryable``, the default, or ``permanent``)."""
    plan = (task.context.get("simulate") or {}).get(step.name)
    if not plan or step.attempts >= int(plan.get("fail_times", 1)):
        return
    if plan.get("error") == "permanent":
        raise PermanentError(f"{step.name}: simulated permanent failure", error_code="SIMULATED")
    raise RetryableError(f"{step.name}: simulated outage", retry_after=plan.get("retry_after"))
