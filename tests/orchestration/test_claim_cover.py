"""Claims are covered from the moment they are taken: slow subscribers and long passes keep their work."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

from sqlalchemy import select, update

from tasker import Tasker, TaskRequest
from tasker.executors import claim_next_task
from tasker.models import TaskTransition, WorkflowStep
from tasker.models.base import utcnow
from tests.support.faults import Sleepy
from tests.support.handlers import calls, template

LEASE = {"execution": {"step_lease_seconds": 0.6}}


def _run_in_thread(app: Tasker, task_id: int) -> threading.Thread:
    thread = threading.Thread(target=app.run_task, args=(task_id,))
    thread.start()
    return thread


def test_a_subscriber_slower_than_the_lease_does_not_get_the_step_run_twice(make_app: Callable[..., Tasker]) -> None:
    tmpl = template("slow_events", {"a": []})
    first = make_app(LEASE)
    first.register_task_template(tmpl)
    first.subscribe(Sleepy(("step.execution_requested", "step.before_handle"), seconds=1.0))
    task = first.create_task(TaskRequest(name="slow_events", version="1.0.0", context={}))
    second = make_app(LEASE)  # a live second runner, recovering expired claims as a worker does
    second.register_task_template(tmpl)
    running = _run_in_thread(first, task.task_id)
    while running.is_alive():
        second.recover_expired_claims()
        second.run_task(task.task_id)
        running.join(0.1)
    assert first.run_until_done(task.task_id) == "complete"
    assert [c.attempt for c in calls("a")] == [1]  # one handler run: the claim was never taken over


def test_a_pass_longer_than_the_lease_keeps_its_task_claim(make_app: Callable[..., Tasker]) -> None:
    tmpl = template("long_pass", {"a": [], "b": ["a"], "c": ["b"]}, {s: {"sleep": 0.5} for s in "abc"})
    app = make_app(LEASE)
    app.register_task_template(tmpl)
    task = app.create_task(TaskRequest(name="long_pass", version="1.0.0", context={}))
    other = make_app(LEASE)
    other.register_task_template(tmpl)
    assert claim_next_task(app, "first") == task.task_id
    running = _run_in_thread(app, task.task_id)
    taken = []
    while running.is_alive():
        claimed = claim_next_task(other, "second")
        if claimed is not None:
            taken.append(claimed)
        running.join(0.05)
    assert taken == []  # 1.5 s pass, 0.6 s lease: the claim was renewed throughout
    assert app.get_task(task.task_id).status == "complete"
    with app.db.read() as session:
        moves = Counter(
            (t.from_state, t.to_state)
            for t in session.scalars(select(TaskTransition).where(TaskTransition.task_id == task.task_id))
        )
    assert moves == {("pending", "in_progress"): 1, ("in_progress", "complete"): 1}


def test_recovery_of_a_task_whose_template_this_app_lacks_does_not_raise(make_app: Callable[..., Tasker]) -> None:
    owner = make_app(LEASE)
    owner.register_task_template(template("foreign", {"a": []}))
    task = owner.create_task(TaskRequest(name="foreign", version="1.0.0", context={}))
    with owner.db.transaction() as session:  # a step claimed by a worker that died long ago
        session.execute(
            update(WorkflowStep)
            .where(WorkflowStep.task_id == task.task_id)
            .values(status="in_progress", in_process=True, claimed_by="dead", lease_expires_at=utcnow())
        )
    other = make_app(LEASE)  # another pool's worker: it does not know the template
    assert other.recover_expired_claims() == 1
    assert owner.run_until_done(task.task_id) == "complete"
