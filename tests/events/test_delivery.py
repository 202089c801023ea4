"""Subscribers cannot stall workflows: background delivery, dropped events, slow synchronous subscribers."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tasker import Tasker, TaskRequest
from tasker.events import BaseSubscriber, Event, EventBus
from tests.conftest import FAST_CONFIG
from tests.support.faults import Sleepy
from tests.support.handlers import template
from tests.support.processes import wait_for


class Gated(BaseSubscriber):
    """A background subscriber that blocks on ``gate`` for every step.completed, recording what it saw."""

    subscribe_to = ("step.completed",)
    delivery = "background"

    def __init__(self, queue_size: int = 1000) -> None:
        super().__init__()
        self.queue_size = queue_size  # type: ignore[misc]
        self.gate = threading.Event()
        self.seen: list[str] = []

    def handle_step_completed(self, event: Event) -> None:
        self.gate.wait(30)
        self.seen.append(event["step_name"])


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Tasker]:
    app = Tasker(f"sqlite:///{tmp_path}/tasker.db", config=FAST_CONFIG)
    app.migrate()
    app.register_task_template(template("diamond"))
    yield app
    app.shutdown()


def _sample(app: Tasker, name: str) -> float:
    for family in text_string_to_metric_families(app.metrics.render()):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    return 0.0


def test_a_blocked_background_subscriber_does_not_hold_up_the_workflow(app: Tasker) -> None:
    subscriber = app.subscribe(Gated())
    assert isinstance(subscriber, Gated)
    task = app.create_task(TaskRequest(name="diamond", version="1.0.0", context={}))
    assert app.run_until_done(task.task_id, timeout=10) == "complete"
    assert subscriber.seen == []  # still blocked on the first event: the task finished without it
    subscriber.gate.set()
    wait_for(lambda: len(subscriber.seen) == 4, timeout=10)
    assert subscriber.seen[0] == "a" and subscriber.seen[-1] == "d"  # in publication order


def test_a_full_background_queue_drops_and_counts(app: Tasker, caplog: pytest.LogCaptureFixture) -> None:
    subscriber = app.subscribe(Gated(queue_size=1))
    assert isinstance(subscriber, Gated)
    task = app.create_task(TaskRequest(name="diamond", version="1.0.0", context={}))
    with caplog.at_level(logging.WARNING, logger="tasker.events.publisher"):
        assert app.run_until_done(task.task_id, timeout=10) == "complete"
    subscriber.gate.set()
    dropped = _sample(app, "tasker_events_dropped_total")
    assert dropped >= 1  # the first is being handled, one waits in the queue: the rest are dropped
    wait_for(lambda: len(subscriber.seen) == 4 - dropped, timeout=10)
    assert len([r for r in caplog.records if "dropped (queue full)" in r.getMessage()]) == 1  # logged once


def test_shutdown_delivers_what_is_queued(tmp_path: Path) -> None:
    bus = EventBus()
    got: list[int] = []
    delivery = bus.background_delivery("collector", maxsize=100)
    bus.subscribe("task.completed", lambda event: got.append(event["task_id"]), delivery=delivery)
    for i in range(50):
        bus.publish("task.completed", {"task_id": i})
    bus.close(timeout=10)
    assert got == list(range(50))


def test_a_slow_synchronous_subscriber_is_logged_and_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    app = Tasker(f"sqlite:///{tmp_path}/slow.db", config={**FAST_CONFIG, "events": {"slow_subscriber_seconds": 0.05}})
    app.migrate()
    app.register_task_template(template("diamond"))
    app.subscribe(Sleepy(("task.completed",), seconds=0.1))
    task = app.create_task(TaskRequest(name="diamond", version="1.0.0", context={}))
    with caplog.at_level(logging.WARNING, logger="tasker.events.publisher"):
        assert app.run_until_done(task.task_id) == "complete"
    [record] = [r for r in caplog.records if "took" in r.getMessage()]
    assert (
        record.getMessage().startswith("Event subscriber Sleepy took 0.1") and "task.completed" in record.getMessage()
    )
    assert _sample(app, "tasker_event_subscriber_slow_total") == 1
    app.shutdown()
