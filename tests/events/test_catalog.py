"""The event catalog: the exact payload contract, schemas, example payloads and custom events."""

from __future__ import annotations

import re
from datetime import datetime

import jsonschema
import pytest

from tasker.config import DEFAULT_FILTER_PARAMETERS
from tasker.errors import EventError
from tasker.events import EventCatalog, EventSpec, FieldSpec, Masker
from tasker.events.catalog import FIELD_TYPES, SYSTEM_EVENTS
from tasker.state import STEP_TRANSITION_EVENTS, TASK_TRANSITION_EVENTS

STEP_BASE = {
    "task_id": "integer",
    "step_id": "integer",
    "step_name": "string",
    "task_name": "string",
    "namespace": "string",
    "version": "string",
    "attempt_number": "integer",
    "retry_limit": "integer",
    "event_type": "string",
    "timestamp": "string",
    "started_at": "string|null",
    "completed_at": "string|null",
}
TASK_BASE = {
    "task_id": "integer",
    "task_name": "string",
    "namespace": "string",
    "version": "string",
    "event_type": "string",
    "timestamp": "string",
    "status": "string",
    "total_steps": "integer",
    "completed_steps": "integer",
    "failed_steps": "integer",
    "pending_steps": "integer",
    "completion_percentage": "number",
    "started_at": "string|null",
    "completed_at": "string|null",
    "total_execution_duration": "number|null",
    "current_execution_duration": "number|null",
}
TRACE = {"trace_context": "object"}
TRANSITION = {"from_state": "string", "to_state": "string"}
REASON = {"reason": "string"}
FINALIZATION = {
    "task_id": "integer",
    "processed_steps_count": "integer",
    "execution_status": "string|null",
    "health_status": "string|null",
    "completion_percentage": "number",
    "total_steps": "integer",
    "ready_steps": "integer",
    "failed_steps": "integer",
    "recommended_action": "string|null",
    "timestamp": "string",
}

#: name -> (required fields with types, optional fields with types): the contract the engine builds against.
CONTRACT: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    "step.initialize_requested": (STEP_BASE, TRACE),
    "step.execution_requested": ({**STEP_BASE, "step_dependencies": "array"}, {**TRACE, "step_inputs": "any"}),
    "step.before_handle": (STEP_BASE, TRACE),
    "step.completed": (
        {**STEP_BASE, "execution_duration": "number", **TRANSITION},
        {**TRACE, "step_results": "any"},
    ),
    "step.failed": (
        {
            **STEP_BASE,
            "execution_duration": "number",
            "error_message": "string",
            "exception_class": "string",
            "backtrace": "string",
            "retryable": "boolean",
            **TRANSITION,
        },
        {**TRACE, "step_results": "any", "error_code": "string|null", "next_retry_at": "string|null"},
    ),
    "step.retry_requested": (
        {**STEP_BASE, "previous_attempts": "integer", "retry_reason": "string", **TRANSITION},
        TRACE,
    ),
    "step.cancelled": ({**STEP_BASE, **TRANSITION}, {**TRACE, **REASON}),
    "step.resolved_manually": ({**STEP_BASE, **TRANSITION}, {**TRACE, **REASON}),
    "step.before_transition": (
        {
            "task_id": "integer",
            "step_id": "integer",
            "step_name": "string",
            **TRANSITION,
            "transition_event": "string",
            "timestamp": "string",
        },
        {},
    ),
    "task.initialize_requested": (
        {**TASK_BASE, "task_context": "object"},
        {**TRACE, **REASON, "from_state": "string|null", "to_state": "string|null"},
    ),
    "task.start_requested": ({**TASK_BASE, "task_context": "object", **TRANSITION}, TRACE),
    "task.completed": ({**TASK_BASE, **TRANSITION}, TRACE),
    "task.failed": ({**TASK_BASE, "error_message": "string", "error_steps": "array", **TRANSITION}, TRACE),
    "task.retry_requested": ({**TASK_BASE, **TRANSITION}, {**TRACE, **REASON}),
    "task.cancelled": ({**TASK_BASE, **TRANSITION}, {**TRACE, **REASON}),
    "task.resolved_manually": ({**TASK_BASE, **TRANSITION}, {**TRACE, **REASON}),
    "task.before_transition": (
        {
            "task_id": "integer",
            "task_name": "string",
            "from_state": "string|null",
            "to_state": "string",
            "transition_event": "string",
            "timestamp": "string",
        },
        {},
    ),
    "workflow.viable_steps_discovered": (
        {
            "task_id": "integer",
            "step_ids": "array",
            "step_names": "array",
            "step_count": "integer",
            "processing_mode": "string",
            "timestamp": "string",
        },
        {},
    ),
    "workflow.no_viable_steps": ({"task_id": "integer", "reason": "string", "timestamp": "string"}, {}),
    "workflow.steps_execution_started": (
        {
            "task_id": "integer",
            "task_name": "string",
            "step_count": "integer",
            "processing_mode": "string",
            "timestamp": "string",
        },
        {},
    ),
    "workflow.steps_execution_completed": (
        {
            "task_id": "integer",
            "task_name": "string",
            "processed_count": "integer",
            "successful_count": "integer",
            "timestamp": "string",
        },
        {},
    ),
    "workflow.task_finalization_started": (FINALIZATION, {}),
    "workflow.task_finalization_completed": ({**FINALIZATION, "final_status": "string"}, {}),
    "workflow.task_reenqueue_requested": (
        {"task_id": "integer", "task_name": "string", "reason": "string", "timestamp": "string"},
        {},
    ),
    "workflow.task_reenqueue_delayed": (
        {
            "task_id": "integer",
            "task_name": "string",
            "reason": "string",
            "delay_seconds": "number",
            "scheduled_for": "string",
            "timestamp": "string",
        },
        {},
    ),
    "workflow.task_reenqueue_failed": (
        {
            "task_id": "integer",
            "task_name": "string",
            "reason": "string",
            "error": "string",
            "timestamp": "string",
        },
        {},
    ),
    "workflow.task_reenqueue_started": (
        {
            "task_id": "integer",
            "task_name": "string",
            "reason": "string",
            "current_status": "string",
            "timestamp": "string",
        },
        {},
    ),
    "observability.task.enqueue": (
        {
            "task_id": "integer",
            "task_name": "string",
            "namespace": "string",
            "version": "string",
            "task_context": "object",
            "timestamp": "string",
        },
        {**TRACE, "queue": "string"},
    ),
    "observability.step.backoff": (
        {**STEP_BASE, "backoff_seconds": "number", "backoff_type": "string"},
        {**TRACE, "retry_after": "number|null"},
    ),
    "observability.step.max_retries_reached": ({**STEP_BASE, "error_message": "string"}, TRACE),
}


@pytest.fixture
def catalog() -> EventCatalog:
    return EventCatalog()


def test_catalog_lists_exactly_the_contracted_events(catalog: EventCatalog) -> None:
    assert sorted(catalog.names()) == sorted(CONTRACT)
    assert len(catalog) == len(CONTRACT)
    assert catalog.categories == ("task", "step", "workflow", "observability")


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_event_fields_match_the_contract(catalog: EventCatalog, name: str) -> None:
    spec = catalog.spec(name)
    required, optional = CONTRACT[name]
    assert {f.name: f.type for f in spec.fields if f.required} == required
    assert {f.name: f.type for f in spec.fields if not f.required} == optional
    assert len(spec.field_names) == len(set(spec.field_names)), "duplicate field"


@pytest.mark.parametrize("spec", SYSTEM_EVENTS, ids=lambda s: s.name)
def test_every_event_is_documented(spec: EventSpec) -> None:
    assert spec.category == spec.name.split(".")[0]
    assert spec.description.endswith(".") and spec.description.count(". ") == 0, "one sentence"
    assert spec.fired_by and all(spec.fired_by)
    assert spec.fields
    assert all(f.description for f in spec.fields)


@pytest.mark.parametrize("spec", SYSTEM_EVENTS, ids=lambda s: s.name)
def test_example_payload_validates_against_its_schema(spec: EventSpec) -> None:
    schema = spec.json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    example = spec.example_payload()
    jsonschema.validate(example, schema)
    assert set(example) == set(spec.field_names)
    assert schema["additionalProperties"] is True
    assert schema["required"] == list(spec.required_fields)


def test_schema_rejects_missing_and_mistyped_fields(catalog: EventCatalog) -> None:
    schema = catalog.spec("step.completed").json_schema()
    payload = catalog.spec("step.completed").example_payload()
    jsonschema.validate({**payload, "extra": 1}, schema)  # extra keys allowed
    jsonschema.validate({**payload, "started_at": None}, schema)  # string|null
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({k: v for k, v in payload.items() if k != "step_id"}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**payload, "task_id": "42"}, schema)


def test_example_values_follow_the_conventions(catalog: EventCatalog) -> None:
    example = catalog.spec("step.failed").example_payload()
    assert example["task_id"] == 42 and example["step_id"] == 42
    assert example["attempt_number"] == 5
    assert example["execution_duration"] == 2.34
    assert example["step_name"] == "example_step_name"
    assert datetime.fromisoformat(example["timestamp"]).utcoffset() is not None
    assert datetime.fromisoformat(example["started_at"])
    assert catalog.spec("workflow.viable_steps_discovered").example_payload()["step_ids"] == [42, 43]


def test_field_types_come_from_a_fixed_vocabulary() -> None:
    assert set(FIELD_TYPES) == {
        "string", "integer", "number", "boolean", "object", "array", "any", "string|null", "number|null",
    }  # fmt: skip
    assert all(f.type in FIELD_TYPES for spec in SYSTEM_EVENTS for f in spec.fields)
    with pytest.raises(EventError, match="unknown type 'str'"):
        FieldSpec("x", "str")


def test_state_machine_events_are_in_the_catalog(catalog: EventCatalog) -> None:
    fired = set(TASK_TRANSITION_EVENTS.values()) | set(STEP_TRANSITION_EVENTS.values())
    assert fired <= set(catalog.names())


def test_default_filter_masks_no_catalog_field() -> None:
    masker = Masker(DEFAULT_FILTER_PARAMETERS)
    names = {f.name for spec in SYSTEM_EVENTS for f in spec.fields}
    assert [n for n in sorted(names) if masker.is_sensitive(n)] == []


def test_lookup(catalog: EventCatalog) -> None:
    assert catalog.get("task.completed") is catalog.spec("task.completed")
    assert catalog.get("nope.nothing") is None
    assert "task.completed" in catalog and "nope.nothing" not in catalog
    with pytest.raises(EventError, match=re.escape("Unknown event 'nope.nothing'")):
        catalog.spec("nope.nothing")
    assert catalog.names("observability") == [
        "observability.task.enqueue",
        "observability.step.backoff",
        "observability.step.max_retries_reached",
    ]
    assert catalog.spec("task.completed").as_dict()["payload_schema"]["title"] == "task.completed"


# -- custom events ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("orderfulfilled", "Custom event name must contain a namespace (e.g., 'order.fulfilled')"),
        ("order.", "Custom event name must contain a namespace (e.g., 'order.fulfilled')"),
        (".fulfilled", "Custom event name must contain a namespace (e.g., 'order.fulfilled')"),
        ("task.completed", "Event name 'task.completed' conflicts with system event"),
        ("observability.step.backoff", "Event name 'observability.step.backoff' conflicts with system event"),
        ("task.archived", "Namespace 'task' is reserved for system events"),
        ("Step.archived", "Namespace 'step' is reserved for system events"),
        ("workflow.x", "Namespace 'workflow' is reserved for system events"),
        ("observability.x", "Namespace 'observability' is reserved for system events"),
        ("test.event", "Namespace 'test' is reserved for system events"),
        ("order.ful filled", "may only contain letters, digits"),
    ],
)
def test_custom_event_name_errors(catalog: EventCatalog, name: str, message: str) -> None:
    with pytest.raises(EventError) as info:
        catalog.register_custom(name)
    assert message in str(info.value)
    assert catalog.names("custom") == []


def test_custom_event_name_must_be_a_string(catalog: EventCatalog) -> None:
    with pytest.raises(EventError, match="Event name must be a string, got int"):
        catalog.register_custom(42)  # type: ignore[arg-type]


def test_register_custom_event(catalog: EventCatalog) -> None:
    fields = (FieldSpec("order_id", "integer", True, "The order."),)
    spec = catalog.register_custom("order.fulfilled", "An order shipped.", ("OrderHandler",), fields)
    assert spec == EventSpec("order.fulfilled", "custom", "An order shipped.", ("OrderHandler",), fields)
    assert catalog.get("order.fulfilled") == spec
    assert catalog.names("custom") == ["order.fulfilled"]
    assert catalog.names()[-1] == "order.fulfilled"
    assert catalog.categories[-1] == "custom"
    assert not catalog.is_system("order.fulfilled") and catalog.is_system("task.completed")
    jsonschema.validate(spec.example_payload(), spec.json_schema())


def test_reregistering_a_custom_event_is_idempotent(catalog: EventCatalog) -> None:
    first = catalog.register_custom("order.fulfilled", "An order shipped.", ("A",))
    assert catalog.register_custom("order.fulfilled", "An order shipped.", ("A",)) is first
    assert catalog.register_custom("order.fulfilled") is first
    merged = catalog.register_custom("order.fulfilled", "Another description.", ("B",))
    assert merged.description == "An order shipped."
    assert merged.fired_by == ("A", "B")
    assert catalog.names("custom") == ["order.fulfilled"]
    later = catalog.register_custom("order.created")
    assert catalog.register_custom("order.created", "Described later.").description == "Described later."
    assert later.description == "Custom event"


def test_custom_events_belong_to_one_catalog() -> None:
    one, two = EventCatalog(), EventCatalog()
    one.register_custom("order.fulfilled")
    assert "order.fulfilled" in one and "order.fulfilled" not in two
