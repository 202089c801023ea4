"""Step dispatch: a pass reserves ready steps for other workers, which run them by claim token."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import update

from tasker import Tasker, TaskRequest
from tasker.models import WorkflowStep
from tasker.models.base import utcnow
from tests.support.handlers import calls, template


class RecordingExecutor:
    """Collects dispatched steps and re-run requests instead of sending messages."""

    name = "recording"

    def __init__(self) -> None:
        self.steps: list[tuple[int, int, str]] = []
        self.passes: list[tuple[int, float]] = []
        self.lock = threading.Lock()

    def enqueue(self, task_id: int, delay: float = 0.0) -> None:
        with self.lock:
            self.passes.append((task_id, delay))

    def dispatch_step(self, task_id: int, step_id: int, token: str) -> None:
        with self.lock:
            self.steps.append((task_id, step_id, token))

    def shutdown(self) -> None:
        """Nothing to release."""


FAN = {"root": [], **{f"w{i}": ["root"] for i in range(5)}, "merge": [f"w{i}" for i in range(5)]}


def test_ready_steps_are_dispatched_and_run_by_token(make_app: Callable[..., Tasker]) -> None:
    executor = RecordingExecutor()
    app = make_app(executor=executor)
    app.register_task_template(template("fan", FAN))
    task = app.create_task(TaskRequest(name="fan", version="1.0.0", context={"x": 1}))
    assert app.run_task(task.task_id) == "pending"  # root ran here; the five middle steps were dispatched
    assert [c.step for c in calls()] == ["root"]
    assert len(executor.steps) == 5
    view = app.get_task(task.task_id)
    assert all(s.in_process and s.status == "pending" for s in view.steps if s.name.startswith("w"))
    assert app.run_task(task.task_id) == "pending" and len(executor.steps) == 5  # reserved: not dispatched twice
    workers = [threading.Thread(target=app.run_dispatched_step, args=step) for step in executor.steps]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert app.run_dispatched_step(*executor.steps[0]) is None  # a replayed message is harmless
    assert len(calls("w0")) == 1
    assert app.run_until_done(task.task_id, timeout=30) == "complete"
    assert Counter(c.step for c in calls()) == {"root": 1, **{f"w{i}": 1 for i in range(5)}, "merge": 1}
    # passes are requested by finished steps only: no delayed re-run message while steps were out
    assert {delay for _task, delay in executor.passes} == {0.0}


def test_a_reserved_step_whose_message_was_lost_is_released(make_app: Callable[..., Tasker]) -> None:
    executor = RecordingExecutor()
    app = make_app(executor=executor)
    app.register_task_template(template("fan", FAN))
    task = app.create_task(TaskRequest(name="fan", version="1.0.0", context={"x": 1}))
    app.run_task(task.task_id)
    with app.db.transaction() as session:  # the messages never arrive and the reservations expire
        session.execute(update(WorkflowStep).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
    plain = make_app()  # a runner without dispatch picks the steps up itself
    plain.register_task_template(template("fan", FAN))
    assert plain.run_until_done(task.task_id, timeout=30) == "complete"
    assert {s.attempts for s in plain.get_task(task.task_id).steps} == {1}
