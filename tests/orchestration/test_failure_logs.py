"""Calm failure output: expected failures are one line, an unexpected exception class is traced once."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from tasker import Tasker, TaskRequest
from tests.support.handlers import template

STEPS = "tasker.orchestration.steps"


def _records(caplog: pytest.LogCaptureFixture, level: int, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno == level and text in r.getMessage()]


def test_an_expected_failure_is_one_warning_line_without_traceback(
    make_app: Callable[..., Tasker], caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()
    app.register_task_template(template("flaky", {"a": []}, {"a": {"fail_times": 2, "error": "retryable"}}))
    task = app.create_task(TaskRequest(name="flaky", version="1.0.0", context={}))
    with caplog.at_level(logging.INFO, logger="tasker"):
        assert app.run_until_done(task.task_id) == "complete"
    failures = _records(caplog, logging.WARNING, "failed (attempt")
    assert [r.getMessage().split(" retry at ")[0] for r in failures] == [
        f"step a of task {task.task_id} failed (attempt {n}/3): RetryableError: try later;" for n in (1, 2)
    ]
    assert all(r.exc_info is None for r in failures)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_an_unexpected_exception_class_gets_its_traceback_once(
    make_app: Callable[..., Tasker], caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()
    app.register_task_template(template("boom", {"a": []}, {"a": {"fail_times": 2}}))
    first = app.create_task(TaskRequest(name="boom", version="1.0.0", context={"n": 1}))
    second = app.create_task(TaskRequest(name="boom", version="1.0.0", context={"n": 2}))
    with caplog.at_level(logging.DEBUG, logger="tasker"):
        assert app.run_until_done(first.task_id) == "complete"
        assert app.run_until_done(second.task_id) == "complete"
    traced = _records(caplog, logging.ERROR, "RuntimeError: boom on attempt")
    assert len(traced) == 1 and traced[0].exc_info is not None
    plain = _records(caplog, logging.WARNING, "RuntimeError: boom on attempt")
    assert len(plain) == 3 and all(r.exc_info is None for r in plain)
    assert len([r for r in caplog.records if r.levelno == logging.DEBUG and r.exc_info]) == 3  # at DEBUG


def test_a_finished_task_is_one_info_line(make_app: Callable[..., Tasker], caplog: pytest.LogCaptureFixture) -> None:
    app = make_app()
    app.register_task_template(template("diamond"))
    app.register_task_template(template("doomed", {"a": []}, {"a": {"fail_times": 9, "error": "permanent"}}))
    ok = app.create_task(TaskRequest(name="diamond", version="1.0.0", context={}))
    bad = app.create_task(TaskRequest(name="doomed", version="1.0.0", context={}))
    with caplog.at_level(logging.INFO, logger="tasker.orchestration.coordinator"):
        app.run_until_done(ok.task_id)
        app.run_until_done(bad.task_id)
    mine = [r for r in caplog.records if r.name == "tasker.orchestration.coordinator"]
    assert all(r.levelno == logging.INFO for r in mine)
    finished = [r.getMessage() for r in mine if " complete in " in r.getMessage() or " error in " in r.getMessage()]
    assert len(finished) == 2
    assert finished[0].startswith(f"task {ok.task_id} (default.diamond@1.0.0) complete in ")
    assert finished[1].startswith(f"task {bad.task_id} (default.doomed@1.0.0) error in ")
