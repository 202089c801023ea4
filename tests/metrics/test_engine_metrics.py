"""Metrics recorded directly by the engine during real runs (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from tasker import Tasker, TaskRequest
from tasker.events import BaseSubscriber, Event
from tests.support.handlers import template

LABELS = {"namespace": "default", "task": "diamond", "version": "1.0.0"}
ALLOWED_LABELS = {"namespace", "task", "version", "step", "status", "subscriber", "event", "kind", "le"}


def value(app: Tasker, name: str, **labels: str) -> float | None:
    return app.metrics.registry.get_sample_value(name, {**LABELS, **labels} if "subscriber" not in labels else labels)


def run_diamond_with_one_retry(app: Tasker) -> int:
    app.register_task_template(template("diamond", configs={"b": {"fail_times": 1}}))
    task = app.create_task(TaskRequest(name="diamond", version="1.0.0", context={"x": 1}))
    assert app.run_until_done(task.task_id, timeout=30) == "complete"
    return task.task_id


def test_exact_engine_metrics_after_a_diamond_with_one_retry(app: Tasker) -> None:
    run_diamond_with_one_retry(app)
    assert value(app, "tasker_tasks_created_total") == 1
    assert value(app, "tasker_tasks_finished_total", status="complete") == 1
    assert value(app, "tasker_task_duration_seconds_count", status="complete") == 1
    assert value(app, "tasker_task_queue_wait_seconds_count") == 1
    assert value(app, "tasker_tasks_in_progress") is None  # no unfinished task of the template
    assert app.metrics.registry.get_sample_value("tasker_database_up", {}) == 1
    for step in ("a", "c", "d"):
        assert value(app, "tasker_step_executions_total", step=step, status="complete") == 1
        assert value(app, "tasker_step_executions_total", step=step, status="error") is None
        assert value(app, "tasker_step_duration_seconds_count", step=step, status="complete") == 1
    assert value(app, "tasker_step_executions_total", step="b", status="error") == 1
    assert value(app, "tasker_step_executions_total", step="b", status="complete") == 1
    assert value(app, "tasker_step_duration_seconds_count", step="b", status="error") == 1
    assert value(app, "tasker_step_retries_total", step="b") == 1
    assert value(app, "tasker_step_retries_total", step="a") == 0  # the series exists (every process that runs a step has it), never incremented
    assert value(app, "tasker_step_retries_exhausted_total", step="b") == 0


def test_exhausted_retries_and_failed_tasks_are_counted(app: Tasker) -> None:
    app.register_task_template(template("diamond", {"a": []}, {"a": {"fail_times": 9}}, retry_limit=2))
    task = app.create_task(TaskRequest(name="diamond", version="1.0.0", context={"x": 1}))
    assert app.run_until_done(task.task_id, timeout=30) == "error"
    assert value(app, "tasker_step_executions_total", step="a", status="error") == 2
    assert value(app, "tasker_step_retries_total", step="a") == 1
    assert value(app, "tasker_step_retries_exhausted_total", step="a") == 1
    assert value(app, "tasker_tasks_finished_total", status="error") == 1
    assert value(app, "tasker_tasks_in_progress") == 0
    assert value(app, "tasker_tasks", status="error") == 1


def test_openmetrics_of_a_real_run_parses_strictly_and_has_no_ids(app: Tasker) -> None:
    task_id = run_diamond_with_one_retry(app)
    step_ids = {str(s.step_id) for s in app.get_task(task_id).steps} | {str(task_id)}
    families = list(text_string_to_metric_families(app.metrics.render("openmetrics")))
    names = {f.name for f in families}
    assert {"tasker_tasks_created", "tasker_step_executions", "tasker_step_duration_seconds"} <= names
    for family in families:
        for sample in family.samples:
            assert set(sample.labels) <= ALLOWED_LABELS, sample
            if family.name.startswith("tasker_"):
                assert not set(sample.labels.values()) & step_ids, sample


def test_a_raising_subscriber_does_not_stop_engine_metrics(app: Tasker) -> None:
    class Broken(BaseSubscriber):
        subscribe_to = ("step.completed", "task.completed", "step.failed")

        def handle_step_completed(self, event: Event) -> None:
            raise ValueError("bug")

        handle_task_completed = handle_step_completed
        handle_step_failed = handle_step_completed

    app.subscribe(Broken())
    run_diamond_with_one_retry(app)
    assert value(app, "tasker_tasks_finished_total", status="complete") == 1
    assert value(app, "tasker_step_retries_total", step="b") == 1
    errors = app.metrics.registry.get_sample_value(
        "tasker_event_subscriber_errors_total", {"subscriber": "Broken", "event": "step.completed"}
    )
    assert errors == 4


def test_metrics_disabled_engine_still_runs(make_app: Callable[..., Tasker]) -> None:
    app = make_app({"metrics": {"enabled": False}})
    run_diamond_with_one_retry(app)
    assert app.metrics.enabled is False


def points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    out: dict[str, list[Any]] = {}
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                out.setdefault(metric.name, []).extend(metric.data.data_points)
    return out


def test_otel_messaging_metrics_from_a_real_run(make_app: Callable[..., Tasker]) -> None:
    reader = InMemoryMetricReader()
    app = make_app(
        {"metrics": {"worker_name": "blue"}}, meter_provider=MeterProvider(metric_readers=[reader]), worker_id="h:1"
    )
    run_diamond_with_one_retry(app)
    got = points(reader)
    (sent,) = got["messaging.client.sent.messages"]
    assert sent.value == 1 and sent.attributes["messaging.destination.name"] == "default.diamond"
    assert sent.attributes["messaging.system"] == "tasker" and sent.attributes["messaging.operation.name"] == "send"
    consumed = {p.attributes["tasker.status"]: p.value for p in got["messaging.client.consumed.messages"]}
    assert consumed == {"ok": 4, "error": 1}
    durations = {dict(p.attributes).get("error.type"): p for p in got["messaging.process.duration"]}
    assert durations[None].count == 4 and durations["RuntimeError"].count == 1
    assert durations[None].attributes["tasker.status"] == "ok"
    assert durations["RuntimeError"].attributes["tasker.status"] == "error"
    assert list(durations[None].explicit_bounds) == [
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 20, 30, 60, 120, 300, 600,
    ]  # fmt: skip
    for point in [*got["messaging.client.consumed.messages"], *got["messaging.process.duration"]]:
        assert point.attributes["messaging.destination.partition.id"] == "blue"  # the configured name, not h:1
