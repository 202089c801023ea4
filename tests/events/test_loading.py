"""YAML custom event definitions (both shapes of reference §6.7) and YAML subscriptions (§6.9)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasker.errors import EventError
from tasker.events import EventBus, FieldSpec
from tests.events.sample_subscribers import AuditSubscriber

GENERATOR_SHAPE = """
events:
  custom:
    order_processed:
      constant: order.processed
      description: An order was processed.
      payload_schema:
        order_id: {type: Integer, required: true}
        total: {type: Float, required: true}
        processed_at: {type: Time}
        items: {type: "Array<String>"}
        note: String
      fired_by: [OrderHandler]
    payment_completed:
      constant: payment.completed
      description: A payment went through.
      fired_by: PaymentHandler
"""

METADATA_SHAPE = """
event_metadata:
  inventory:
    reserved:
      description: Stock was reserved.
      fired_by: [InventoryHandler, Reconciler]
      payload_schema:
        sku: {type: string, required: true}
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def bus() -> EventBus:
    return EventBus()


def test_generator_shape(bus: EventBus, tmp_path: Path) -> None:
    specs = bus.load_custom_events(write(tmp_path / "examples.yml", GENERATOR_SHAPE))
    assert [s.name for s in specs] == ["order.processed", "payment.completed"]
    processed = bus.catalog.spec("order.processed")
    assert processed.category == "custom"
    assert processed.description == "An order was processed."
    assert processed.fired_by == ("OrderHandler",)
    assert processed.fields == (
        FieldSpec("order_id", "integer", True, ""),
        FieldSpec("total", "number", True, ""),
        FieldSpec("processed_at", "string", False, ""),
        FieldSpec("items", "array", False, ""),
        FieldSpec("note", "string", False, ""),
    )
    assert bus.catalog.spec("payment.completed").fired_by == ("PaymentHandler",)
    bus.publish("order.processed", {"order_id": 1})


def test_event_metadata_shape(bus: EventBus, tmp_path: Path) -> None:
    [spec] = bus.load_custom_events(write(tmp_path / "inventory.yaml", METADATA_SHAPE))
    assert spec.name == "inventory.reserved"
    assert spec.fired_by == ("InventoryHandler", "Reconciler")
    assert spec.required_fields == ("sku",)


def test_directory_of_files(bus: EventBus, tmp_path: Path) -> None:
    write(tmp_path / "a.yml", GENERATOR_SHAPE)
    write(tmp_path / "b.yaml", METADATA_SHAPE)
    write(tmp_path / "notes.txt", "not: yaml: at all")
    write(tmp_path / "empty.yml", "")
    specs = bus.load_custom_events(tmp_path)
    assert sorted(s.name for s in specs) == ["inventory.reserved", "order.processed", "payment.completed"]


def test_loading_twice_is_idempotent(bus: EventBus, tmp_path: Path) -> None:
    path = write(tmp_path / "a.yml", GENERATOR_SHAPE)
    assert bus.load_custom_events(path) == bus.load_custom_events(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("events:\n  custom:\n    x:\n      constant: task.archived\n", "Namespace 'task' is reserved"),
        ("event_metadata:\n  step:\n    archived: {}\n", "Namespace 'step' is reserved"),
        ("event_metadata:\n  task:\n    completed: {}\n", "conflicts with system event"),
        ("events:\n  custom:\n    x:\n      constant: nodot\n", "must contain a namespace"),
        (
            "events:\n  custom:\n    x:\n      constant: a.b\n      payload_schema: {f: {type: Widget}}\n",
            "field 'f': unknown type 'Widget'",
        ),
        ("something_else: {}\n", "expected an 'events:' or 'event_metadata:' section"),
        ("events: [1, 2]\n", "must be a mapping"),
        ("events: {custom: {x: {constant: a.b\n", "cannot read YAML"),
        ("- just\n- a list\n", "expected a mapping at the top level"),
    ],
)
def test_bad_custom_event_files_name_the_file(bus: EventBus, tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "bad.yml", text)
    with pytest.raises(EventError) as info:
        bus.load_custom_events(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_a_bad_file_registers_nothing(bus: EventBus, tmp_path: Path) -> None:
    write(tmp_path / "a.yml", GENERATOR_SHAPE)
    write(tmp_path / "b.yml", "event_metadata:\n  task:\n    archived: {}\n")
    with pytest.raises(EventError):
        bus.load_custom_events(tmp_path)
    assert "order.processed" not in bus.catalog


def test_missing_path(bus: EventBus, tmp_path: Path) -> None:
    with pytest.raises(EventError, match="no such file or directory"):
        bus.load_custom_events(tmp_path / "nope")


# -- subscriptions ---------------------------------------------------------------------------------------

SUBSCRIPTIONS = """
subscriptions:
  audit:
    class: tests.events.sample_subscribers:AuditSubscriber
    events: [step.failed]
    config: {channel: "#ops"}
  audit_dotted:
    class: tests.events.sample_subscribers.AuditSubscriber
  disabled:
    class: does.not.exist:Nothing
    enabled: false
"""


def test_load_subscriptions(bus: EventBus, tmp_path: Path) -> None:
    subscribers = bus.load_subscriptions(write(tmp_path / "subs.yml", SUBSCRIPTIONS))
    assert [s.name for s in subscribers] == ["audit", "audit_dotted"]
    audit, dotted = subscribers
    assert isinstance(audit, AuditSubscriber)
    assert audit.events == ("task.completed", "step.failed")
    assert audit.config == {"channel": "#ops"}
    assert dotted.events == ("task.completed",)
    bus.publish("task.completed", {"task_id": 1})
    bus.publish("step.failed", {"task_id": 1})
    assert [e.name for e in audit.seen] == ["task.completed", "step.failed"]  # type: ignore[attr-defined]
    assert [e.name for e in dotted.seen] == ["task.completed"]  # type: ignore[attr-defined]
    assert bus.subscribers("task.completed") == ["audit", "audit_dotted"]


def test_subscriptions_can_use_custom_events_and_a_class_context(bus: EventBus, tmp_path: Path) -> None:
    bus.register_custom_event("order.fulfilled")
    text = "subscriptions:\n  orders:\n    class: Audit\n    events: [order.fulfilled]\n"
    [subscriber] = bus.load_subscriptions(write(tmp_path / "s.yml", text), context={"Audit": AuditSubscriber})
    bus.publish("order.fulfilled", {"order_id": 1})
    assert [e.name for e in subscriber.seen] == ["order.fulfilled"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("class: tests.events.sample_subscribers:Missing", "cannot import class 'tests.events.sample_subs"),
        ("class: no_such_module_xyz:Thing", "cannot import class 'no_such_module_xyz:Thing'"),
        ("class: Bare", "cannot import class 'Bare'"),
        ("class: tests.events.sample_subscribers:NotASubscriber", "is not a BaseSubscriber subclass"),
        ("class: tests.events.sample_subscribers:Exploding", "cannot create 'tests.events.sample_subs"),
        ("events: [task.completed]", "'class' is required"),
        (
            "class: tests.events.sample_subscribers:AuditSubscriber\n    events: [task.failed]",
            "has no handler method 'handle_task_failed'",
        ),
        (
            "class: tests.events.sample_subscribers:AuditSubscriber\n    events: [order.unknown]",
            "Unknown event 'order.unknown'",
        ),
    ],
)  # fmt: skip
def test_bad_subscriptions_name_the_file(bus: EventBus, tmp_path: Path, entry: str, message: str) -> None:
    path = write(tmp_path / "subs.yml", f"subscriptions:\n  first:\n    {entry}\n")
    with pytest.raises(EventError) as info:
        bus.load_subscriptions(path)
    assert str(path) in str(info.value) and "subscription 'first'" in str(info.value)
    assert message in str(info.value)


def test_a_bad_subscription_subscribes_nothing(bus: EventBus, tmp_path: Path) -> None:
    write(tmp_path / "a.yml", SUBSCRIPTIONS)
    write(tmp_path / "b.yml", "subscriptions:\n  broken:\n    class: nope:Nope\n")
    with pytest.raises(EventError, match="nope:Nope"):
        bus.load_subscriptions(tmp_path)
    assert not bus.has_subscribers("task.completed")


def test_duplicate_subscription_names_across_files(bus: EventBus, tmp_path: Path) -> None:
    write(tmp_path / "a.yml", SUBSCRIPTIONS)
    write(tmp_path / "b.yml", "subscriptions:\n  audit:\n    class: x:Y\n")
    with pytest.raises(EventError, match="already defined in"):
        bus.load_subscriptions(tmp_path)


def test_subscription_file_without_section(bus: EventBus, tmp_path: Path) -> None:
    with pytest.raises(EventError, match="expected a 'subscriptions:' section"):
        bus.load_subscriptions(write(tmp_path / "x.yml", "events: {}\n"))
