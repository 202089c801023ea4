"""Whatever user code raises, a pass ends with its claims released or its outcome recorded."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select

from tasker import Tasker, TaskRequest
from tasker.models import Task
from tasker.models.base import utcnow
from tests.support.faults import INTERRUPTIONS, Interrupting
from tests.support.handlers import template

FAULT = "tests.support.faults:Fault"


def _claim_expiry(app: Tasker, task_id: int) -> object:
    with app.db.read() as session:
        return session.scalar(select(Task.claim_expires_at).where(Task.task_id == task_id))


@pytest.mark.parametrize("kind", ["cancelled", "generator_exit"])
def test_cancelled_and_generator_exit_are_retryable_step_failures(make_app: Callable[..., Tasker], kind: str) -> None:
    app = make_app()
    app.register_task_template(template("once", {"a": []}, {"a": {"fault": kind, "times": 1}}, handler=FAULT))
    task = app.create_task(TaskRequest(name="once", version="1.0.0", context={}))
    assert app.run_until_done(task.task_id) == "complete"
    step = app.get_task(task.task_id).step("a")
    assert step.attempts == 2 and step.results == {"ok": True, "attempt": 2}


@pytest.mark.parametrize("kind", ["keyboard_interrupt", "system_exit"])
def test_an_interrupting_handler_is_recorded_released_and_reraised(make_app: Callable[..., Tasker], kind: str) -> None:
    app = make_app()
    app.register_task_template(template("stop", {"a": []}, {"a": {"fault": kind, "times": 1}}, handler=FAULT))
    task = app.create_task(TaskRequest(name="stop", version="1.0.0", context={}))
    with pytest.raises(INTERRUPTIONS[kind]):
        app.run_task(task.task_id)
    _assert_released_at_once(app, make_app, task.task_id, kind)


@pytest.mark.parametrize("kind", ["keyboard_interrupt", "system_exit"])
def test_an_interrupting_subscriber_is_recorded_released_and_reraised(
    make_app: Callable[..., Tasker], kind: str
) -> None:
    app = make_app()
    app.register_task_template(template("stop", {"a": []}, handler=FAULT))
    app.subscribe(Interrupting(config={"raise": kind, "times": 1}))
    task = app.create_task(TaskRequest(name="stop", version="1.0.0", context={}))
    with pytest.raises(INTERRUPTIONS[kind]):
        app.run_task(task.task_id)
    _assert_released_at_once(app, make_app, task.task_id, kind)


def _assert_released_at_once(app: Tasker, make_app: Callable[..., Tasker], task_id: int, kind: str) -> None:
    step = app.get_task(task_id).step("a")
    assert step.status == "error" and step.in_process is False and step.attempts == 1  # the attempt is recorded
    assert step.results["error_class"] == INTERRUPTIONS[kind].__name__ and step.retryable is True
    expiry = _claim_expiry(app, task_id)
    assert expiry is not None and expiry <= utcnow()  # the task claim is released, not left to its lease
    other = make_app({"execution": {"step_lease_seconds": 300}})
    other.register_task_template(template("stop", {"a": []}, handler=FAULT))
    assert other.run_until_done(task_id, timeout=10) == "complete"  # another runner goes on at once


@pytest.mark.parametrize("kind", ["cancelled", "generator_exit"])
def test_a_subscriber_raising_cancelled_or_generator_exit_is_isolated(
    make_app: Callable[..., Tasker], kind: str
) -> None:
    app = make_app()
    app.register_task_template(template("calm", {"a": []}, handler=FAULT))
    app.subscribe(Interrupting(config={"raise": kind, "times": 1}))
    task = app.create_task(TaskRequest(name="calm", version="1.0.0", context={}))
    assert app.run_until_done(task.task_id) == "complete"
    assert app.get_task(task.task_id).step("a").attempts == 1
