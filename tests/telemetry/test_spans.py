"""The spans of a task: tree, attributes, retries, handler spans, upstream context, link mode, secrets, leaks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import select

from tasker import Tasker
from tasker.events import Event
from tasker.models import Task
from tests.support.handlers import template
from tests.telemetry.conftest import Traced, new_provider
from tests.telemetry.handlers import LEAKY, TRACED

VALID_TRACE = "0af7651916cd43dd8448eb211c80319c"
VALID_PARENT = "b7ad6b7169203331"
VALID_TRACEPARENT = f"00-{VALID_TRACE}-{VALID_PARENT}-01"


def stored_trace_context(app: Tasker, task_id: int) -> dict[str, Any]:
    """The trace context persisted with the task."""
    with app.db.read() as session:
        tc = session.scalar(select(Task.trace_context).where(Task.task_id == task_id))
    assert isinstance(tc, dict)
    return tc


def sid(span: ReadableSpan) -> str:
    assert span.context is not None
    return f"{span.context.span_id:016x}"


def tid(span: ReadableSpan) -> str:
    assert span.context is not None
    return f"{span.context.trace_id:032x}"


def parent_id(span: ReadableSpan) -> str | None:
    return f"{span.parent.span_id:016x}" if span.parent is not None else None


def one(spans: list[ReadableSpan]) -> ReadableSpan:
    assert len(spans) == 1, [s.name for s in spans]
    return spans[0]


def steps_by_name(traced: Traced) -> dict[str, list[ReadableSpan]]:
    out: dict[str, list[ReadableSpan]] = {}
    for span in traced.spans("tasker.step.execution"):
        out.setdefault(str((span.attributes or {})["tasker.step.name"]), []).append(span)
    for attempts in out.values():
        attempts.sort(key=lambda s: int((s.attributes or {})["tasker.step.attempt"]))  # type: ignore[arg-type]
    return out


def assert_typed(attributes: Mapping[str, Any], expected: Mapping[str, Any]) -> None:
    """Same keys, values and exact types (an int attribute must not arrive as a string or a bool)."""
    assert dict(attributes) == dict(expected)
    for key, value in expected.items():
        assert type(attributes[key]) is type(value), (key, attributes[key])


def task_attributes(task_id: int, name: str, operation: tuple[str, str]) -> dict[str, Any]:
    return {
        "tasker.task.id": task_id,
        "tasker.task.name": name,
        "tasker.task.namespace": "default",
        "tasker.task.version": "1.0.0",
        "messaging.system": "tasker",
        "messaging.operation.type": operation[0],
        "messaging.operation.name": operation[1],
        "messaging.destination.name": f"default.{name}",
        "messaging.message.id": str(task_id),
    }


# -- the tree ---------------------------------------------------------------------------------------------------


def test_diamond_gives_one_trace_with_the_exact_span_tree(traced: Traced) -> None:
    task_id, status = traced.run(template("diamond"))
    assert status == "complete"
    tc = stored_trace_context(traced.app, task_id)
    spans = traced.spans()
    assert sorted(s.name for s in spans) == [
        "tasker.step.execution",
        "tasker.step.execution",
        "tasker.step.execution",
        "tasker.step.execution",
        "tasker.task.enqueue",
        "tasker.task.execution",
    ]
    assert {tid(s) for s in spans} == {tc["trace_id"]}

    enqueue = one(traced.spans("tasker.task.enqueue"))
    assert enqueue.kind is SpanKind.PRODUCER and enqueue.parent is None
    assert sid(enqueue) == tc["enqueue_span_id"]
    assert_typed(
        enqueue.attributes or {}, {**task_attributes(task_id, "diamond", ("send", "enqueue")), "tasker.queue": "inline"}
    )

    task = one(traced.spans("tasker.task.execution"))
    assert task.kind is SpanKind.CONSUMER
    assert sid(task) == tc["task_span_id"] and parent_id(task) == tc["enqueue_span_id"]
    assert task.status.status_code is StatusCode.OK
    assert_typed(
        task.attributes or {},
        {
            **task_attributes(task_id, "diamond", ("process", "process")),
            "tasker.task.status": "complete",
            "tasker.task.total_steps": 4,
            "tasker.task.completed_steps": 4,
            "tasker.task.failed_steps": 0,
        },
    )

    steps = steps_by_name(traced)
    assert sorted(steps) == ["a", "b", "c", "d"]
    view = traced.app.get_task(task_id)
    step_ids = {s.name: s.step_id for s in view.steps}
    for name, (span,) in steps.items():
        assert span.kind is SpanKind.INTERNAL
        assert span.parent is not None and span.parent.is_remote  # hangs off the stored id, in any process
        assert parent_id(span) == tc["task_span_id"]
        assert span.status.status_code is StatusCode.OK and not span.events
        assert_typed(
            span.attributes or {},
            {
                **task_attributes(task_id, "diamond", ("process", "process")),
                "tasker.step.id": step_ids[name],
                "tasker.step.name": name,
                "tasker.step.attempt": 1,
                "tasker.step.retry_limit": 3,
            },
        )
    # real start/end of each attempt, in DAG order, inside the task span
    a, b, c, d = (steps[n][0] for n in "abcd")
    assert all(s.start_time is not None and s.end_time is not None for s in (a, b, c, d, task, enqueue))
    assert a.end_time < b.start_time and a.end_time < c.start_time  # type: ignore[operator]
    assert max(b.end_time, c.end_time) < d.start_time  # type: ignore[operator,type-var]
    assert all(s.end_time > s.start_time for s in (a, b, c, d))  # type: ignore[operator]
    assert task.start_time <= a.start_time and task.end_time >= d.end_time  # type: ignore[operator]
    assert enqueue.start_time <= task.start_time  # type: ignore[operator]


def test_retry_then_succeed_gives_two_attempt_spans_under_the_task_span(traced: Traced) -> None:
    task_id, status = traced.run(template("flaky", {"a": [], "b": ["a"]}, {"a": {"fail_times": 1}}))
    assert status == "complete"
    tc = stored_trace_context(traced.app, task_id)
    first, second = steps_by_name(traced)["a"]
    assert [(s.attributes or {})["tasker.step.attempt"] for s in (first, second)] == [1, 2]
    assert {parent_id(first), parent_id(second)} == {tc["task_span_id"]}
    assert {tid(first), tid(second)} == {tc["trace_id"]}

    assert first.status.status_code is StatusCode.ERROR
    assert first.status.description == "boom on attempt 1"
    assert (first.attributes or {})["error.type"] == "RuntimeError"
    exception, backoff = first.events
    assert exception.name == "exception"
    assert (exception.attributes or {})["exception.type"] == "RuntimeError"
    assert (exception.attributes or {})["exception.message"] == "boom on attempt 1"
    assert "RuntimeError: boom on attempt 1" in str((exception.attributes or {})["exception.stacktrace"])
    assert backoff.name == "tasker.step.backoff"
    assert dict(backoff.attributes or {}) == {
        "tasker.step.backoff.seconds": 0.0,
        "tasker.step.backoff.type": "exponential",
    }
    assert backoff.timestamp == first.end_time

    assert second.status.status_code is StatusCode.OK and "error.type" not in (second.attributes or {})
    (retry,) = second.events
    assert retry.name == "tasker.step.retry"
    assert dict(retry.attributes or {}) == {
        "tasker.step.previous_attempts": 1,
        "tasker.step.retry_reason": "Step execution failed",
    }
    assert first.end_time <= second.start_time  # type: ignore[operator]
    task = one(traced.spans("tasker.task.execution"))
    assert task.status.status_code is StatusCode.OK and sid(task) == tc["task_span_id"]


def test_failed_task_and_exhausted_step_are_errors(traced: Traced) -> None:
    _, status = traced.run(template("doomed", {"a": [], "b": ["a"]}, {"a": {"fail_times": 9}}, retry_limit=2))
    assert status == "error"
    first, last = steps_by_name(traced)["a"]
    assert "tasker.step.retries_exhausted" not in [e.name for e in first.events]
    assert [e.name for e in last.events] == ["tasker.step.retry", "exception", "tasker.step.retries_exhausted"]
    assert "b" not in steps_by_name(traced)
    task = one(traced.spans("tasker.task.execution"))
    assert task.status.status_code is StatusCode.ERROR
    assert task.status.description == "steps_in_error_state: a"
    attributes = task.attributes or {}
    assert attributes["error.type"] == "steps_in_error_state" and list(attributes["tasker.task.error_steps"]) == ["a"]  # type: ignore[arg-type]


def test_cancelled_task_emits_its_task_span_once(traced: Traced) -> None:
    task_id = traced.create(template("diamond"))
    assert traced.app.cancel_task(task_id) == "cancelled"
    task = one(traced.spans("tasker.task.execution"))
    assert task.status.status_code is StatusCode.UNSET
    assert (task.attributes or {})["tasker.task.status"] == "cancelled"


def test_span_started_inside_process_is_a_child_of_the_step_span(traced: Traced) -> None:
    task_id, status = traced.run(
        template("traced", {"a": [], "b": ["a"]}, {"a": {"provider": traced.name}}, handler=TRACED)
    )
    assert status == "complete"
    handler_span = one(traced.spans("handler.http_call"))
    step_a = steps_by_name(traced)["a"][0]
    assert handler_span.parent is not None and not handler_span.parent.is_remote
    assert parent_id(handler_span) == sid(step_a) and tid(handler_span) == tid(step_a)
    results = {s.name: s.results for s in traced.app.get_task(task_id).steps}
    assert results["a"] == {"trace_id": tid(step_a), "span_id": sid(handler_span)}
    # the step's context was detached again: nothing is current in the calling thread
    assert not trace.get_current_span().get_span_context().is_valid


# -- upstream context -------------------------------------------------------------------------------------------


def test_current_span_around_create_task_parents_the_enqueue_span(traced: Traced) -> None:
    outer_provider, outer_exporter = new_provider()
    tracer = outer_provider.get_tracer("web")
    with tracer.start_as_current_span("POST /orders") as request_span:
        task_id = traced.create(template("diamond"))
    traced.app.run_until_done(task_id)
    enqueue = one(traced.spans("tasker.task.enqueue"))
    request_context = request_span.get_span_context()
    assert enqueue.parent is not None and enqueue.parent.span_id == request_context.span_id
    assert {tid(s) for s in traced.spans()} == {f"{request_context.trace_id:032x}"}
    assert len(outer_exporter.get_finished_spans()) == 1
    outer_provider.shutdown()


def test_explicit_carrier_parents_the_enqueue_span(traced: Traced) -> None:
    _, status = traced.run(template("diamond"), trace_context={"traceparent": VALID_TRACEPARENT, "tracestate": "k=v"})
    assert status == "complete"
    enqueue = one(traced.spans("tasker.task.enqueue"))
    assert enqueue.parent is not None and enqueue.parent.is_remote and parent_id(enqueue) == VALID_PARENT
    assert {tid(s) for s in traced.spans()} == {VALID_TRACE}


MALFORMED: dict[str, dict[str, Any]] = {
    "version ff": {"traceparent": f"ff-{VALID_TRACE}-{VALID_PARENT}-01"},
    "zero trace id": {"traceparent": f"00-{'0' * 32}-{VALID_PARENT}-01"},
    "zero span id": {"traceparent": f"00-{VALID_TRACE}-{'0' * 16}-01"},
    "bad hex": {"traceparent": f"00-{VALID_TRACE[:-1]}g-{VALID_PARENT}-01"},
    "uppercase hex": {"traceparent": f"00-{VALID_TRACE.upper()}-{VALID_PARENT.upper()}-01"},
    "v00 with extra field": {"traceparent": f"{VALID_TRACEPARENT}-extra"},
    "short": {"traceparent": "00-abc-def-01"},
    "garbage": {"traceparent": "garbage"},
    "empty": {"traceparent": ""},
    "bytes garbage": {"traceparent": b"\xff\xfe\x00\x01 not a header"},
    "int value": {"traceparent": 12345},
    "nested dict": {"traceparent": {"trace_id": VALID_TRACE}},
    "too long": {"traceparent": VALID_TRACEPARENT + " " * 600},
    "tracestate only": {"tracestate": "k=v"},
}


@pytest.mark.parametrize("carrier", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_carrier_starts_a_fresh_trace_and_never_fails_the_task(
    traced: Traced, carrier: dict[str, Any]
) -> None:
    outer_provider, _ = new_provider()
    with outer_provider.get_tracer("web").start_as_current_span("ambient") as ambient:
        task_id = traced.create(template("diamond"), trace_context=carrier)
    assert traced.app.run_until_done(task_id) == "complete"
    enqueue = one(traced.spans("tasker.task.enqueue"))
    assert enqueue.parent is None  # a new root: neither the bad carrier nor the ambient span
    trace_ids = {tid(s) for s in traced.spans()}
    assert len(trace_ids) == 1 and trace_ids.isdisjoint({VALID_TRACE, f"{ambient.get_span_context().trace_id:032x}"})
    assert len(traced.spans()) == 6
    outer_provider.shutdown()


ACCEPTED: dict[str, dict[str, Any]] = {
    # HTTP header names are case-insensitive; raw header bytes (Kafka, AMQP) are decoded.
    "uppercase key": {"TRACEPARENT": VALID_TRACEPARENT},
    "mixed-case key": {"Traceparent": VALID_TRACEPARENT},
    "bytes value": {"traceparent": VALID_TRACEPARENT.encode()},
    "invalid tracestate": {"traceparent": VALID_TRACEPARENT, "tracestate": "Bad Key=1,,=="},
    "future version": {"traceparent": f"cc-{VALID_TRACE}-{VALID_PARENT}-01-more"},
}


@pytest.mark.parametrize("carrier", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_tolerable_carrier_variants_continue_the_trace(traced: Traced, carrier: dict[str, Any]) -> None:
    _, status = traced.run(template("diamond"), trace_context=carrier)
    assert status == "complete"
    assert parent_id(one(traced.spans("tasker.task.enqueue"))) == VALID_PARENT
    assert {tid(s) for s in traced.spans()} == {VALID_TRACE}


# -- link mode ----------------------------------------------------------------------------------------------------


def test_link_mode_task_trace_is_a_new_root_linked_to_the_enqueue_span(make_traced: Callable[..., Traced]) -> None:
    traced = make_traced(propagation="link")
    task_id, status = traced.run(
        template("traced", {"a": [], "b": ["a"]}, {"b": {"provider": traced.name}}, handler=TRACED),
        trace_context={"traceparent": VALID_TRACEPARENT},
    )
    assert status == "complete"
    tc = stored_trace_context(traced.app, task_id)
    enqueue = one(traced.spans("tasker.task.enqueue"))
    assert tid(enqueue) == tc["trace_id"] == VALID_TRACE and parent_id(enqueue) == VALID_PARENT

    task = one(traced.spans("tasker.task.execution"))
    assert task.parent is None and tid(task) != tc["trace_id"]
    assert sid(task) == tc["task_span_id"]
    (link,) = task.links
    assert f"{link.context.trace_id:032x}" == tc["trace_id"] and f"{link.context.span_id:016x}" == tc["enqueue_span_id"]
    assert tid(task)[16:] == tc["trace_id"][16:]  # same low 64 bits: ratio samplers agree with the stored decision

    steps = traced.spans("tasker.step.execution")
    assert len(steps) == 2
    assert {tid(s) for s in steps} == {tid(task)} and {parent_id(s) for s in steps} == {sid(task)}
    handler_span = one(traced.spans("handler.http_call"))
    assert parent_id(handler_span) == sid(steps_by_name(traced)["b"][0]) and tid(handler_span) == tid(task)


# -- head sampling in one process -----------------------------------------------------------------------------------


def test_unsampled_task_records_nothing_not_even_the_handlers_spans(make_traced: Callable[..., Traced]) -> None:
    traced = make_traced({"telemetry": {"sampling_ratio": 0.0}})
    task_id, status = traced.run(
        template("traced", {"a": [], "b": ["a"]}, {"a": {"provider": traced.name}}, handler=TRACED)
    )
    assert status == "complete"
    assert stored_trace_context(traced.app, task_id)["sampled"] is False
    assert traced.spans() == []
    # the handler still ran inside the task's (non-recording) context
    results = {s.name: s.results for s in traced.app.get_task(task_id).steps}
    assert results["a"]["trace_id"] == stored_trace_context(traced.app, task_id)["trace_id"]
    assert traced.subscriber.open_span_count() == 0


# -- sensitive data -----------------------------------------------------------------------------------------------


def exported_text(spans: list[ReadableSpan]) -> str:
    """Every attribute, event attribute, link attribute and status description, as one string."""
    parts: list[str] = []
    for span in spans:
        parts += [span.name, str(span.status.description)]
        parts += [f"{k}={v!r}" for k, v in (span.attributes or {}).items()]
        for event in span.events:
            parts += [event.name, *(f"{k}={v!r}" for k, v in (event.attributes or {}).items())]
        for link in span.links:
            parts += [f"{k}={v!r}" for k, v in (link.attributes or {}).items()]
    return "\n".join(parts)


def test_secrets_never_reach_exported_spans(traced: Traced) -> None:
    context = {"password": "hunter2", "api_token": "tok-very-secret-1", "order_id": 1}
    _, status = traced.run(template("leaky", {"a": []}, handler=LEAKY, retry_limit=2), context=context)
    assert status == "error"
    text = exported_text(traced.spans())
    assert "hunter2" not in text and "tok-very-secret-1" not in text
    failed = steps_by_name(traced)["a"][0]
    assert failed.status.description == (
        "login failed: password=[FILTERED] {'api_token': '[FILTERED]'} via https://bob:[FILTERED]@db.example"
    )


def test_custom_filter_parameters_apply_to_spans(make_traced: Callable[..., Traced]) -> None:
    traced = make_traced({"events": {"filter_parameters": ["pin"], "filter_mask": "***"}})
    _, status = traced.run(template("leaky", {"a": []}, handler=LEAKY, retry_limit=1), context={"password": "pin=1234"})
    assert status == "error"
    text = exported_text(traced.spans())
    assert "1234" not in text and "pin=***" in text


# -- no leaks, isolation ----------------------------------------------------------------------------------------------


def test_subscriber_holds_no_span_after_tasks_finish(traced: Traced) -> None:
    traced.run(template("flaky", {"a": [], "b": ["a"], "c": ["a"]}, {"b": {"fail_times": 1}}))
    traced.run(template("doomed", {"a": []}, {"a": {"fail_times": 9}}, retry_limit=2))
    assert traced.subscriber._steps == {} and traced.subscriber._retries == {}
    assert traced.subscriber.open_span_count() == 0
    assert not trace.get_current_span().get_span_context().is_valid


def step_event(name: str, tc: dict[str, Any], task_id: int = 1, attempt_number: int = 0, **extra: Any) -> Event:
    payload = {
        "task_id": task_id, "step_id": 7, "step_name": "s", "task_name": "t", "namespace": "default",
        "version": "1.0.0", "attempt_number": attempt_number, "retry_limit": 3,
        "started_at": "2024-01-01T12:00:00.000100+00:00", "completed_at": None, "trace_context": tc, **extra,
    }  # fmt: skip
    return Event(name, payload)


TC = {"trace_id": VALID_TRACE, "enqueue_span_id": "1" * 16, "task_span_id": "2" * 16, "sampled": True, "parent": {}}


def test_attempt_whose_outcome_never_comes_is_ended_when_the_batch_ends() -> None:
    from tasker.telemetry import TelemetrySubscriber

    provider, exporter = new_provider()
    subscriber = TelemetrySubscriber(tracer_provider=provider)
    subscriber.handle_step_before_handle(step_event("step.before_handle", TC))
    assert trace.get_current_span().get_span_context().span_id != 0  # current while "process()" runs
    assert subscriber.open_span_count() == 1
    # the claim was lost: no step.completed / step.failed; the pass ends its batch
    subscriber.handle_workflow_steps_execution_completed(Event("workflow.steps_execution_completed", {"task_id": 1}))
    assert subscriber.open_span_count() == 0
    assert not trace.get_current_span().get_span_context().is_valid  # detached in this thread
    (span,) = exporter.get_finished_spans()
    assert (span.attributes or {})["tasker.step.outcome"] == "unknown"
    assert [e.name for e in span.events] == ["tasker.step.abandoned"]
    provider.shutdown()


def test_failure_seen_without_its_start_gets_a_span_from_the_claim_time() -> None:
    from tasker.telemetry import TelemetrySubscriber

    provider, exporter = new_provider()
    subscriber = TelemetrySubscriber(tracer_provider=provider)
    subscriber.handle_step_failed(
        step_event(
            "step.failed", TC, attempt_number=1, error_message="claim expired", exception_class="LeaseExpired",
            backtrace="", retryable=True,
        )
    )  # fmt: skip
    (span,) = exporter.get_finished_spans()
    assert span.start_time == 1704110400000100000 and span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "LeaseExpired" and parent_id(span) == "2" * 16
    assert subscriber.open_span_count() == 0
    provider.shutdown()


def test_two_apps_with_two_providers_do_not_see_each_others_spans(make_traced: Callable[..., Traced]) -> None:
    first, second = make_traced(), make_traced()
    first_id, _ = first.run(template("diamond"))
    second_id, _ = second.run(template("flaky", {"a": []}))
    assert {(s.attributes or {})["tasker.task.id"] for s in first.spans()} == {first_id}
    assert {(s.attributes or {})["tasker.task.id"] for s in second.spans()} == {second_id}
    assert {(s.attributes or {})["tasker.task.name"] for s in first.spans()} == {"diamond"}
    assert {(s.attributes or {})["tasker.task.name"] for s in second.spans()} == {"flaky"}
    assert {tid(s) for s in first.spans()}.isdisjoint({tid(s) for s in second.spans()})
    assert len(first.spans()) == 6 and len(second.spans()) == 3


def test_malformed_carrier_warning_does_not_log_the_other_headers(
    traced: Traced, caplog: pytest.LogCaptureFixture
) -> None:
    headers = {"traceparent": "garbage", "authorization": "Bearer s3cr3t-token", "cookie": "session=abc123"}
    traced.create(template("diamond"), trace_context=headers)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "starting a new trace" in logged and "garbage" in logged
    assert "s3cr3t-token" not in logged and "abc123" not in logged


def test_public_names_are_pinned() -> None:
    import tasker.telemetry

    assert sorted(tasker.telemetry.__all__) == [
        "AppTelemetry",
        "TailSamplingProcessor",
        "TelemetrySubscriber",
        "TraceContextFilter",
        "build_tracer_provider",
        "install_log_correlation",
        "render_waterfall",
    ]


def test_a_forked_child_forgets_the_parents_open_attempts() -> None:
    from tasker.telemetry import TelemetrySubscriber, sampling, subscriber

    provider, exporter = new_provider()
    sub = TelemetrySubscriber(tracer_provider=provider)
    sub.handle_step_before_handle(step_event("step.before_handle", TC))
    token = sub._steps[(7, 1)].token
    subscriber._forget_in_child()  # what os.register_at_fork runs in the child
    sampling._forget_in_child()
    assert sub.open_span_count() == 0
    from opentelemetry import context as otel_context

    otel_context.detach(token)  # type: ignore[arg-type]  # (this is not really a child: restore the context)
    assert exporter.get_finished_spans() == ()
    provider.shutdown()
