"""A task revived after failing (resolve_step) gets its own execution span in the same trace."""

from __future__ import annotations

from collections.abc import Callable

from tests.support.handlers import template
from tests.telemetry.conftest import Traced


def test_revived_task_gets_a_second_task_span_in_the_same_trace(make_traced: Callable[..., Traced]) -> None:
    traced = make_traced()
    tmpl = template("revive", {"a": [], "b": ["a"]}, {"a": {"fail_times": 9}}, retry_limit=1)
    task_id, status = traced.run(tmpl)
    assert status == "error"
    traced.app.resolve_step(task_id, "a")
    assert traced.app.run_until_done(task_id, timeout=30) == "complete"
    first, second = traced.spans("tasker.task.execution")
    assert first.context.span_id != second.context.span_id
    assert first.context.trace_id == second.context.trace_id
    assert first.status.status_code.name == "ERROR" and second.status.status_code.name != "ERROR"
    (step_b,) = [s for s in traced.spans("tasker.step.execution") if s.attributes["tasker.step.name"] == "b"]
    assert step_b.parent is not None and step_b.parent.span_id == second.context.span_id
