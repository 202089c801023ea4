"""EventBus: unknown names, delivery order, isolation of failing subscribers, masking, references."""

from __future__ import annotations

import gc
import logging
import re
import threading
from datetime import UTC, datetime
from typing import Any

import blinker
import pytest

from tasker.errors import EventError
from tasker.events import Event, EventBus, EventCatalog, Masker

PAYLOAD = {"task_id": 1, "step_id": 2, "step_name": "charge"}


@pytest.fixture
def bus() -> EventBus:
    return EventBus()


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)


# -- unknown names ---------------------------------------------------------------------------------------


def test_publishing_an_unknown_event_raises_even_without_subscribers(bus: EventBus) -> None:
    with pytest.raises(EventError, match=re.escape("Unknown event 'step.complete'")):
        bus.publish("step.complete", PAYLOAD)
    with pytest.raises(EventError, match="Unknown event"):
        bus.emit("order.shipped", dict)
    with pytest.raises(EventError, match="Unknown event"):
        bus.has_subscribers("order.shipped")


def test_subscribing_to_an_unknown_event_raises(bus: EventBus) -> None:
    with pytest.raises(EventError, match=re.escape("Unknown event 'order.shipped'")):
        bus.subscribe("order.shipped", Recorder())


def test_custom_events_can_be_published_once_registered(bus: EventBus) -> None:
    seen = Recorder()
    bus.register_custom_event("order.shipped", "An order left the warehouse.", ("OrderHandler",))
    bus.subscribe("order.shipped", seen)
    bus.publish("order.shipped", {"order_id": 7})
    assert [e.name for e in seen.events] == ["order.shipped"]
    assert seen.events[0]["order_id"] == 7


def test_events_registered_on_the_catalog_after_the_bus_was_built_are_known() -> None:
    catalog = EventCatalog()
    bus = EventBus(catalog=catalog)
    catalog.register_custom("order.shipped")
    bus.publish("order.shipped")


# -- delivery --------------------------------------------------------------------------------------------


def test_subscribers_are_called_in_subscription_order(bus: EventBus) -> None:
    calls: list[int] = []
    fns = [lambda e, i=i: calls.append(i) for i in range(8)]
    for fn in fns:
        bus.subscribe("step.completed", fn)
    bus.publish("step.completed", PAYLOAD)
    assert calls == list(range(8))

    bus.unsubscribe("step.completed", fns[2])
    bus.subscribe("step.completed", fns[2])
    calls.clear()
    bus.publish("step.completed", PAYLOAD)
    assert calls == [0, 1, 3, 4, 5, 6, 7, 2]


def test_subscribing_twice_delivers_once(bus: EventBus) -> None:
    seen = Recorder()
    bus.subscribe("task.completed", seen)
    bus.subscribe("task.completed", seen)
    bus.publish("task.completed", {"task_id": 1})
    assert len(seen.events) == 1
    assert len(bus.subscribers("task.completed")) == 1


def test_bound_methods_are_recognised_across_accesses(bus: EventBus) -> None:
    seen = Recorder()

    class Holder:
        def on(self, event: Event) -> None:
            seen(event)

    holder = Holder()
    bus.subscribe("task.completed", holder.on)
    bus.subscribe("task.completed", holder.on)
    bus.publish("task.completed")
    assert len(seen.events) == 1
    bus.unsubscribe("task.completed", holder.on)
    bus.publish("task.completed")
    assert len(seen.events) == 1
    assert not bus.has_subscribers("task.completed")


def test_unsubscribing_what_is_not_subscribed_is_ignored(bus: EventBus) -> None:
    bus.unsubscribe("task.completed", Recorder())


def test_delivery_is_synchronous_in_the_callers_thread(bus: EventBus) -> None:
    threads: list[threading.Thread] = []
    bus.subscribe("task.completed", lambda e: threads.append(threading.current_thread()))
    bus.publish("task.completed")
    assert threads == [threading.current_thread()]


def test_async_subscribers_are_refused(bus: EventBus) -> None:
    async def handler(event: Event) -> None:
        pass

    with pytest.raises(EventError, match="async"):
        bus.subscribe("task.completed", handler)


def test_emit_builds_the_payload_only_when_someone_listens(bus: EventBus) -> None:
    built: list[int] = []

    def build() -> dict[str, Any]:
        built.append(1)
        return {"task_id": 5}

    bus.emit("task.completed", build)
    assert built == []
    seen = Recorder()
    bus.subscribe("task.completed", seen)
    assert bus.has_subscribers("task.completed")
    bus.emit("task.completed", build)
    assert built == [1]
    assert seen.events[0]["task_id"] == 5


# -- payload: timestamp, masking, Event ------------------------------------------------------------------


def test_timestamp_is_added_unless_present(bus: EventBus) -> None:
    seen = Recorder()
    bus.subscribe("task.completed", seen)
    payload = {"task_id": 1}
    before = datetime.now(UTC).replace(microsecond=0)
    bus.publish("task.completed", payload)
    bus.publish("task.completed", {"timestamp": "2020-01-01T00:00:00+00:00"})
    bus.publish("task.completed", {"timestamp": None})
    bus.publish("task.completed")
    stamp = datetime.fromisoformat(seen.events[0]["timestamp"])
    assert stamp.utcoffset() is not None and stamp.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert before <= stamp <= datetime.now(UTC)
    assert seen.events[1]["timestamp"] == "2020-01-01T00:00:00+00:00"
    assert seen.events[2]["timestamp"] is not None
    assert "timestamp" in seen.events[3]
    assert payload == {"task_id": 1}, "the caller's dict is not modified"


def test_payloads_are_masked_before_delivery() -> None:
    bus = EventBus(masker=Masker(["password", "api_key"]))
    seen = Recorder()
    bus.subscribe("task.completed", seen)
    payload = {"task_id": 1, "task_context": {"db": {"Password": "p"}, "items": [{"X-Api-Key": "k"}]}}
    bus.publish("task.completed", payload)
    event = seen.events[0]
    assert event["task_context"] == {"db": {"Password": "[FILTERED]"}, "items": [{"X-Api-Key": "[FILTERED]"}]}
    assert payload["task_context"]["db"]["Password"] == "p"


def test_the_default_bus_masks_with_the_default_filter(bus: EventBus) -> None:
    seen = Recorder()
    bus.subscribe("task.completed", seen)
    bus.publish("task.completed", {"task_context": {"token": "t"}})
    assert seen.events[0]["task_context"] == {"token": "[FILTERED]"}


def test_event_is_a_read_only_mapping(bus: EventBus) -> None:
    seen = Recorder()
    bus.subscribe("step.completed", seen)
    bus.publish("step.completed", {**PAYLOAD, "step_results": None})
    event = seen.events[0]
    assert event.name == "step.completed"
    assert event["step_name"] == "charge"
    assert event.get("missing", 3) == 3
    assert event.get("step_results", 3) is None
    assert event.safe_get("step_results", 3) == 3
    assert event.safe_get("missing") is None
    assert set(event) == {*PAYLOAD, "step_results", "timestamp"}
    assert len(event) == 5 and "step_id" in event
    assert dict(event.payload) == event.to_dict()
    with pytest.raises(TypeError):
        event.payload["task_id"] = 9  # type: ignore[index]
    with pytest.raises(TypeError):
        event["task_id"] = 9  # type: ignore[index]
    assert "step.completed" in repr(event)


# -- failing subscribers ---------------------------------------------------------------------------------


def test_a_raising_subscriber_is_isolated(caplog: pytest.LogCaptureFixture) -> None:
    failures: list[tuple[str, str, BaseException]] = []
    bus = EventBus(on_subscriber_error=lambda *args: failures.append(args))
    first, last = Recorder(), Recorder()

    def explode(event: Event) -> None:
        raise ValueError("boom")

    bus.subscribe("step.failed", first)
    bus.subscribe("step.failed", explode)
    bus.subscribe("step.failed", last, subscriber_name="Last")
    with caplog.at_level(logging.ERROR, logger="tasker.events.publisher"):
        bus.publish("step.failed", PAYLOAD)

    assert len(first.events) == 1 and len(last.events) == 1
    assert len(failures) == 1
    event_name, subscriber_name, exc = failures[0]
    assert event_name == "step.failed"
    assert subscriber_name.endswith("test_a_raising_subscriber_is_isolated.<locals>.explode")
    assert isinstance(exc, ValueError)
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert "step.failed" in record.getMessage() and "explode" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[1] is exc


def test_a_raising_error_callback_is_contained(caplog: pytest.LogCaptureFixture) -> None:
    def bad_callback(event: str, subscriber: str, exc: BaseException) -> None:
        raise RuntimeError("metrics down")

    bus = EventBus(on_subscriber_error=bad_callback)
    after = Recorder()
    bus.subscribe("task.completed", lambda e: 1 / 0)
    bus.subscribe("task.completed", after)
    with caplog.at_level(logging.ERROR, logger="tasker.events.publisher"):
        bus.publish("task.completed")
    assert len(after.events) == 1
    assert len(caplog.records) == 2


def test_base_exceptions_are_not_swallowed(bus: EventBus) -> None:
    def interrupt(event: Event) -> None:
        raise KeyboardInterrupt

    bus.subscribe("task.completed", interrupt)
    with pytest.raises(KeyboardInterrupt):
        bus.publish("task.completed")


# -- references and isolation ----------------------------------------------------------------------------

RECEIVED: list[str] = []


class _Listener:
    def on_completed(self, event: Event) -> None:
        RECEIVED.append(event.name)


def test_subscribers_are_held_strongly(bus: EventBus) -> None:
    RECEIVED.clear()
    bus.subscribe("task.completed", _Listener().on_completed)
    bus.subscribe("task.failed", lambda event: RECEIVED.append(event.name))
    gc.collect()
    bus.publish("task.completed")
    bus.publish("task.failed")
    assert RECEIVED == ["task.completed", "task.failed"]


def test_two_buses_share_nothing() -> None:
    one, two = EventBus(), EventBus()
    seen_one, seen_two = Recorder(), Recorder()
    one.subscribe("task.completed", seen_one)
    one.register_custom_event("order.shipped")
    two.subscribe("task.failed", seen_two)

    two.publish("task.completed")
    assert seen_one.events == []
    assert not two.has_subscribers("task.completed")
    with pytest.raises(EventError):
        two.publish("order.shipped")
    one.publish("task.failed")
    assert seen_two.events == []


def test_the_default_blinker_namespace_is_not_used(bus: EventBus) -> None:
    bus.subscribe("task.completed", Recorder())
    assert "task.completed" not in blinker.default_namespace


def test_concurrent_publishers_deliver_every_event(bus: EventBus) -> None:
    lock = threading.Lock()
    count = [0]

    def counter(event: Event) -> None:
        with lock:
            count[0] += 1

    bus.subscribe("step.completed", counter)

    def work() -> None:
        for _ in range(500):
            bus.publish("step.completed", PAYLOAD)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert count[0] == 2000
