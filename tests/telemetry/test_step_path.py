"""The step span path: what the subscriber derives once per task is right for every task, context and value."""

from __future__ import annotations

import contextvars
import logging
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan

from tasker.events import Event
from tasker.telemetry import TelemetrySubscriber
from tasker.telemetry.propagation import with_new_task_span
from tests.telemetry.conftest import new_provider

TRACE = "0af7651916cd43dd8448eb211c80319c"


def trace_context(task_span_id: str, trace_id: Any = TRACE) -> dict[str, Any]:
    return {"trace_id": trace_id, "enqueue_span_id": "1" * 16, "task_span_id": task_span_id, "sampled": True}


def event(name: str, tc: Any, task_id: int, step_id: int, task_name: str = "t", **extra: Any) -> Event:
    payload = {
        "task_id": task_id, "step_id": step_id, "step_name": f"s{step_id}", "task_name": task_name,
        "namespace": "default", "version": "1.0.0", "attempt_number": 0, "retry_limit": 3,
        "started_at": "2024-01-01T12:00:00.000100+00:00", "completed_at": None, "trace_context": tc, **extra,
    }  # fmt: skip
    return Event(name, payload)


def run_step(subscriber: TelemetrySubscriber, tc: Any, task_id: int, step_id: int, task_name: str = "t") -> None:
    subscriber.handle_step_before_handle(event("step.before_handle", tc, task_id, step_id, task_name))
    completed = event("step.completed", tc, task_id, step_id, task_name)
    subscriber.handle_step_completed(Event("step.completed", {**completed.payload, "attempt_number": 1}))


def parent(span: ReadableSpan) -> str:
    assert span.parent is not None
    return f"{span.parent.span_id:016x}"


def test_interleaved_tasks_keep_their_own_attributes_and_parents() -> None:
    provider, exporter = new_provider()
    subscriber = TelemetrySubscriber(tracer_provider=provider)
    first, second = trace_context("2" * 16), trace_context("3" * 16)
    for step_id in range(4):
        run_step(subscriber, first, 1, 10 + step_id, "orders")
        run_step(subscriber, second, 2, 20 + step_id, "refunds")
    spans = exporter.get_finished_spans()
    assert len(spans) == 8
    for span in spans:
        attributes = span.attributes or {}
        task_id = attributes["tasker.task.id"]
        assert attributes["tasker.task.name"] == ("orders" if task_id == 1 else "refunds")
        assert attributes["messaging.destination.name"] == f"default.{attributes['tasker.task.name']}"
        assert attributes["messaging.message.id"] == str(task_id)
        assert attributes["tasker.step.name"] == f"s{attributes['tasker.step.id']}"
        assert parent(span) == ("2" * 16 if task_id == 1 else "3" * 16)
    assert subscriber.open_span_count() == 0
    provider.shutdown()


def test_a_revived_task_hangs_its_steps_under_its_new_task_span() -> None:
    provider, exporter = new_provider()
    subscriber = TelemetrySubscriber(tracer_provider=provider)
    before = trace_context("2" * 16)
    after = with_new_task_span(before)
    assert after is not None
    run_step(subscriber, before, 1, 10)
    run_step(subscriber, after, 1, 10)
    first, second = exporter.get_finished_spans()
    assert parent(first) == "2" * 16
    assert parent(second) == after["task_span_id"] != "2" * 16
    provider.shutdown()


def test_malformed_contexts_make_no_span_and_never_raise() -> None:
    provider, exporter = new_provider()
    subscriber = TelemetrySubscriber(tracer_provider=provider)
    for tc in (trace_context("2" * 16, trace_id=["not", "hashable"]), trace_context("zz"), "garbage", None):
        run_step(subscriber, tc, 1, 10)
        run_step(subscriber, tc, 1, 10)  # again: whatever was remembered about it
    assert exporter.get_finished_spans() == ()
    run_step(subscriber, trace_context("2" * 16), 1, 10)
    assert len(exporter.get_finished_spans()) == 1
    assert subscriber.open_span_count() == 0
    provider.shutdown()


class Opaque:
    """A value that is no OTel attribute type, whose text carries a secret."""

    def __str__(self) -> str:
        return "code 7 token=abc123"


def test_values_that_are_no_attribute_type_become_scrubbed_text() -> None:
    provider, exporter = new_provider()
    subscriber = TelemetrySubscriber(tracer_provider=provider)
    tc = trace_context("2" * 16)
    subscriber.handle_step_before_handle(event("step.before_handle", tc, 1, 10))
    failed = event(
        "step.failed", tc, 1, 10, error_message="boom", exception_class="ValueError", backtrace="",
        retryable=False, error_code=Opaque(),
    )  # fmt: skip
    subscriber.handle_step_failed(Event("step.failed", {**failed.payload, "attempt_number": 1}))
    (span,) = exporter.get_finished_spans()
    assert (span.attributes or {})["tasker.step.error_code"] == "code 7 token=[FILTERED]"
    provider.shutdown()


def test_an_outcome_published_in_a_copy_of_the_attempts_context_ends_the_span_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider, exporter = new_provider()
    subscriber = TelemetrySubscriber(tracer_provider=provider)
    tc = trace_context("2" * 16)
    attempt = contextvars.copy_context()  # as the engine runs a lone step on its own thread
    attempt.run(subscriber.handle_step_before_handle, event("step.before_handle", tc, 1, 10))
    assert attempt.run(lambda: trace.get_current_span().is_recording())
    completed = Event("step.completed", {**event("step.completed", tc, 1, 10).payload, "attempt_number": 1})
    attempt.copy().run(subscriber.handle_step_completed, completed)  # the outcome is published in a copy
    assert len(exporter.get_finished_spans()) == 1
    assert subscriber.open_span_count() == 0
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
    provider.shutdown()


def test_an_outcome_in_the_attempts_own_context_detaches_its_span() -> None:
    provider, exporter = new_provider()
    subscriber = TelemetrySubscriber(tracer_provider=provider)
    run_step(subscriber, trace_context("2" * 16), 1, 10)
    assert not trace.get_current_span().get_span_context().is_valid
    assert len(exporter.get_finished_spans()) == 1
    provider.shutdown()
