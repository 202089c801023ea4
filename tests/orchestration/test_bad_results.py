"""Results that cannot be stored as JSON fail their step the same way on SQLite and PostgreSQL."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from tasker import StepHandler, StepSequence, StepView, Tasker, TaskRequest, TaskView
from tasker.encoding import check_json
from tasker.errors import EncodingError
from tasker.models import WorkflowStep, WorkflowStepTransition
from tests.support.faults import POISON
from tests.support.handlers import template

FAULT = "tests.support.faults:Fault"


@pytest.mark.parametrize("poison", sorted(POISON))
def test_a_result_json_cannot_hold_fails_the_step_for_good(make_app: Callable[..., Tasker], poison: str) -> None:
    app = make_app()
    app.register_task_template(
        template("poisoned", {"a": [], "b": ["a"]}, {"a": {"fault": poison}}, handler=FAULT, retry_limit=3)
    )
    task = app.create_task(TaskRequest(name="poisoned", version="1.0.0", context={"x": 1}))
    assert app.run_until_done(task.task_id) == "error"
    step = app.get_task(task.task_id).step("a")
    message = POISON[poison][1]
    assert step.status == "error" and step.attempts == 1 and step.retryable is False  # not retried
    assert step.results["error_class"] == "EncodingError"
    assert step.results["error"] == f"step a: {message}"
    assert app.get_task(task.task_id).step("b").status == "pending"
    with app.db.read() as session:
        meta = session.scalar(
            select(WorkflowStepTransition.metadata_)
            .join(WorkflowStep, WorkflowStep.workflow_step_id == WorkflowStepTransition.workflow_step_id)
            .where(WorkflowStep.task_id == task.task_id, WorkflowStep.name == "a", WorkflowStepTransition.most_recent)
        )
    assert meta["error_class"] == "EncodingError" and message in meta["error_message"]


def test_a_custom_event_payload_json_cannot_hold_fails_the_step(make_app: Callable[..., Tasker]) -> None:
    app = make_app()
    app.events.register_custom_event("orders.shipped")
    app.register_task_template(template("emits", {"a": []}, handler="tests.orchestration.test_bad_results:Emits"))
    task = app.create_task(TaskRequest(name="emits", version="1.0.0", context={}))
    assert app.run_until_done(task.task_id) == "error"
    step = app.get_task(task.task_id).step("a")
    assert step.results["error"] == "orders.shipped payload.when: set is not JSON-serializable"
    assert step.attempts == 1 and step.retryable is False


class Emits(StepHandler):
    """Publishes a custom event whose payload holds a set."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        self.publish_event("orders.shipped", {"when": {1}})
        return {}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"a": [{"b": {1, 2}}]}, "results.a[0].b: set is not JSON-serializable"),
        ({"odd key": math.nan}, "results['odd key']: nan is not valid JSON"),
        ({"k\u0000": 1}, "results: key 'k\\x00' contains a NUL character"),
        ((1, object()), "results[1]: object is not JSON-serializable"),
    ],
)
def test_check_json_names_the_key_path(value: Any, message: str) -> None:
    with pytest.raises(EncodingError) as caught:
        check_json(value, "results")
    assert str(caught.value) == message


def test_check_json_accepts_what_json_holds() -> None:
    check_json({"a": [1, 2.5, True, None, "ü", {"b": ()}]}, "results")
