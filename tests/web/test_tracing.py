"""A ``traceparent`` on ``POST /api/v1/tasks`` makes the caller's trace the task's: one trace, in memory."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tasker import Tasker
from tasker.telemetry import TelemetrySubscriber
from tasker.web import create_app
from tests.web.conftest import TestClient, register


@pytest.fixture
def provider() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def test_traceparent_becomes_the_parent_of_the_enqueue_span(
    make_app: Callable[..., Tasker], provider: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    tracer_provider, exporter = provider
    app = register(make_app())
    app.subscribe(TelemetrySubscriber(tracer_provider=tracer_provider))
    client = TestClient(create_app(app))
    with tracer_provider.get_tracer("caller").start_as_current_span("caller request") as caller:
        headers: dict[str, str] = {}
        propagate.inject(headers)
    headers["tracestate"] = "vendor=abc"
    response = client.post("/api/v1/tasks", json={"name": "diamond", "version": "1.0.0"}, headers=headers)
    task = response.json()["task"]
    caller_context = caller.get_span_context()
    assert task["trace_id"] == f"{caller_context.trace_id:032x}"
    assert app.run_until_done(task["task_id"]) == "complete"
    spans = exporter.get_finished_spans()
    assert {s.context.trace_id for s in spans} == {caller_context.trace_id}
    names = [s.name for s in spans]
    assert names.count("tasker.step.execution") == 4 and "tasker.task.execution" in names
    (enqueue,) = [s for s in spans if s.name == "tasker.task.enqueue"]
    assert enqueue.parent is not None and enqueue.parent.span_id == caller_context.span_id
    assert enqueue.context.trace_state.get("vendor") == "abc"
    trace_body = client.get(f"/api/v1/tasks/{task['task_id']}/trace").json()
    assert (
        trace_body["trace_id"] == task["trace_id"]
        and trace_body["spans"][0]["span_id"] == f"{enqueue.context.span_id:016x}"
    )


def test_without_traceparent_a_new_trace_starts(make_app: Callable[..., Tasker]) -> None:
    app = register(make_app())
    client = TestClient(create_app(app))
    first = client.post("/api/v1/tasks", json={"name": "diamond", "version": "1.0.0"}).json()["task"]
    second = client.post("/api/v1/tasks", json={"name": "diamond", "version": "1.0.0"}).json()["task"]
    assert first["trace_id"] != second["trace_id"]
    assert trace.get_current_span().get_span_context().is_valid is False
