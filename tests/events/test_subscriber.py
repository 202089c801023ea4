"""BaseSubscriber: handler discovery, subscription, and the payload helpers of reference §6.6."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tasker.errors import EventError
from tasker.events import BaseSubscriber, Event, EventBus
from tasker.events.subscriber import categorize_error, handler_name


class Notify(BaseSubscriber):
    subscribe_to = ("task.completed", "step.failed")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[tuple[str, Event]] = []

    def handle_task_completed(self, event: Event) -> None:
        self.seen.append(("completed", event))

    def handle_step_failed(self, event: Event) -> None:
        self.seen.append(("failed", event))

    def handle_order_fulfilled(self, event: Event) -> None:
        self.seen.append(("order", event))

    def handle_order_payment_failed(self, event: Event) -> None:
        self.seen.append(("payment", event))


@pytest.fixture
def bus() -> EventBus:
    return EventBus()


def test_handler_names() -> None:
    assert handler_name("task.completed") == "handle_task_completed"
    assert handler_name("order.payment-failed") == "handle_order_payment_failed"
    assert handler_name("observability.step.backoff") == "handle_observability_step_backoff"


def test_subscribe_routes_each_event_to_its_handler(bus: EventBus) -> None:
    subscriber = bus.subscribe_subscriber(Notify())
    assert isinstance(subscriber, Notify)
    bus.publish("task.completed", {"task_id": 1})
    bus.publish("step.failed", {"task_id": 1})
    bus.publish("step.completed", {"task_id": 1})
    assert [kind for kind, _ in subscriber.seen] == ["completed", "failed"]
    assert subscriber.name == "Notify"
    assert bus.subscribers("task.completed") == ["Notify"]


def test_events_given_at_construction_are_appended(bus: EventBus) -> None:
    bus.register_custom_event("order.fulfilled")
    subscriber = Notify(name="notifier", events=["order.fulfilled", "task.completed"], config={"x": 1})
    assert subscriber.events == ("task.completed", "step.failed", "order.fulfilled")
    assert subscriber.config == {"x": 1}
    subscriber.subscribe(bus)
    bus.publish("order.fulfilled", {"order_id": 3})
    assert subscriber.seen[0][0] == "order"
    assert bus.subscribers("order.fulfilled") == ["notifier"]


def test_custom_event_names_are_used_as_is(bus: EventBus) -> None:
    bus.register_custom_event("order.payment-failed")
    subscriber = Notify(events=["order.payment-failed"])
    subscriber.subscribe(bus)
    assert bus.has_subscribers("order.payment-failed")
    bus.publish("order.payment-failed")
    assert subscriber.seen[0][0] == "payment"


def test_missing_handler_is_an_error_at_subscribe_time(bus: EventBus) -> None:
    class Incomplete(BaseSubscriber):
        subscribe_to = ("task.completed", "task.failed")

        def handle_task_completed(self, event: Event) -> None:
            pass

    expected = "Incomplete subscribes to 'task.failed' but has no handler method 'handle_task_failed'"
    with pytest.raises(EventError, match=re.escape(expected)):
        Incomplete().subscribe(bus)
    assert not bus.has_subscribers("task.completed"), "nothing subscribed"


def test_unknown_event_is_an_error_and_nothing_is_subscribed(bus: EventBus) -> None:
    subscriber = Notify(events=["order.fulfilled"])  # not registered on this bus
    with pytest.raises(EventError, match=re.escape("Unknown event 'order.fulfilled'")):
        subscriber.subscribe(bus)
    assert not bus.has_subscribers("task.completed")


def test_should_process_event_filters_subscriptions(bus: EventBus) -> None:
    class OnlyTasks(Notify):
        def should_process_event(self, event_name: str) -> bool:
            return event_name.startswith("task.")

    subscriber = OnlyTasks()
    subscriber.subscribe(bus)
    assert bus.has_subscribers("task.completed") and not bus.has_subscribers("step.failed")


def test_unsubscribe(bus: EventBus) -> None:
    subscriber = Notify()
    subscriber.subscribe(bus)
    subscriber.subscribe(bus)  # idempotent
    assert bus.subscribers("task.completed") == ["Notify"]
    subscriber.unsubscribe(bus)
    assert not bus.has_subscribers("task.completed") and not bus.has_subscribers("step.failed")


def test_a_subscriber_without_events_subscribes_nothing(bus: EventBus) -> None:
    BaseSubscriber().subscribe(bus)
    assert all(not bus.has_subscribers(name) for name in bus.catalog.names())


def test_failing_handler_is_reported_with_the_subscriber_name() -> None:
    failures: list[tuple[str, str]] = []
    bus = EventBus(on_subscriber_error=lambda event, name, exc: failures.append((event, name)))

    class Broken(BaseSubscriber):
        subscribe_to = ("task.completed",)

        def handle_task_completed(self, event: Event) -> None:
            raise RuntimeError("nope")

    Broken(name="broken-one").subscribe(bus)
    bus.publish("task.completed")
    assert failures == [("task.completed", "broken-one")]


# -- helpers -----------------------------------------------------------------------------------------------


def _event(**payload: object) -> Event:
    return Event("step.failed", payload)


def test_safe_get_on_events_dicts_and_none() -> None:
    helpers = BaseSubscriber()
    assert helpers.safe_get(_event(task_id=3), "task_id") == 3
    assert helpers.safe_get({"task_id": 3}, "task_id") == 3
    assert helpers.safe_get({"task_id": None}, "task_id", "d") == "d"
    assert helpers.safe_get(None, "task_id", "d") == "d"
    assert helpers.safe_get({}, "task_id") is None


def test_extract_core_and_step_attributes() -> None:
    helpers = BaseSubscriber()
    assert helpers.extract_core_attributes(_event(task_id=1, step_id=2, timestamp="t")) == {
        "task_id": 1,
        "step_id": 2,
        "event_timestamp": "t",
    }
    core = helpers.extract_core_attributes({})
    assert core["task_id"] == "unknown" and "step_id" not in core and core["event_timestamp"]
    assert helpers.extract_step_attributes({"task_id": 1, "timestamp": "t"}) == {
        "task_id": 1,
        "event_timestamp": "t",
        "step_id": None,
        "step_name": "unknown_step",
    }


def test_extract_timing_metrics_coerces_numbers() -> None:
    timing = BaseSubscriber().extract_timing_metrics(
        {"execution_duration": "30.5", "total_steps": "4", "completed_steps": 3, "failed_steps": "x"}
    )
    assert timing == {
        "execution_duration": 30.5,
        "started_at": None,
        "completed_at": None,
        "step_count": 4,
        "completed_steps": 3,
        "failed_steps": 0,
    }
    assert BaseSubscriber().extract_timing_metrics(None)["execution_duration"] == 0.0


def test_extract_error_metrics() -> None:
    helpers = BaseSubscriber()
    metrics = helpers.extract_error_metrics(
        _event(error_message="gateway timed out", exception_class="httpx.ReadTimeout", attempt_number=3,
               retry_limit=3, retryable=True)
    )  # fmt: skip
    assert metrics == {
        "error_message": "gateway timed out",
        "error_class": "httpx.ReadTimeout",
        "error_type": "timeout",
        "attempt_number": 3,
        "is_retryable": True,
        "final_failure": True,
    }
    assert helpers.extract_error_metrics({}) == {
        "error_message": "unknown_error",
        "error_class": "UnknownError",
        "error_type": "other",
        "attempt_number": 1,
        "is_retryable": False,
        "final_failure": True,
    }


@pytest.mark.parametrize(
    ("exception_class", "category"),
    [
        ("TimeoutError", "timeout"),
        ("ConnectionError", "network"),
        ("NetworkUnreachable", "network"),
        ("RecordNotFound", "not_found"),
        ("HTTP404", "not_found"),
        ("Unauthorized", "auth"),
        ("Http403Error", "auth"),
        ("RateLimitExceeded", "rate_limit"),
        ("TooManyRequests", "rate_limit"),
        ("InvalidInput", "client_error"),
        ("BadRequest", "client_error"),
        ("InternalServerError", "server_error"),
        ("RuntimeError", "runtime"),
        ("StandardError", "runtime"),
        ("Exception", "runtime"),
        ("builtins.Exception", "runtime"),
        ("KeyError", "other"),
        ("", "unknown"),
        (None, "unknown"),
    ],
)
def test_categorize_error(exception_class: str | None, category: str) -> None:
    assert categorize_error(exception_class) == category
    assert BaseSubscriber.categorize_error(exception_class) == category


def test_extract_metric_tags_order() -> None:
    helpers = BaseSubscriber(config={"environment": "staging"})
    tags = helpers.extract_metric_tags(
        {"task_name": "order", "step_name": "charge", "source_system": "shop", "retryable": True,
         "attempt_number": 2, "priority": "high"}
    )  # fmt: skip
    assert tags == [
        "task:order",
        "step:charge",
        "environment:staging",
        "source:shop",
        "retryable:true",
        "attempt:2",
        "priority:high",
    ]
    assert helpers.extract_metric_tags({"task_name": "unknown", "step_name": "unknown_step"}) == ["environment:staging"]


def test_numeric_and_metric_name_helpers() -> None:
    helpers = BaseSubscriber()
    assert helpers.extract_numeric_metric({"x": "0"}, "x", 5) == 0.0
    assert helpers.extract_numeric_metric({"x": "abc"}, "x", 5) == 5.0
    assert helpers.extract_numeric_metric({}, "x") == 0.0
    assert helpers.build_metric_name("tasker.task", "completed") == "tasker.task.completed"
    assert helpers.build_metric_name("tasker.task.", ".completed") == "tasker.task.completed"
