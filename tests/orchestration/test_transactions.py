"""The pass is the only writer: one write transaction per turn records outcomes and claims the next steps."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import event

from tasker import Tasker, TaskRequest
from tests.support.handlers import chain, template


def test_a_chain_costs_one_write_transaction_per_step(make_app: Callable[..., Tasker]) -> None:
    app = make_app()
    app.register_task_template(template("five", chain(5)))
    task = app.create_task(TaskRequest(name="five", version="1.0.0", context={}))
    commits: list[object] = []
    event.listen(app.db.engine, "commit", commits.append)
    assert app.run_until_done(task.task_id) == "complete"
    # start + first claim, 4 x (outcome + next claim), last outcome + completion; no recovery write
    assert len(commits) == 5 + 1
