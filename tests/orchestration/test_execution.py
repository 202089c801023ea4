"""How a task runs: ordering, concurrency, retries, permanent failures, backoff, claims."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select, update

from tasker import Tasker, TaskRequest
from tasker.models import WorkflowStep, WorkflowStepTransition
from tasker.models.base import utcnow
from tasker.state.machine import apply_transition
from tests.support import handlers
from tests.support.handlers import calls, chain, template


def run(app: Tasker, tmpl: dict, context: dict | None = None) -> tuple[int, str]:
    app.register_task_template(tmpl)
    task = app.create_task(TaskRequest(name=tmpl["name"], version=tmpl["version"], context=context or {"x": 1}))
    return task.task_id, app.run_until_done(task.task_id, timeout=30)


def test_linear_chain_runs_in_order(app: Tasker) -> None:
    task_id, status = run(app, template("chain", chain(6)))
    assert status == "complete"
    assert [c.step for c in calls()] == [f"s{i}" for i in range(6)]
    view = app.get_task(task_id)
    assert all(s.status == "complete" and s.attempts == 1 and s.processed for s in view.steps)
    assert view.complete


def test_diamond_branches_after_root_and_merge_after_both(app: Tasker) -> None:
    _, status = run(app, template("diamond"))
    assert status == "complete"
    by_step = {c.step: c for c in calls()}
    assert by_step["b"].start >= by_step["a"].end and by_step["c"].start >= by_step["a"].end
    assert by_step["d"].start >= max(by_step["b"].end, by_step["c"].end)
    assert calls()[0].step == "a" and calls()[-1].step == "d"


def test_independent_steps_run_concurrently_on_different_threads(app: Tasker) -> None:
    cfg = {"group": "pair", "parties": 2, "timeout": 10}
    tmpl = template("pair", {"x": [], "y": []}, {"x": cfg, "y": cfg}, handler="tests.support.handlers:Rendezvous")
    task_id, status = run(app, tmpl)
    assert status == "complete"  # both were inside process() at once, or the barrier would have timed out
    results = {s.name: s.results for s in app.get_task(task_id).steps}
    assert results["x"]["thread"] != results["y"]["thread"]
    assert {results["x"]["arrival"], results["y"]["arrival"]} == {0, 1}


def test_retry_then_succeed(app: Tasker) -> None:
    task_id, status = run(app, template("flaky", {"a": [], "b": ["a"]}, {"a": {"fail_times": 1}}))
    assert status == "complete"
    step = app.get_task(task_id).step("a")
    assert step.attempts == 2 and step.status == "complete"
    assert [c.attempt for c in calls("a")] == [1, 2]
    with app.db.read() as session:
        states = session.execute(
            select(WorkflowStepTransition.from_state, WorkflowStepTransition.to_state)
            .where(WorkflowStepTransition.workflow_step_id == step.step_id)
            .order_by(WorkflowStepTransition.sort_key)
        ).all()
    assert [tuple(s) for s in states] == [
        ("pending", "in_progress"),
        ("in_progress", "error"),
        ("error", "pending"),
        ("pending", "in_progress"),
        ("in_progress", "complete"),
    ]


def test_retry_exhaustion_runs_exactly_retry_limit_times(app: Tasker) -> None:
    task_id, status = run(app, template("doomed", {"a": [], "b": ["a"]}, {"a": {"fail_times": 99}}, retry_limit=3))
    assert status == "error"
    assert len(calls("a")) == 3 and calls("b") == []
    view = app.get_task(task_id)
    assert view.step("a").attempts == 3 and view.step("a").status == "error"
    assert view.step("b").status == "pending"
    assert view.step("a").results["error"] == "boom on attempt 3"
    assert view.step("a").results["error_class"] == "RuntimeError"
    assert "RuntimeError" in view.step("a").results["backtrace"]


def test_permanent_error_runs_once_and_fails_the_task(app: Tasker) -> None:
    cfg = {"a": {"fail_times": 99, "error": "permanent"}}
    task_id, status = run(app, template("perm", {"a": [], "b": ["a"]}, cfg, retry_limit=5))
    assert status == "error"
    assert len(calls("a")) == 1
    step = app.get_task(task_id).step("a")
    assert step.retryable is False and step.results["error_code"] == "NOPE"


def test_retry_after_sets_the_steps_backoff(make_app: Callable[..., Tasker]) -> None:
    app = make_app({"backoff": {"max_backoff_seconds": 300}})
    app.register_task_template(
        template("later", {"a": []}, {"a": {"fail_times": 1, "error": "retryable", "retry_after": 2}})
    )
    task = app.create_task(TaskRequest(name="later", version="1.0.0", context={"x": 1}))
    assert app.run_task(task.task_id) == "pending"
    step = app.get_task(task.task_id).step("a")
    assert step.backoff_request_seconds == 2
    assert step.next_retry_at is not None and step.last_attempted_at is not None
    assert step.next_retry_at - step.last_attempted_at == timedelta(seconds=2)
    if utcnow() < step.next_retry_at - timedelta(seconds=0.5):  # inside the backoff window: not run
        assert app.run_task(task.task_id) == "pending"
        assert len(calls("a")) == 1
    assert app.run_until_done(task.task_id, timeout=30) == "complete"
    assert [c.attempt for c in calls("a")] == [1, 2]


def test_retry_after_is_capped_by_max_backoff(make_app: Callable[..., Tasker]) -> None:
    app = make_app({"backoff": {"max_backoff_seconds": 2}})
    app.register_task_template(
        template("capped", {"a": []}, {"a": {"fail_times": 1, "error": "retryable", "retry_after": 3600}})
    )
    task = app.create_task(TaskRequest(name="capped", version="1.0.0", context={"x": 1}))
    app.run_task(task.task_id)
    assert app.get_task(task.task_id).step("a").backoff_request_seconds == 2


def test_in_progress_step_holds_the_task_pending(app: Tasker) -> None:
    app.register_task_template(template("held", {"a": [], "b": []}))
    task = app.create_task(TaskRequest(name="held", version="1.0.0", context={"x": 1}))
    a = task.step("a")
    with app.db.transaction() as session:  # another worker holds "a" with a live lease
        apply_transition(
            session,
            "step",
            a.step_id,
            "pending",
            "in_progress",
            {},
            {"in_process": True, "claimed_by": "other", "lease_expires_at": utcnow() + timedelta(minutes=5)},
        )
    assert app.run_task(task.task_id) == "pending"
    view = app.get_task(task.task_id)
    assert view.step("b").status == "complete" and view.step("a").status == "in_progress"
    assert [c.step for c in calls()] == ["b"]


def test_step_of_a_dead_worker_is_recovered_after_its_lease(app: Tasker) -> None:
    app.register_task_template(template("orphan", {"a": [], "b": ["a"]}))
    task = app.create_task(TaskRequest(name="orphan", version="1.0.0", context={"x": 1}))
    a = task.step("a")
    with app.db.transaction() as session:  # a worker claimed "a", then died
        apply_transition(
            session,
            "step",
            a.step_id,
            "pending",
            "in_progress",
            {},
            {"in_process": True, "claimed_by": "dead-worker", "lease_expires_at": utcnow() + timedelta(minutes=5)},
        )
    assert app.run_task(task.task_id) == "pending"  # lease still valid: nobody touches "a"
    assert calls() == []
    with app.db.transaction() as session:  # time passes: the lease expires
        session.execute(
            update(WorkflowStep)
            .where(WorkflowStep.workflow_step_id == a.step_id)
            .values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )
    assert app.run_until_done(task.task_id, timeout=30) == "complete"
    step = app.get_task(task.task_id).step("a")
    assert step.attempts == 2  # the dead attempt counts
    assert [c.step for c in calls()] == ["a", "b"]


def test_default_retryable_false_still_runs_once(app: Tasker) -> None:
    tmpl = template("once", {"a": []}, {"a": {"fail_times": 1}})
    tmpl["step_templates"][0]["default_retryable"] = False
    _task_id, status = run(app, tmpl)
    assert status == "error" and len(calls("a")) == 1


def test_handler_config_reaches_the_handler_and_results_are_stored(app: Tasker) -> None:
    task_id, status = run(app, template("cfg", {"a": []}, {"a": {"sleep": 0}}))
    assert status == "complete"
    assert app.get_task(task_id).step("a").results == {"step": "a", "attempt": 1}


def test_run_task_on_a_terminal_task_is_a_no_op(app: Tasker) -> None:
    task_id, _status = run(app, template("done", {"a": []}))
    assert app.run_task(task_id) == "complete"
    assert len(calls()) == 1


def test_cancel_task_cancels_unfinished_steps(app: Tasker) -> None:
    app.register_task_template(template("cancel", {"a": [], "b": ["a"]}))
    task = app.create_task(TaskRequest(name="cancel", version="1.0.0", context={"x": 1}))
    assert app.cancel_task(task.task_id) == "cancelled"
    view = app.get_task(task.task_id)
    assert view.status == "cancelled" and {s.status for s in view.steps} == {"cancelled"}
    assert app.run_task(task.task_id) == "cancelled" and calls() == []


def test_resolve_step_manually_lets_an_errored_task_finish(app: Tasker) -> None:
    task_id, status = run(app, template("fixme", {"a": [], "b": ["a"]}, {"a": {"fail_times": 99}}, retry_limit=1))
    assert status == "error"
    assert app.resolve_step(task_id, "a") == "pending"
    assert app.run_until_done(task_id, timeout=30) == "complete"
    view = app.get_task(task_id)
    assert view.step("a").status == "resolved_manually" and view.step("b").status == "complete"


def test_long_chain_completes_in_one_pass(app: Tasker) -> None:
    app.register_task_template(template("long", chain(60), handler="tests.support.handlers:Noop"))
    task = app.create_task(TaskRequest(name="long", version="1.0.0", context={"x": 1}))
    assert app.run_task(task.task_id) == "complete"


def test_handlers_see_other_steps_through_the_sequence(app: Tasker) -> None:
    handlers.reset()
    app.load_task_templates("examples/order/order_process.yaml")
    ctx = {"order_id": 1, "email": "a@b.c", "items": [{"sku": "X", "price": 2.5, "quantity": 2}]}
    task = app.create_task(TaskRequest(name="order_process", namespace="ecommerce", version="1.0.0", context=ctx))
    assert app.run_until_done(task.task_id, timeout=30) == "complete"
    view = app.get_task(task.task_id)
    assert view.step("charge_payment").attempts == 2
    assert view.step("charge_payment").results["charged"] == 5.0
    assert view.step("ship_order").results["payment_id"] == view.step("charge_payment").results["payment_id"]


def test_a_step_longer_than_its_lease_is_not_taken_for_dead(make_app: Callable[..., Tasker]) -> None:
    config = {"execution": {"step_lease_seconds": 1.2}}
    runner, rival = make_app(config), make_app(config)
    tmpl = template("long", {"a": []}, {"a": {"sleep": 3.0}})  # 2.5 leases
    runner.register_task_template(tmpl)
    rival.register_task_template(tmpl)
    task = runner.create_task(TaskRequest(name="long", version="1.0.0", context={"x": 1}))
    result: list[str] = []
    thread = threading.Thread(target=lambda: result.append(runner.run_task(task.task_id)), name="runner")
    thread.start()
    while runner.get_task(task.task_id).step("a").status != "in_progress":  # the runner claims the step first
        thread.join(timeout=0.01)
    while thread.is_alive():  # a rival keeps looking for dead claims while the step runs
        rival.recover_expired_claims()
        rival.run_task(task.task_id)
        thread.join(timeout=0.1)
    assert result == ["complete"]
    assert [c.thread for c in calls("a")] == ["runner"]
    step = runner.get_task(task.task_id).step("a")
    assert step.attempts == 1 and step.status == "complete"
