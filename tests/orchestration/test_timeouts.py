"""Step timeouts: a hung handler fails its step at the deadline, frees its slot, and its late result is dropped."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from tasker import StepHandler, StepSequence, StepView, Tasker, TaskRequest, TaskView
from tasker.models import WorkflowStep, WorkflowStepTransition
from tasker.models.base import utcnow
from tests.support import faults
from tests.support.handlers import template
from tests.support.processes import wait_for

FAULT = "tests.support.faults:Fault"


@pytest.fixture(autouse=True)
def _release_hung_handlers() -> Iterator[None]:
    faults.release.clear()
    yield
    faults.release.set()


def _timeouts(app: Tasker) -> float:
    for family in text_string_to_metric_families(app.metrics.render()):
        for sample in family.samples:
            if sample.name == "tasker_step_timeouts_total":
                return sample.value
    return 0.0


def _hanging(timeout: float | None, name: str = "hangs") -> dict[str, object]:
    tmpl = template(name, {"a": [], "b": ["a"]}, {"a": {"fault": "hang", "times": 1}}, handler=FAULT)
    if timeout is not None:
        tmpl["step_templates"][0]["timeout_seconds"] = timeout
    return tmpl


def test_a_hung_step_times_out_is_retried_and_its_late_result_is_discarded(
    make_app: Callable[..., Tasker], caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()
    app.register_task_template(_hanging(0.3))
    task = app.create_task(TaskRequest(name="hangs", version="1.0.0", context={}))
    with caplog.at_level(logging.WARNING, logger="tasker.orchestration.steps"):
        assert app.run_until_done(task.task_id, timeout=20) == "complete"  # the hung run is still blocked
        faults.release.set()
        view = app.get_task(task.task_id)
        assert view.step("a").attempts == 2 and view.step("a").results == {"ok": True, "attempt": 2}
        assert _timeouts(app) == 1
        deadline_logged = [r for r in caplog.records if "timed out after 0.3s" in r.getMessage()]
        assert len(deadline_logged) == 1 and "StepTimeoutError" in deadline_logged[0].getMessage()
        wait_for(lambda: any("result discarded" in r.getMessage() for r in caplog.records))
    assert app.get_task(task.task_id).step("a").results == {"ok": True, "attempt": 2}  # the late result is not stored


def test_the_config_default_applies_when_the_template_sets_none(make_app: Callable[..., Tasker]) -> None:
    app = make_app({"execution": {"step_timeout_seconds": 0.3}})
    app.register_task_template(_hanging(None))
    task = app.create_task(TaskRequest(name="hangs", version="1.0.0", context={}))
    assert app.run_until_done(task.task_id, timeout=20) == "complete"
    with app.db.read() as session:
        errors = session.scalars(
            select(WorkflowStepTransition.metadata_)
            .join(WorkflowStep, WorkflowStep.workflow_step_id == WorkflowStepTransition.workflow_step_id)
            .where(WorkflowStep.name == "a", WorkflowStepTransition.to_state == "error")
        ).all()
    assert [m["error_class"] for m in errors] == ["StepTimeoutError"]


def test_a_timed_out_step_frees_its_slot_for_other_steps(make_app: Callable[..., Tasker]) -> None:
    app = make_app({"execution": {"max_concurrent_steps": 2}})
    steps = {"h1": [], "h2": [], "x": [], "y": [], "z": []}
    configs = {"h1": {"fault": "hang", "times": 1}, "h2": {"fault": "hang", "times": 1}}
    tmpl = template("slots", steps, configs, handler=FAULT)
    for step in tmpl["step_templates"]:
        step["timeout_seconds"] = 0.3
    app.register_task_template(tmpl)
    task = app.create_task(TaskRequest(name="slots", version="1.0.0", context={}))
    assert app.run_until_done(task.task_id, timeout=20) == "complete"  # both slots were held by hung runs
    assert {s.name: s.attempts for s in app.get_task(task.task_id).steps} == {"h1": 2, "h2": 2, "x": 1, "y": 1, "z": 1}


def test_a_handler_can_see_its_deadline(make_app: Callable[..., Tasker]) -> None:
    app = make_app()
    tmpl = template("deadline", {"a": []}, handler="tests.orchestration.test_timeouts:Deadline")
    tmpl["step_templates"][0]["timeout_seconds"] = 30
    app.register_task_template(tmpl)
    task = app.create_task(TaskRequest(name="deadline", version="1.0.0", context={}))
    assert app.run_until_done(task.task_id) == "complete"
    results = app.get_task(task.task_id).step("a").results
    assert results["past"] is False and 25 < results["left"] <= 30


class Deadline(StepHandler):
    """Reports how long it has left."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> dict[str, object]:
        assert step.deadline is not None
        return {"past": step.past_deadline(), "left": (step.deadline - utcnow()).total_seconds()}
