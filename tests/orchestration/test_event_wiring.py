"""The engine publishes each lifecycle event exactly once, in order, with payloads matching the catalog."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest

from tasker import Tasker, TaskRequest
from tasker.events import BaseSubscriber, Event
from tests.support.handlers import chain, template

SERIAL = {"execution": {"max_concurrent_steps": 1}}  # b and c run one after the other: a deterministic order


class Recorder:
    """Subscribes to every catalog event and keeps (name, payload) in publication order."""

    def __init__(self, app: Tasker) -> None:
        self.events: list[Event] = []
        self._lock = threading.Lock()
        for name in app.events.catalog.names():
            app.events.subscribe(name, self)

    def __call__(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)

    def names(self, prefix: str = "") -> list[str]:
        return [e.name for e in self.events if e.name.startswith(prefix)]


def step_attempt(step: str, *, outcome: str = "complete", retry: bool = False) -> list[tuple[str, str | None]]:
    """The events of one step attempt, as (event, step name)."""
    events: list[tuple[str, str | None]] = []
    if retry:
        events.append(("step.before_transition", step))
    events.append(("step.before_transition", step))
    if retry:
        events.append(("step.retry_requested", step))
    events += [("step.execution_requested", step), ("step.before_handle", step), ("step.before_transition", step)]
    if outcome == "complete":
        events.append(("step.completed", step))
    else:
        events += [("step.failed", step), ("observability.step.backoff", step)]
    return events


def iteration(*attempts: list[tuple[str, str | None]]) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = [
        ("workflow.viable_steps_discovered", None),
        ("workflow.steps_execution_started", None),
    ]
    for attempt in attempts:
        out += attempt
    out.append(("workflow.steps_execution_completed", None))
    return out


def created(steps: list[str]) -> list[tuple[str, str | None]]:
    return [
        ("task.initialize_requested", None),
        *[("step.initialize_requested", s) for s in steps],
        ("observability.task.enqueue", None),
    ]


STARTED = [("task.before_transition", None), ("task.start_requested", None)]
FINISHED = [
    ("workflow.no_viable_steps", None),
    ("workflow.task_finalization_started", None),
    ("task.before_transition", None),
    ("task.completed", None),
    ("workflow.task_finalization_completed", None),
]


def observed(recorder: Recorder) -> list[tuple[str, str | None]]:
    return [(e.name, e.payload.get("step_name")) for e in recorder.events]


def run(app: Tasker, tmpl: dict[str, Any]) -> tuple[int, str]:
    app.register_task_template(tmpl)
    task = app.create_task(TaskRequest(name=tmpl["name"], version=tmpl["version"], context={"order_id": 7}))
    return task.task_id, app.run_until_done(task.task_id, timeout=30)


def test_exact_events_of_a_successful_diamond(make_app: Callable[..., Tasker]) -> None:
    app = make_app(SERIAL)
    recorder = Recorder(app)
    _, status = run(app, template("diamond"))
    assert status == "complete"
    expected = (
        created(["a", "b", "c", "d"])
        + STARTED
        + iteration(step_attempt("a"))
        + iteration(step_attempt("b"), step_attempt("c"))
        + iteration(step_attempt("d"))
        + FINISHED
    )
    assert observed(recorder) == expected


def test_exact_events_of_retry_then_succeed(make_app: Callable[..., Tasker]) -> None:
    app = make_app(SERIAL)
    recorder = Recorder(app)
    _, status = run(app, template("flaky", {"a": [], "b": ["a"]}, {"a": {"fail_times": 1}}))
    assert status == "complete"
    expected = (
        created(["a", "b"])
        + STARTED
        + iteration(step_attempt("a", outcome="error"))
        + iteration(step_attempt("a", retry=True))
        + iteration(step_attempt("b"))
        + FINISHED
    )
    assert observed(recorder) == expected
    completed = [e for e in recorder.events if e.name == "step.completed" and e["step_name"] == "a"]
    assert [e["attempt_number"] for e in completed] == [2]
    (retry,) = [e for e in recorder.events if e.name == "step.retry_requested"]
    assert retry["previous_attempts"] == 1 and retry["from_state"] == "error" and retry["to_state"] == "pending"


@pytest.mark.parametrize(
    "tmpl",
    [
        template("diamond"),
        template("flaky", {"a": [], "b": ["a"]}, {"a": {"fail_times": 1}}),
        template("doomed", {"a": [], "b": ["a"]}, {"a": {"fail_times": 9}}, retry_limit=2),
        template("perm", {"a": []}, {"a": {"fail_times": 9, "error": "permanent"}}),
    ],
    ids=["diamond", "retry", "exhausted", "permanent"],
)
def test_every_emitted_payload_matches_its_catalog_schema(
    make_app: Callable[..., Tasker], tmpl: dict[str, Any]
) -> None:
    app = make_app()
    recorder = Recorder(app)
    run(app, tmpl)
    assert recorder.events
    for event in recorder.events:
        schema = app.events.catalog.spec(event.name).json_schema()
        jsonschema.validate(event.to_dict(), schema)


def test_failure_payloads_carry_error_details(app: Tasker) -> None:
    recorder = Recorder(app)
    _, status = run(app, template("doomed", {"a": [], "b": ["a"]}, {"a": {"fail_times": 9}}, retry_limit=2))
    assert status == "error"
    failed = [e for e in recorder.events if e.name == "step.failed"]
    assert [e["attempt_number"] for e in failed] == [1, 2]
    assert failed[-1]["exception_class"] == "RuntimeError" and "boom" in failed[-1]["error_message"]
    assert "RuntimeError" in failed[-1]["backtrace"] and failed[-1]["retry_limit"] == 2
    assert recorder.names("observability.step.max_retries_reached") == ["observability.step.max_retries_reached"]
    (task_failed,) = [e for e in recorder.events if e.name == "task.failed"]
    assert task_failed["error_steps"] == ["a"] and task_failed["failed_steps"] == 1
    assert task_failed["total_steps"] == 2 and task_failed["completion_percentage"] == 0.0


def test_task_completed_payload_has_counts_and_durations(app: Tasker) -> None:
    recorder = Recorder(app)
    task_id, _ = run(app, template("chain", chain(3)))
    (done,) = [e for e in recorder.events if e.name == "task.completed"]
    assert done["task_id"] == task_id and done["total_steps"] == 3 and done["completed_steps"] == 3
    assert done["completion_percentage"] == 100.0 and done["total_execution_duration"] >= 0
    assert done["namespace"] == "default" and done["version"] == "1.0.0"


class Exploding(BaseSubscriber):
    subscribe_to = ("step.completed", "task.completed")

    def handle_step_completed(self, event: Event) -> None:
        raise RuntimeError("subscriber bug")

    def handle_task_completed(self, event: Event) -> None:
        raise RuntimeError("subscriber bug")


def test_a_raising_subscriber_never_breaks_the_workflow(app: Tasker) -> None:
    app.subscribe(Exploding())
    recorder = Recorder(app)
    _, status = run(app, template("diamond"))
    assert status == "complete"
    assert recorder.names("step.completed") == ["step.completed"] * 4
    assert recorder.names("task.completed") == ["task.completed"]
    errors = app.metrics.render("prometheus")
    assert 'tasker_event_subscriber_errors_total{event="step.completed",subscriber="Exploding"} 4.0' in errors


def test_custom_events_from_handlers_and_templates_are_registered_and_published(app: Tasker) -> None:
    app.load_task_templates("examples/order/order_process.yaml")
    got: list[Event] = []
    app.events.subscribe("order.notified", got.append)
    ctx = {"order_id": 1, "email": "a@b.c", "items": [{"sku": "X", "price": 1, "quantity": 1}]}
    task = app.create_task(TaskRequest(name="order_process", namespace="ecommerce", version="1.0.0", context=ctx))
    assert app.run_until_done(task.task_id, timeout=30) == "complete"
    assert [e["task_id"] for e in got] == [task.task_id]
    assert "order.notified" in app.events.catalog.names("custom")


def test_secrets_in_context_are_masked_for_subscribers(app: Tasker) -> None:
    recorder = Recorder(app)
    app.register_task_template(template("secret", {"a": []}))
    app.create_task(
        TaskRequest(
            name="secret",
            version="1.0.0",
            context={"user": {"password": "hunter2", "cards": [{"credit_card": "4111"}]}},
        )
    )
    (event,) = [e for e in recorder.events if e.name == "task.initialize_requested"]
    assert event["task_context"]["user"]["password"] == "[FILTERED]"
    assert event["task_context"]["user"]["cards"][0]["credit_card"] == "[FILTERED]"
