"""The engine's log records carry the trace and span ids of the step or task they were logged in."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable

import pytest

from tasker.telemetry import TraceContextFilter, install_log_correlation
from tests.support.handlers import template
from tests.telemetry.conftest import Traced, new_provider
from tests.telemetry.test_spans import sid, steps_by_name, tid


def test_engine_records_inside_a_step_carry_its_ids(traced: Traced, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tasker")
    _, status = traced.run(template("diamond"))
    assert status == "complete"
    steps = steps_by_name(traced)
    finished = [r for r in caplog.records if r.name == "tasker.orchestration.steps" and "complete in" in r.getMessage()]
    assert len(finished) == 4
    for record in finished:
        step = str(record.args[0])  # type: ignore[index]
        span = steps[step][0]
        assert (record.trace_id, record.span_id) == (tid(span), sid(span))  # type: ignore[attr-defined]
    (task_span,) = traced.spans("tasker.task.execution")
    for text in ("created with", "started", "complete in"):
        (record,) = [r for r in caplog.records if r.name != "tasker.orchestration.steps" and text in r.getMessage()]
        assert (record.trace_id, record.span_id) == (tid(task_span), sid(task_span)), text  # type: ignore[attr-defined]


def test_filter_on_a_handler_formats_any_record() -> None:
    provider, _ = new_provider()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(TraceContextFilter())
    handler.setFormatter(logging.Formatter("%(trace_id)s %(span_id)s %(message)s"))
    log = logging.getLogger("tests.telemetry.app")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("outside")
        with provider.get_tracer("t").start_as_current_span("work") as span:
            log.warning("inside")
    finally:
        log.removeHandler(handler)
        log.propagate = True
        provider.shutdown()
    context = span.get_span_context()
    assert stream.getvalue().splitlines() == ["0 0 outside", f"{context.trace_id:032x} {context.span_id:016x} inside"]


def test_install_is_idempotent_and_covers_tasker_loggers() -> None:
    install_log_correlation()
    assert install_log_correlation() == 0
    for name in ("tasker", "tasker.orchestration.steps", "tasker.orchestration.coordinator", "tasker.app"):
        assert sum(isinstance(f, TraceContextFilter) for f in logging.getLogger(name).filters) == 1


def test_json_log_format_carries_task_step_attempt_and_ids(make_traced: Callable[..., Traced]) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    saved = [(h, h.formatter) for h in root.handlers]
    root.addHandler(handler)
    logging.getLogger("tasker").setLevel(logging.INFO)
    try:
        traced = make_traced({"logging": {"format": "json"}})
        task_id, status = traced.run(template("diamond", {"a": []}, {"a": {"fail_times": 1}}))
        assert status == "complete"
    finally:
        root.removeHandler(handler)
        for h, formatter in saved:
            h.setFormatter(formatter)
        logging.getLogger("tasker").setLevel(logging.NOTSET)
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    (task_span,) = traced.spans("tasker.task.execution")
    steps = traced.spans("tasker.step.execution")
    about_task = [r for r in records if r["task_id"] == task_id]
    assert {r["correlation_id"] for r in about_task} == {tid(task_span)}
    assert all(r["trace_id"] == tid(task_span) for r in about_task)
    failed = next(r for r in records if "failed (attempt 1/3)" in r["message"])
    assert (failed["level"], failed["step_name"], failed["attempt"]) == ("ERROR", "a", 1)
    assert failed["span_id"] == sid(steps[0]) and "Traceback" in failed["exception"]
    done = next(r for r in records if "complete in" in r["message"] and r["logger"].endswith("steps"))
    assert (done["step_name"], done["attempt"], done["span_id"]) == ("a", 2, sid(steps[1]))
    finished = next(r for r in records if r["logger"].endswith("coordinator") and "complete in" in r["message"])
    assert finished["step_name"] is None and finished["span_id"] == sid(task_span)
