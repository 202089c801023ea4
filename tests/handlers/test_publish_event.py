"""``self.publish_event`` from step handlers: declared events are delivered, undeclared ones only warned about."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tasker import Tasker, TaskRequest
from tasker.errors import EventError
from tasker.events import Event
from tasker.handlers import StepHandler
from tasker.views import StepSequence, StepView, TaskView


class Announce(StepHandler):
    """Publishes every name in ``handler_config['events']``."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        for name in self.config["events"]:
            self.publish_event(name, {"step_name": step.name})
        return {"published": len(self.config["events"])}


def _run(app: Tasker, events: list[str]) -> tuple[str, list[Event]]:
    app.register_task_template({
        "name": "announce", "namespace_name": "analytics", "version": "1.0.0",
        "custom_events": [{"name": "extraction_started"}, {"name": "audit.recorded"}],
        "step_templates": [{"name": "extract", "handler_class": f"{__name__}:Announce",
                            "handler_config": {"events": events}}],
    })  # fmt: skip
    received: list[Event] = []
    for name in ("analytics.extraction_started", "audit.recorded"):
        app.events.subscribe(name, received.append)
    task = app.create_task(TaskRequest(name="announce", namespace="analytics", version="1.0.0", context={"x": 1}))
    return app.run_until_done(task.task_id), received


def test_declared_events_are_delivered_under_their_registered_names(app: Tasker) -> None:
    status, received = _run(app, ["extraction_started", "analytics.extraction_started", "audit.recorded"])
    assert status == "complete"
    assert [e.name for e in received] == ["analytics.extraction_started"] * 2 + ["audit.recorded"]
    assert received[0].payload["step_name"] == "extract"


def test_an_undeclared_event_warns_and_counts_without_failing_the_step(
    make_app: Callable[..., Tasker], caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()
    with caplog.at_level(logging.WARNING, logger="tasker.handlers.events"):
        status, received = _run(app, ["extraction_failed", "extraction_started"])
    assert status == "complete"
    assert [e.name for e in received] == ["analytics.extraction_started"]
    [warning] = [r.getMessage() for r in caplog.records if r.name == "tasker.handlers.events"]
    assert "Announce" in warning and "'extraction_failed'" in warning
    samples = [
        sample
        for family in text_string_to_metric_families(app.metrics.render())
        for sample in family.samples
        if sample.name == "tasker_handler_undeclared_events_total"
    ]
    assert [(s.labels, s.value) for s in samples] == [({"handler": "Announce", "event": "extraction_failed"}, 1.0)]


def test_the_bus_itself_stays_strict(app: Tasker) -> None:
    with pytest.raises(EventError, match=r"Unknown event 'analytics\.extraction_failed'"):
        app.events.publish("analytics.extraction_failed", {})


class Declares(StepHandler):
    """Declares its event on the class, as Ruby handlers may."""

    custom_events = [{"name": "ledger.posted", "description": "Posted"}]

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        self.publish_event("ledger.posted", {"step_name": step.name})
        return {}


def test_events_of_a_ruby_named_handler_class_are_registered_when_it_is_resolved(
    make_app: Callable[..., Tasker], caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app({"templates": {"handler_aliases": {"Ledger::Declares": f"{__name__}:Declares"}}})
    app.register_task_template({
        "name": "post", "namespace_name": "ledger", "version": "1.0.0",
        "step_templates": [{"name": "post", "handler_class": "Ledger::Declares"}],
    })  # fmt: skip
    assert "ledger.posted" not in app.events.catalog  # nothing imported yet
    task = app.create_task(TaskRequest(name="post", namespace="ledger", version="1.0.0", context={"x": 1}))
    with caplog.at_level(logging.WARNING, logger="tasker.handlers.events"):
        assert app.run_until_done(task.task_id) == "complete"
    assert "ledger.posted" in app.events.catalog
    assert not [r for r in caplog.records if r.name == "tasker.handlers.events"]
