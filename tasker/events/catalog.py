"""The event catalog: every event name tasker publishes, who fires it and the exact payload it carries.

This module is the single source of truth for event names and payload fields (reference §6.1, §6.4): the
engine builds payloads to match these specs, the CLI lists them, ``docs/events.md`` is rendered from them
(``python -m tasker.events.catalog > docs/events.md``, or ``python -m tasker.events``) and custom events are
validated here.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import sys
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from tasker.errors import EventError

logger = logging.getLogger(__name__)

#: The fixed vocabulary of payload field types, mapped to their JSON-schema fragment.
FIELD_TYPES: Final[dict[str, dict[str, Any]]] = {
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "object": {"type": "object"},
    "array": {"type": "array"},
    "any": {},
    "string|null": {"type": ["string", "null"]},
    "number|null": {"type": ["number", "null"]},
}

#: First name segments custom events may not use.
RESERVED_NAMESPACES: Final[frozenset[str]] = frozenset({"task", "step", "workflow", "observability", "test"})

#: Category given to every custom event.
CUSTOM_CATEGORY: Final = "custom"

#: Description of a custom event registered without one.
DEFAULT_CUSTOM_DESCRIPTION: Final = "Custom event"

#: Fixed timestamp used in example payloads so generated docs are reproducible.
EXAMPLE_TIMESTAMP: Final = "2024-01-01T12:00:00.000+00:00"

_SEGMENT = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class FieldSpec:
    """One payload field: name, type (one of :data:`FIELD_TYPES`), whether it is always present, meaning."""

    name: str
    type: str
    required: bool = True
    description: str = ""

    def __post_init__(self) -> None:
        if self.type not in FIELD_TYPES:
            known = ", ".join(FIELD_TYPES)
            raise EventError(f"Field '{self.name}' has unknown type '{self.type}' (known: {known})")

    def json_schema(self) -> dict[str, Any]:
        """The JSON-schema fragment describing this field's value."""
        schema = copy.deepcopy(FIELD_TYPES[self.type])
        if self.description:
            schema["description"] = self.description
        return schema

    def example(self) -> Any:
        """A sample value: ids 42, counts 5, numbers 2.34, timestamps ISO, strings ``example_<name>``."""
        name = self.name
        if self.type == "integer":
            return 42 if name == "id" or name.endswith("_id") else 5
        if self.type in ("number", "number|null"):
            return 2.34
        if self.type == "boolean":
            return True
        if self.type == "object":
            return {"key": "value"}
        if self.type == "array":
            return [42, 43] if name.endswith("_ids") else ["item1", "item2"]
        if self.type == "any":
            return {"key": "value"}
        if name == "timestamp" or name.endswith("_at"):
            return EXAMPLE_TIMESTAMP
        return f"example_{name}"


@dataclass(frozen=True)
class EventSpec:
    """One event: name, category, one-sentence description, the components firing it, its payload fields."""

    name: str
    category: str
    description: str
    fired_by: tuple[str, ...] = ()
    fields: tuple[FieldSpec, ...] = ()

    @property
    def field_names(self) -> tuple[str, ...]:
        """Names of all payload fields, in catalog order."""
        return tuple(f.name for f in self.fields)

    @property
    def required_fields(self) -> tuple[str, ...]:
        """Names of the fields every payload of this event carries."""
        return tuple(f.name for f in self.fields if f.required)

    def json_schema(self) -> dict[str, Any]:
        """A JSON schema of the payload; extra keys are allowed (``additionalProperties: true``)."""
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": self.name,
            "description": self.description,
            "type": "object",
            "properties": {f.name: f.json_schema() for f in self.fields},
            "required": list(self.required_fields),
            "additionalProperties": True,
        }

    def example_payload(self) -> dict[str, Any]:
        """A payload with every field (required and optional) set to a representative value."""
        return {f.name: f.example() for f in self.fields}

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable description of the event (for the CLI and APIs)."""
        return {
            "name": self.name,
            "category": self.category,
            "description": self.description,
            "fired_by": list(self.fired_by),
            "payload_schema": self.json_schema(),
            "example_payload": self.example_payload(),
        }


# ------------------------------------------------------------------------------------------------------------
# System events
# ------------------------------------------------------------------------------------------------------------

_FIELD_DOCS: Final[dict[str, str]] = {
    "task_id": "Id of the task.",
    "step_id": "Id of the workflow step.",
    "step_name": "Name of the step in its task template.",
    "task_name": "Name of the task template.",
    "namespace": "Namespace of the task template.",
    "version": "Version of the task template.",
    "attempt_number": "The step's attempt count (the current attempt while it runs).",
    "retry_limit": "Maximum total attempts allowed for the step.",
    "event_type": "Kind of payload (started, completed, failed, retry, backoff, ...).",
    "timestamp": "When the event was published (ISO-8601, UTC).",
    "trace_context": "W3C trace context of the task's trace (traceparent, tracestate).",
    "status": "Current status of the task.",
    "total_steps": "Number of steps in the task.",
    "completed_steps": "Steps that are complete or resolved manually.",
    "failed_steps": "Steps in error.",
    "pending_steps": "Steps neither complete nor failed.",
    "completion_percentage": "Share of complete steps, 0-100.",
    "total_execution_duration": "Seconds from creation to the last step's completion, once all are complete.",
    "current_execution_duration": "Seconds since task creation, while not all steps are complete.",
    "task_context": "The task's context (its input).",
    "from_state": "State before the transition.",
    "to_state": "State after the transition.",
    "transition_event": "Name of the event the transition fires once it is written.",
    "reason": "Why this happened.",
    "step_dependencies": "Names of the steps this step depends on.",
    "step_inputs": "The step's inputs.",
    "step_results": "Results the handler returned (or recorded with a failure).",
    "execution_duration": "Seconds the attempt took.",
    "error_message": "Message of the error.",
    "exception_class": "Class name of the exception raised.",
    "backtrace": "Formatted traceback of the exception (most recent frames).",
    "retryable": "Whether the step may be retried after this failure.",
    "error_code": "Error code carried by a PermanentError, if any.",
    "next_retry_at": "When the step becomes eligible for a retry (ISO-8601), if it will be retried.",
    "previous_attempts": "Attempts made before this retry.",
    "retry_reason": "Why the step is retried.",
    "error_steps": "Names of the steps in error.",
    "step_ids": "Ids of the steps found ready.",
    "step_names": "Names of the steps found ready.",
    "step_count": "Number of steps concerned.",
    "processing_mode": "How the steps run: concurrent or sequential.",
    "processed_count": "Steps processed in this pass.",
    "successful_count": "Steps that completed in this pass.",
    "processed_steps_count": "Steps processed before finalization.",
    "execution_status": "Execution status (all_complete, has_ready_steps, blocked_by_failures, ...).",
    "health_status": "Health of the task (healthy, recovering, blocked, ...).",
    "ready_steps": "Steps ready to run now.",
    "recommended_action": "Recommended next step (execute_ready_steps, wait_for_dependencies, ...).",
    "final_status": "Status of the task after finalization.",
    "delay_seconds": "Seconds until the task is run again.",
    "scheduled_for": "When the task will run again (ISO-8601).",
    "error": "Message of the error that prevented re-enqueueing.",
    "current_status": "Status of the task when it was re-enqueued.",
    "queue": "Queue the task was sent to, when an executor uses queues.",
    "backoff_seconds": "Seconds before the step may be retried.",
    "backoff_type": "Where the backoff came from: server_requested or exponential.",
    "retry_after": "Backoff the server or handler asked for (seconds), if any.",
}

_STEP_TIME_DOCS: Final[dict[str, str]] = {
    "started_at": "When the step's last attempt started (ISO-8601), if it has.",
    "completed_at": "When the step completed (ISO-8601), if it has.",
}
_TASK_TIME_DOCS: Final[dict[str, str]] = {
    "started_at": "When the task was created (ISO-8601).",
    "completed_at": "When the task's last step completed (ISO-8601), once all steps are complete.",
}


def _field(name: str, type_: str, required: bool = True, description: str | None = None) -> FieldSpec:
    return FieldSpec(name, type_, required, description or _FIELD_DOCS[name])


def _fields(*specs: tuple[str, str] | tuple[str, str, bool]) -> tuple[FieldSpec, ...]:
    return tuple(_field(*spec) for spec in specs)


_STEP_BASE: Final = (
    *_fields(
        ("task_id", "integer"),
        ("step_id", "integer"),
        ("step_name", "string"),
        ("task_name", "string"),
        ("namespace", "string"),
        ("version", "string"),
        ("attempt_number", "integer"),
        ("retry_limit", "integer"),
        ("event_type", "string"),
        ("timestamp", "string"),
    ),
    _field("started_at", "string|null", True, _STEP_TIME_DOCS["started_at"]),
    _field("completed_at", "string|null", True, _STEP_TIME_DOCS["completed_at"]),
    _field("trace_context", "object", False),
)

_TASK_BASE: Final = (
    *_fields(
        ("task_id", "integer"),
        ("task_name", "string"),
        ("namespace", "string"),
        ("version", "string"),
        ("event_type", "string"),
        ("timestamp", "string"),
        ("status", "string"),
        ("total_steps", "integer"),
        ("completed_steps", "integer"),
        ("failed_steps", "integer"),
        ("pending_steps", "integer"),
        ("completion_percentage", "number"),
    ),
    _field("started_at", "string|null", True, _TASK_TIME_DOCS["started_at"]),
    _field("completed_at", "string|null", True, _TASK_TIME_DOCS["completed_at"]),
    *_fields(("total_execution_duration", "number|null"), ("current_execution_duration", "number|null")),
    _field("trace_context", "object", False),
)

_TRANSITION: Final = _fields(("from_state", "string"), ("to_state", "string"))
_REASON: Final = _fields(("reason", "string", False))

_FINALIZATION: Final = _fields(
    ("task_id", "integer"),
    ("processed_steps_count", "integer"),
    ("execution_status", "string|null"),
    ("health_status", "string|null"),
    ("completion_percentage", "number"),
    ("total_steps", "integer"),
    ("ready_steps", "integer"),
    ("failed_steps", "integer"),
    ("recommended_action", "string|null"),
    ("timestamp", "string"),
)


def _spec(name: str, description: str, fired_by: tuple[str, ...], *fields: FieldSpec) -> EventSpec:
    return EventSpec(name, name.split(".", 1)[0], description, fired_by, tuple(fields))


SYSTEM_EVENTS: Final[tuple[EventSpec, ...]] = (
    # -- task ------------------------------------------------------------------------------------------------
    _spec(
        "task.initialize_requested",
        "A task was created, or put back to pending to wait for its next pass.",
        ("create_task", "TaskFinalizer"),
        *_TASK_BASE,
        _field("task_context", "object"),
        *_REASON,
        _field("from_state", "string|null", False),
        _field("to_state", "string|null", False),
    ),
    _spec(
        "task.start_requested",
        "A pending task moved to in_progress to run its ready steps.",
        ("run_task", "TaskFinalizer"),
        *_TASK_BASE,
        _field("task_context", "object"),
        *_TRANSITION,
    ),
    _spec(
        "task.completed",
        "Every step of the task is complete and the task is complete.",
        ("TaskFinalizer",),
        *_TASK_BASE,
        *_TRANSITION,
    ),
    _spec(
        "task.failed",
        "The task is in error because a step failed permanently or exhausted its retries.",
        ("TaskFinalizer",),
        *_TASK_BASE,
        _field("error_message", "string"),
        _field("error_steps", "array"),
        *_TRANSITION,
    ),
    _spec(
        "task.retry_requested",
        "A task in error was put back to pending to run again.",
        ("TaskFinalizer", "state machine"),
        *_TASK_BASE,
        *_TRANSITION,
        *_REASON,
    ),
    _spec(
        "task.cancelled",
        "The task was cancelled.",
        ("state machine",),
        *_TASK_BASE,
        *_TRANSITION,
        *_REASON,
    ),
    _spec(
        "task.resolved_manually",
        "A task in error was marked as resolved by an operator.",
        ("state machine",),
        *_TASK_BASE,
        *_TRANSITION,
        *_REASON,
    ),
    _spec(
        "task.before_transition",
        "A task transition is about to be written.",
        ("state machine",),
        _field("task_id", "integer"),
        _field("task_name", "string"),
        _field("from_state", "string|null"),
        _field("to_state", "string"),
        _field("transition_event", "string"),
        _field("timestamp", "string"),
    ),
    # -- step ------------------------------------------------------------------------------------------------
    _spec(
        "step.initialize_requested",
        "A step was created with its task, in state pending.",
        ("create_task",),
        *_STEP_BASE,
    ),
    _spec(
        "step.execution_requested",
        "A ready step moved to in_progress and is about to be attempted.",
        ("StepExecutor",),
        *_STEP_BASE,
        _field("step_dependencies", "array"),
        _field("step_inputs", "any", False),
    ),
    _spec(
        "step.before_handle",
        "The step handler's process() is about to be called.",
        ("StepExecutor",),
        *_STEP_BASE,
    ),
    _spec(
        "step.completed",
        "A step attempt succeeded and the step is complete.",
        ("StepExecutor",),
        *_STEP_BASE,
        _field("execution_duration", "number"),
        _field("step_results", "any", False),
        *_TRANSITION,
    ),
    _spec(
        "step.failed",
        "A step attempt raised and the step is in error.",
        ("StepExecutor",),
        *_STEP_BASE,
        _field("execution_duration", "number"),
        _field("error_message", "string"),
        _field("exception_class", "string"),
        _field("backtrace", "string"),
        _field("retryable", "boolean"),
        *_TRANSITION,
        _field("step_results", "any", False),
        _field("error_code", "string|null", False),
        _field("next_retry_at", "string|null", False),
    ),
    _spec(
        "step.retry_requested",
        "A failed step whose backoff has passed was put back to pending for another attempt.",
        ("StepExecutor",),
        *_STEP_BASE,
        _field("previous_attempts", "integer"),
        _field("retry_reason", "string"),
        *_TRANSITION,
    ),
    _spec(
        "step.cancelled",
        "The step was cancelled.",
        ("state machine",),
        *_STEP_BASE,
        *_TRANSITION,
        *_REASON,
    ),
    _spec(
        "step.resolved_manually",
        "A step was marked as resolved by an operator and counts as complete.",
        ("state machine",),
        *_STEP_BASE,
        *_TRANSITION,
        *_REASON,
    ),
    _spec(
        "step.before_transition",
        "A step transition is about to be written.",
        ("state machine",),
        *_fields(
            ("task_id", "integer"),
            ("step_id", "integer"),
            ("step_name", "string"),
            ("from_state", "string"),
            ("to_state", "string"),
            ("transition_event", "string"),
            ("timestamp", "string"),
        ),
    ),
    # -- workflow --------------------------------------------------------------------------------------------
    _spec(
        "workflow.viable_steps_discovered",
        "An orchestration pass found steps ready to run.",
        ("WorkflowCoordinator",),
        *_fields(
            ("task_id", "integer"),
            ("step_ids", "array"),
            ("step_names", "array"),
            ("step_count", "integer"),
            ("processing_mode", "string"),
            ("timestamp", "string"),
        ),
    ),
    _spec(
        "workflow.no_viable_steps",
        "An orchestration pass found no step ready to run.",
        ("WorkflowCoordinator",),
        *_fields(("task_id", "integer"), ("reason", "string"), ("timestamp", "string")),
    ),
    _spec(
        "workflow.steps_execution_started",
        "A batch of ready steps is about to be executed.",
        ("StepExecutor",),
        *_fields(
            ("task_id", "integer"),
            ("task_name", "string"),
            ("step_count", "integer"),
            ("processing_mode", "string"),
            ("timestamp", "string"),
        ),
    ),
    _spec(
        "workflow.steps_execution_completed",
        "A batch of steps finished executing.",
        ("StepExecutor",),
        *_fields(
            ("task_id", "integer"),
            ("task_name", "string"),
            ("processed_count", "integer"),
            ("successful_count", "integer"),
            ("timestamp", "string"),
        ),
    ),
    _spec(
        "workflow.task_finalization_started",
        "The finalizer is about to decide the task's state after a pass.",
        ("TaskFinalizer",),
        *_FINALIZATION,
    ),
    _spec(
        "workflow.task_finalization_completed",
        "The finalizer decided the task's state after a pass.",
        ("TaskFinalizer",),
        *_FINALIZATION,
        _field("final_status", "string"),
    ),
    _spec(
        "workflow.task_reenqueue_started",
        "Re-enqueueing a task for a later pass has started.",
        ("TaskReenqueuer",),
        *_fields(
            ("task_id", "integer"),
            ("task_name", "string"),
            ("reason", "string"),
            ("current_status", "string"),
            ("timestamp", "string"),
        ),
    ),
    _spec(
        "workflow.task_reenqueue_requested",
        "A task was re-enqueued to run again immediately.",
        ("TaskReenqueuer",),
        *_fields(("task_id", "integer"), ("task_name", "string"), ("reason", "string"), ("timestamp", "string")),
    ),
    _spec(
        "workflow.task_reenqueue_delayed",
        "A task was re-enqueued to run again after a delay.",
        ("TaskReenqueuer",),
        *_fields(
            ("task_id", "integer"),
            ("task_name", "string"),
            ("reason", "string"),
            ("delay_seconds", "number"),
            ("scheduled_for", "string"),
            ("timestamp", "string"),
        ),
    ),
    _spec(
        "workflow.task_reenqueue_failed",
        "Re-enqueueing a task failed.",
        ("TaskReenqueuer",),
        *_fields(
            ("task_id", "integer"),
            ("task_name", "string"),
            ("reason", "string"),
            ("error", "string"),
            ("timestamp", "string"),
        ),
    ),
    # -- observability ---------------------------------------------------------------------------------------
    _spec(
        "observability.task.enqueue",
        "A task was created and handed to the executor.",
        ("create_task",),
        *_fields(
            ("task_id", "integer"),
            ("task_name", "string"),
            ("namespace", "string"),
            ("version", "string"),
            ("task_context", "object"),
            ("timestamp", "string"),
            ("trace_context", "object", False),
            ("queue", "string", False),
        ),
    ),
    _spec(
        "observability.step.backoff",
        "A failed step must wait before its next attempt.",
        ("StepExecutor",),
        *_STEP_BASE,
        _field("backoff_seconds", "number"),
        _field("backoff_type", "string"),
        _field("retry_after", "number|null", False),
    ),
    _spec(
        "observability.step.max_retries_reached",
        "A failed step has used all its attempts and will not be retried.",
        ("StepExecutor",),
        *_STEP_BASE,
        _field("error_message", "string"),
    ),
)

_SYSTEM_BY_NAME: Final[dict[str, EventSpec]] = {spec.name: spec for spec in SYSTEM_EVENTS}
_SYSTEM_CATEGORIES: Final[tuple[str, ...]] = tuple(dict.fromkeys(spec.category for spec in SYSTEM_EVENTS))


# ------------------------------------------------------------------------------------------------------------
# The catalog of one app
# ------------------------------------------------------------------------------------------------------------


class EventCatalog:
    """The events one app knows: the system events plus the custom events registered on this instance."""

    def __init__(self) -> None:
        self._custom: dict[str, EventSpec] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> EventSpec | None:
        """The spec of ``name``, or None when no such event is known."""
        return _SYSTEM_BY_NAME.get(name) or self._custom.get(name)

    def spec(self, name: str) -> EventSpec:
        """The spec of ``name``; an unknown name raises :class:`EventError`."""
        spec = self.get(name)
        if spec is None:
            raise EventError(f"Unknown event '{name}'")
        return spec

    def __contains__(self, name: object) -> bool:
        return name in _SYSTEM_BY_NAME or name in self._custom

    def __iter__(self) -> Iterator[EventSpec]:
        yield from SYSTEM_EVENTS
        yield from list(self._custom.values())

    def __len__(self) -> int:
        return len(_SYSTEM_BY_NAME) + len(self._custom)

    def names(self, category: str | None = None) -> list[str]:
        """Event names in catalog order (system events first), optionally of one category only."""
        return [spec.name for spec in self if category is None or spec.category == category]

    @property
    def categories(self) -> tuple[str, ...]:
        """Categories in order: task, step, workflow, observability, then custom if any is registered."""
        return (*_SYSTEM_CATEGORIES, CUSTOM_CATEGORY) if self._custom else _SYSTEM_CATEGORIES

    def is_system(self, name: str) -> bool:
        """Whether ``name`` is one of tasker's own events."""
        return name in _SYSTEM_BY_NAME

    @staticmethod
    def check_custom_name(name: object) -> str:
        """Return ``name`` if it is a valid custom event name, else raise :class:`EventError` saying why."""
        if not isinstance(name, str):
            raise EventError(f"Event name must be a string, got {type(name).__name__}")
        segments = name.split(".")
        if len(segments) < 2 or not all(segments):
            raise EventError("Custom event name must contain a namespace (e.g., 'order.fulfilled')")
        if name in _SYSTEM_BY_NAME:
            raise EventError(f"Event name '{name}' conflicts with system event")
        namespace = segments[0].lower()
        if namespace in RESERVED_NAMESPACES:
            raise EventError(f"Namespace '{namespace}' is reserved for system events")
        if not all(_SEGMENT.match(segment) for segment in segments):
            raise EventError(
                f"Custom event name '{name}' may only contain letters, digits, '_' and '-' between its dots"
            )
        return name

    def register_custom(
        self,
        name: str,
        description: str = DEFAULT_CUSTOM_DESCRIPTION,
        fired_by: Iterable[str] = (),
        fields: Iterable[FieldSpec] = (),
    ) -> EventSpec:
        """Register a custom event named ``namespace.event`` and return its spec.

        Registering a name again is not an error: ``fired_by`` lists are merged, and a description or fields
        given now fill in what the first registration left at its defaults (the first ones otherwise win).
        """
        self.check_custom_name(name)
        fired = (fired_by,) if isinstance(fired_by, str) else tuple(fired_by)
        spec = EventSpec(name, CUSTOM_CATEGORY, description, fired, tuple(fields))
        with self._lock:
            existing = self._custom.get(name)
            if existing is not None:
                if existing.description != DEFAULT_CUSTOM_DESCRIPTION and description not in (
                    DEFAULT_CUSTOM_DESCRIPTION,
                    existing.description,
                ):
                    logger.debug("Custom event '%s' registered again with another description; kept", name)
                spec = EventSpec(
                    name,
                    CUSTOM_CATEGORY,
                    description if existing.description == DEFAULT_CUSTOM_DESCRIPTION else existing.description,
                    tuple(dict.fromkeys((*existing.fired_by, *fired))),
                    existing.fields or spec.fields,
                )
                if spec == existing:
                    return existing
            self._custom[name] = spec
        return spec


# ------------------------------------------------------------------------------------------------------------
# Markdown rendering (docs/events.md)
# ------------------------------------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_catalog_markdown(catalog: EventCatalog) -> str:
    """Render the catalog as the Markdown page ``docs/events.md``."""
    out: list[str] = [
        "# Event catalog",
        "",
        "<!-- Generated by `python -m tasker.events > docs/events.md`; do not edit by hand. -->",
        "",
        "Every event tasker publishes, who fires it and the payload it carries. Every payload also carries",
        "`timestamp` (added by the bus when missing); payloads may carry extra keys, and sensitive keys are",
        "masked before delivery. Required fields are always present (possibly `null` when their type",
        "allows it).",
        "",
    ]
    for category in catalog.categories:
        names = catalog.names(category)
        out.append(f"- **{category}**: " + ", ".join(f"[`{n}`](#{n.replace('.', '')})" for n in names))
    out.append("")
    for category in catalog.categories:
        out += [f"## {category.capitalize()} events", ""]
        for name in catalog.names(category):
            spec = catalog.spec(name)
            out += [
                f"### {spec.name}",
                "",
                spec.description,
                "",
                "Fired by: " + (", ".join(spec.fired_by) if spec.fired_by else "-"),
                "",
            ]
            if spec.fields:
                out += ["| field | type | required | description |", "|---|---|---|---|"]
                for f in spec.fields:
                    required = "yes" if f.required else "no"
                    out.append(f"| `{f.name}` | {_cell(f.type)} | {required} | {_cell(f.description)} |")
                out += [
                    "",
                    "Example payload:",
                    "",
                    "```json",
                    json.dumps(spec.example_payload(), indent=2),
                    "```",
                    "",
                ]
    return "\n".join(out).rstrip("\n") + "\n"


def main() -> None:
    """Write the system catalog as Markdown to standard output."""
    sys.stdout.write(render_catalog_markdown(EventCatalog()))


if __name__ == "__main__":
    main()
