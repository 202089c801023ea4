"""Every exception tasker raises, in one tree.

::

    TaskerError
    ├── ConfigurationError          bad config value, missing optional extra
    ├── TemplateError               a task template is malformed (names file, step, field)
    │   └── TemplateNotFoundError   no template registered for (namespace, name, version)
    ├── ValidationError             a task request is invalid (names the field or key path)
    │   └── EncodingError           a value cannot be stored as JSON (names the key path)
    ├── TaskNotFoundError           no task with that id
    ├── StateError                  state machine refusals
    │   ├── InvalidStateTransition  edge not allowed from the current state
    │   │   └── TaskNotRetryableError  retry asked for a task that is not in 'error'
    │   └── GuardFailedError        edge allowed but its guard refused it
    ├── EventError                  unknown event name, bad custom event, bad subscriber
    ├── MetricsError                bad metric name or label set
    ├── StoreError                  the database failed (original chained as ``__cause__``)
    ├── GeneratorError              ``tasker generate`` refused its input (bad name, unknown event, file exists)
    └── StepError                   raised by step handlers to steer retries
        ├── RetryableError          retry later, optionally after ``retry_after`` seconds
        │   └── StepTimeoutError    the step ran past its ``timeout_seconds``
        └── PermanentError          never retry this step; the task fails
"""

from __future__ import annotations

from typing import Any


class TaskerError(Exception):
    """Base class of every error raised by tasker."""


class ConfigurationError(TaskerError):
    """A configuration value is invalid, or an optional extra is not installed."""


class TemplateError(TaskerError):
    """A task template is invalid; the message names the file, step and field."""

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        step: str | None = None,
        field: str | None = None,
    ) -> None:
        self.source = source
        self.step = step
        self.field = field
        parts = []
        if source:
            parts.append(source)
        if step:
            parts.append(f"step '{step}'")
        if field:
            parts.append(f"field '{field}'")
        prefix = ", ".join(parts) + ": " if parts else ""
        super().__init__(f"{prefix}{message}")
        self.reason = message


class TemplateNotFoundError(TemplateError):
    """No template is registered under the requested namespace, name and version."""

    def __init__(self, namespace: str, name: str, version: str) -> None:
        self.namespace = namespace
        self.name = name
        self.version = version
        super().__init__(f"no task template registered for namespace '{namespace}', name '{name}', version '{version}'")


class ValidationError(TaskerError):
    """A task request is invalid (context does not match the schema, bad field...)."""

    def __init__(self, message: str, *, field: str | None = None, errors: list[str] | None = None) -> None:
        self.field = field
        self.errors = errors or [message]
        super().__init__(message)


class EncodingError(ValidationError):
    """A value cannot be stored or published as JSON; ``path`` names where (``results.at``)."""

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message, field=path)
        self.path = path


class TaskNotFoundError(TaskerError):
    """No task exists with the given id."""

    def __init__(self, task_id: int) -> None:
        self.task_id = task_id
        super().__init__(f"no task with id {task_id}")


class StateError(TaskerError):
    """A state machine refused a transition."""


class InvalidStateTransition(StateError):
    """The transition is not an allowed edge from the current state."""

    def __init__(self, entity: str, entity_id: int | None, from_state: str, to_state: str) -> None:
        self.entity = entity
        self.entity_id = entity_id
        self.from_state = from_state
        self.to_state = to_state
        super().__init__(f"{entity} {entity_id}: cannot transition from '{from_state}' to '{to_state}'")


class TaskNotRetryableError(InvalidStateTransition):
    """``retry_task`` was asked for a task that is not in ``error`` (complete, cancelled, still running...)."""

    def __init__(self, task_id: int, status: str) -> None:
        super().__init__("task", task_id, status, "pending")
        self.status = status
        self.args = (f"task {task_id} is '{status}': only a task in 'error' can be retried",)


class GuardFailedError(StateError):
    """The transition is allowed, but its guard (dependencies, completion) refused it."""

    def __init__(self, entity: str, entity_id: int | None, to_state: str, reason: str) -> None:
        self.entity = entity
        self.entity_id = entity_id
        self.to_state = to_state
        super().__init__(f"{entity} {entity_id}: guard refused transition to '{to_state}': {reason}")


class EventError(TaskerError):
    """An event name is unknown or invalid, or a subscriber is malformed."""


class MetricsError(TaskerError):
    """A metric name or label set is invalid."""


class StoreError(TaskerError):
    """The database failed; the driver's exception is chained as ``__cause__``."""


class GeneratorError(TaskerError):
    """A generator refused its input (bad name, unknown event, a file that already exists...)."""


class StepError(TaskerError):
    """Base of the errors a step handler raises to steer retries."""

    def __init__(self, message: str, *, context: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.context = dict(context or {})


class RetryableError(StepError):
    """The step failed but may succeed later; ``retry_after`` seconds sets its backoff."""

    def __init__(
        self, message: str, retry_after: float | None = None, *, context: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, context=context)
        self.retry_after = retry_after


class StepTimeoutError(RetryableError):
    """The step's handler ran past its ``timeout_seconds``; its run is abandoned and the step retried."""

    def __init__(self, step: str, timeout: float) -> None:
        super().__init__(f"step {step} timed out after {timeout:g}s")
        self.step = step
        self.timeout = timeout


class PermanentError(StepError):
    """The step can never succeed: it is not retried and the task fails."""

    def __init__(self, message: str, error_code: str | None = None, *, context: dict[str, Any] | None = None) -> None:
        super().__init__(message, context=context)
        self.error_code = error_code


__all__ = [
    "ConfigurationError",
    "EncodingError",
    "EventError",
    "GeneratorError",
    "GuardFailedError",
    "InvalidStateTransition",
    "MetricsError",
    "PermanentError",
    "RetryableError",
    "StateError",
    "StepError",
    "StepTimeoutError",
    "StoreError",
    "TaskNotFoundError",
    "TaskNotRetryableError",
    "TaskerError",
    "TemplateError",
    "TemplateNotFoundError",
    "ValidationError",
]
