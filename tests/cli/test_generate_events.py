"""``tasker generate events``: custom events YAML the event bus loads, and a subscriber for them."""

from __future__ import annotations

from pathlib import Path

from tasker.generators import EXAMPLE_EVENTS

from tasker.events import EventBus
from tests.cli.support import assert_one_line_error, assert_pytest_passes, invoke, load_module, ruff_failures

NAMES = ["order.processed", "payment.completed", "notification.sent"]


def test_generates_yaml_subscriber_and_test(project: Path) -> None:
    result = invoke("generate", "events")
    assert result.exit_code == 0, result.output
    events_file = project / "config" / "events" / "custom_events.yaml"
    subscriber_file = project / "subscribers" / "custom_events_subscriber.py"
    test_file = project / "tests" / "subscribers" / "test_custom_events_subscriber.py"
    for path in (events_file, subscriber_file, test_file, project / "conftest.py"):
        assert path.is_file(), path

    bus = EventBus()
    specs = bus.load_custom_events(events_file)
    assert [s.name for s in specs] == NAMES
    assert specs == list(EXAMPLE_EVENTS)  # descriptions, fired_by and payload fields round-trip
    for spec in specs:
        assert spec.description and spec.fired_by and spec.required_fields

    source = subscriber_file.read_text()
    for method in ("handle_order_processed", "handle_payment_completed", "handle_notification_sent"):
        assert f"def {method}(self, event: Event) -> None:" in source
    assert "load_custom_events(EVENTS_FILE)" in test_file.read_text()

    assert ruff_failures(project) == []
    assert_pytest_passes(project, 1)


def test_generated_subscriber_receives_custom_events(project: Path) -> None:
    assert invoke("generate", "events").exit_code == 0
    module = load_module(project / "subscribers" / "custom_events_subscriber.py")
    bus = EventBus()
    bus.load_custom_events(project / "config" / "events" / "custom_events.yaml")
    subscriber = module.CustomEventsSubscriber()
    bus.subscribe_subscriber(subscriber)
    bus.publish("payment.completed", {"payment_id": "p1", "order_id": 1, "amount": 9.5, "currency": "EUR"})
    assert [(e.name, e["payment_id"]) for e in subscriber.handled] == [("payment.completed", "p1")]


def test_listed_by_the_events_command(project: Path) -> None:
    assert invoke("generate", "events", "--directory", "events").exit_code == 0
    result = invoke("events", "list", "--category", "custom", "--events-file", "events/custom_events.yaml")
    assert result.exit_code == 0, result.output
    assert [line.split()[0] for line in result.stdout.splitlines()] == NAMES


def test_existing_files_are_kept_unless_forced(project: Path) -> None:
    assert invoke("generate", "events").exit_code == 0
    assert_one_line_error(invoke("generate", "events"), "custom_events.yaml", "--force")
    assert invoke("generate", "events", "--force").exit_code == 0
