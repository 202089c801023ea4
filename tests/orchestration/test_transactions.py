"""The pass is the only writer: one write transaction per turn records outcomes and claims the next steps."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import event

from tasker import StepHandler, StepSequence, StepView, Tasker, TaskRequest, TaskView
from tests.support.handlers import chain, fan_out, template


def test_a_chain_costs_one_write_transaction_per_step(make_app: Callable[..., Tasker]) -> None:
    app = make_app()
    app.register_task_template(template("five", chain(5)))
    task = app.create_task(TaskRequest(name="five", version="1.0.0", context={}))
    commits: list[object] = []
    event.listen(app.db.engine, "commit", commits.append)
    assert app.run_until_done(task.task_id) == "complete"
    # start + first claim, 4 x (outcome + next claim), last outcome + completion; no recovery write
    assert len(commits) == 5 + 1


def test_steps_finishing_together_are_recorded_by_one_turn(make_app: Callable[..., Tasker]) -> None:
    """Group commit: after the first of twelve parallel steps finishes, the pass waits for the other eleven
    (they leave a barrier together) instead of recording each as it comes."""
    app = make_app({"execution": {"max_concurrent_steps": 12, "group_commit_seconds": 1}})
    configs = {f"m{i}": {"group": "fan", "parties": 12} for i in range(12)}
    configs |= {"root": {"group": "root", "parties": 1}, "merge": {"group": "merge", "parties": 1}}
    handler = "tests.support.handlers:Rendezvous"
    app.register_task_template(template("fan", fan_out(12), configs, handler=handler))
    task = app.create_task(TaskRequest(name="fan", version="1.0.0", context={}))
    commits: list[object] = []
    event.listen(app.db.engine, "commit", commits.append)
    assert app.run_until_done(task.task_id) == "complete"
    # start + claim root; root's outcome + the twelve claims; the twelve outcomes + merge's claim; merge + completion
    assert len(commits) == 4


class AfterSibling(StepHandler):
    """Step ``m1`` finishes once ``m0``'s outcome has been published (fails after 10 s); the others at once."""

    published = threading.Event()

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        if step.name == "m1" and not self.published.wait(10):
            raise RuntimeError("m0 was never recorded while this step ran")
        return {}


def test_group_commit_waits_no_longer_than_its_bound(make_app: Callable[..., Tasker]) -> None:
    """A step still running does not hold back the outcome of one that finished: after group_commit_seconds
    the finished one is recorded and published (here the running one waits for exactly that)."""
    AfterSibling.published.clear()
    app = make_app({"execution": {"max_concurrent_steps": 4, "group_commit_seconds": 0.05}})
    app.events.subscribe("step.completed", lambda e: e.get("step_name") == "m0" and AfterSibling.published.set())
    handler = f"{__name__}:AfterSibling"
    app.register_task_template(template("held", fan_out(2), handler=handler))
    task = app.create_task(TaskRequest(name="held", version="1.0.0", context={}))
    assert app.run_until_done(task.task_id) == "complete"
    assert all(step.attempts == 1 for step in app.get_task(task.task_id).steps)
