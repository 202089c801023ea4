"""Operator operations through the public API: ``app.list_tasks`` and ``app.retry_task``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from tasker import Tasker, TaskRequest
from tasker.errors import StateError, TaskNotFoundError, TaskNotRetryableError, ValidationError
from tasker.events import Event
from tasker.models import WorkflowStep, WorkflowStepTransition
from tasker.models.queries import TaskFilter, task_page_query
from tests.support.handlers import FLAGGED, template
from tests.support.history import task_log
from tests.support.plans import query_plan


def failing_template(name: str, flag: Path, error: str = "exception", *, namespace: str = "ops") -> dict:
    """a -> b where ``b`` fails while ``flag`` exists (two attempts; ``permanent`` fails at once)."""
    tmpl = template(
        name, {"a": [], "b": ["a"]}, {"a": {"flag": "/nonexistent"}, "b": {"flag": str(flag), "error": error}},
        namespace=namespace, retry_limit=2, handler=FLAGGED,
    )  # fmt: skip
    return tmpl


def start(app: Tasker, tmpl: dict, **context: object) -> int:
    return app.create_task(
        TaskRequest(name=tmpl["name"], namespace=tmpl["namespace_name"], version=tmpl["version"], context=context)
    ).task_id


@pytest.fixture
def flag(tmp_path: Path) -> Path:
    path = tmp_path / "failing"
    path.touch()
    return path


def test_list_tasks_newest_first_with_filters_counts_and_keyset(app: Tasker, flag: Path) -> None:
    ok = template("ok", {"a": [], "b": ["a"]}, {"a": {}, "b": {}}, namespace="ops")
    bad = failing_template("bad", flag)
    other = template("ok", {"a": []}, namespace="billing", version="2.0.0")
    for tmpl in (ok, bad, other):
        app.register_task_template(tmpl)
    done = start(app, ok, n=1)
    failed = start(app, bad, n=2)
    pending = start(app, other, n=3)
    assert app.run_until_done(done) == "complete"
    assert app.run_until_done(failed) == "error"

    views = app.list_tasks()
    assert [v.task_id for v in views] == [pending, failed, done]
    by_id = {v.task_id: v for v in views}
    assert (by_id[done].steps_total, by_id[done].steps_complete, by_id[done].status) == (2, 2, "complete")
    assert (by_id[failed].steps_total, by_id[failed].steps_complete) == (2, 1)
    assert by_id[failed].last_error == "gateway down: password=[FILTERED]"  # first line only, secret masked
    assert by_id[done].last_error is None and by_id[done].steps == []
    assert by_id[done].duration is not None and by_id[done].duration >= 0
    assert by_id[done].completed_at is not None and by_id[pending].completed_at is None
    assert by_id[done].trace_id is not None and len(by_id[done].trace_id) == 32
    assert (by_id[pending].namespace, by_id[pending].version) == ("billing", "2.0.0")

    assert [v.task_id for v in app.list_tasks(status="error")] == [failed]
    assert [v.task_id for v in app.list_tasks(namespace="ops")] == [failed, done]
    assert [v.task_id for v in app.list_tasks(name="ok")] == [pending, done]
    assert [v.task_id for v in app.list_tasks(name="ok", version="2.0.0")] == [pending]
    assert [v.task_id for v in app.list_tasks(namespace="ops", name="ok", status="complete")] == [done]
    assert app.list_tasks(status="cancelled") == []

    first = app.list_tasks(limit=2)
    assert [v.task_id for v in first] == [pending, failed]
    assert [v.task_id for v in app.list_tasks(limit=2, after=first[-1].task_id)] == [done]
    assert app.list_tasks(after=done) == []

    assert len(app.list_tasks(since=timedelta(hours=1))) == 3
    assert app.list_tasks(since=datetime.now(UTC) + timedelta(minutes=1)) == []
    assert app.list_tasks(until=timedelta(hours=1)) == []
    assert len(app.list_tasks(until=datetime.now(UTC) + timedelta(minutes=1))) == 3

    shown = app.get_task(failed)  # get_task carries the same aggregates, and per-step masked errors
    assert (shown.steps_total, shown.steps_complete, shown.last_error) == (2, 1, by_id[failed].last_error)
    assert shown.step("b").last_error == "gateway down: password=[FILTERED]\nsecond line"
    assert shown.step("a").last_error is None


def test_list_tasks_rejects_bad_filters(app: Tasker) -> None:
    with pytest.raises(ValidationError, match="unknown status 'failed'"):
        app.list_tasks(status="failed")
    with pytest.raises(ValidationError, match="limit must be between 1 and 1000"):
        app.list_tasks(limit=0)


def test_retry_brings_exhausted_and_permanent_failures_to_complete(app: Tasker, flag: Path) -> None:
    exhausted_t, permanent_t = failing_template("exhausted", flag), failing_template("permanent", flag, "permanent")
    app.register_task_template(exhausted_t)
    app.register_task_template(permanent_t)
    exhausted, permanent = start(app, exhausted_t), start(app, permanent_t)
    assert app.run_until_done(exhausted) == "error"
    assert app.run_until_done(permanent) == "error"
    assert app.get_task(exhausted).step("b").attempts == 2
    assert app.get_task(permanent).step("b").retryable is False  # the permanent-error flag
    seen: list[Event] = []
    app.events.subscribe("task.retry_requested", seen.append)
    app.events.subscribe("step.retry_requested", seen.append)
    flag.unlink()  # the handler succeeds from now on

    for task_id in (exhausted, permanent):
        view = app.retry_task(task_id, reason="gateway fixed")
        assert view.status == "pending"
        step = view.step("b")
        assert (step.status, step.attempts, step.retryable, step.next_retry_at) == ("pending", 0, True, None)
        assert app.run_until_done(task_id) == "complete"
        assert app.get_task(task_id).step("b").attempts == 1

    assert [(e.name, e["task_id"]) for e in seen] == [
        ("step.retry_requested", exhausted), ("task.retry_requested", exhausted),
        ("step.retry_requested", permanent), ("task.retry_requested", permanent),
    ]  # fmt: skip
    assert all(e["from_state"] == "error" and e["to_state"] == "pending" for e in seen)
    assert [e["retry_reason"] for e in seen if e.name.startswith("step")] == ["gateway fixed"] * 2
    assert [e["previous_attempts"] for e in seen if e.name.startswith("step")] == [2, 1]
    assert [e["reason"] for e in seen if e.name.startswith("task")] == ["gateway fixed"] * 2

    history = task_log(app, permanent)
    with app.db.read() as session:
        step_id = session.scalar(
            select(WorkflowStep.workflow_step_id).where(WorkflowStep.task_id == permanent, WorkflowStep.name == "b")
        )
        step_log = session.execute(
            select(WorkflowStepTransition.from_state, WorkflowStepTransition.to_state, WorkflowStepTransition.metadata_)
            .where(WorkflowStepTransition.workflow_step_id == step_id)
            .order_by(WorkflowStepTransition.sort_key)
        ).all()
    assert ("error", "pending", {"reason": "gateway fixed"}) in history
    assert [s for s, t, _ in history].count("error") == 1 and history[-1][1] == "complete"
    assert ("error", "pending", {"reason": "gateway fixed", "previous_attempts": 1}) in step_log
    assert step_log[-1][1] == "complete"


def test_retry_refuses_tasks_not_in_error(app: Tasker) -> None:
    tmpl = template("fine", {"a": []})
    app.register_task_template(tmpl)
    done, cancelled, pending = start(app, tmpl, n=1), start(app, tmpl, n=2), start(app, tmpl, n=3)
    assert app.run_until_done(done) == "complete"
    app.cancel_task(cancelled)
    for task_id, status in ((done, "complete"), (cancelled, "cancelled"), (pending, "pending")):
        with pytest.raises(TaskNotRetryableError, match=f"task {task_id} is '{status}'") as caught:
            app.retry_task(task_id)
        assert isinstance(caught.value, StateError)
        assert app.get_task(task_id).status == status
    with pytest.raises(TaskNotFoundError):
        app.retry_task(999_999)


def test_bypassed_skippable_steps_are_resolved_and_dependents_proceed(app: Tasker) -> None:
    tmpl = template("optional", {"a": [], "b": ["a"], "c": ["b"]}, {"b": {"fail_times": 9}})
    tmpl["step_templates"][1]["skippable"] = True
    app.register_task_template(tmpl)
    seen: list[Event] = []
    app.events.subscribe("step.resolved_manually", seen.append)
    request = TaskRequest(name="optional", version="1.0.0", context={"x": 1}, bypass_steps=["b"])
    view = app.create_task(request)
    assert view.step("b").status == "resolved_manually"
    assert [(e["step_name"], e["reason"]) for e in seen] == [("b", "bypassed")]
    assert app.run_until_done(view.task_id) == "complete"
    done = app.get_task(view.task_id)
    assert [(s.name, s.status, s.attempts) for s in done.steps] == [
        ("a", "complete", 1), ("b", "resolved_manually", 0), ("c", "complete", 1),
    ]  # fmt: skip
    with app.db.read() as session:
        meta = session.scalars(
            select(WorkflowStepTransition.metadata_).where(
                WorkflowStepTransition.workflow_step_id == done.step("b").step_id
            )
        ).all()
    assert meta == [{"reason": "bypassed"}]


@pytest.mark.parametrize(
    ("bypass", "message"),
    [(["a"], "not marked skippable in default.strict@1.0.0: a"), (["zz"], "names no step of default.strict@1.0.0: zz")],
)
def test_bypassing_a_fixed_or_unknown_step_is_refused_at_create(app: Tasker, bypass: list[str], message: str) -> None:
    app.register_task_template(template("strict", {"a": []}))
    with pytest.raises(ValidationError, match=message):
        app.create_task(TaskRequest(name="strict", version="1.0.0", context={"x": 1}, bypass_steps=bypass))
    assert app.list_tasks() == []


@pytest.mark.parametrize(
    ("where", "index"),
    [
        (TaskFilter(status="error"), "ix_tasker_tasks_status_task_id"),
        (TaskFilter(status="error", after=1000), "ix_tasker_tasks_status_task_id"),
        (TaskFilter(namespace="ops", name="checkout"), "ix_tasker_tasks_named_task_id_task_id"),
    ],
)
def test_listing_filters_are_served_by_indexes(app: Tasker, where: TaskFilter, index: str) -> None:
    sql = str(task_page_query(where).compile(app.db.engine, compile_kwargs={"literal_binds": True}))
    plan = query_plan(app, sql)
    assert index in plan, plan
