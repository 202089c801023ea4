"""The public API of DESIGN.md: names, exception tree, and the documented usage end to end."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import pytest

import tasker
import tasker.errors
from tasker import ApiStepHandler, StepHandler, Tasker, TaskRequest
from tasker.errors import PermanentError, RetryableError, TaskerError, TemplateError
from tasker.events import BaseSubscriber
from tasker.metrics import MetricsBackend
from tasker.views import StepView, TaskView

STATUSES = {"pending", "in_progress", "complete", "error", "cancelled", "resolved_manually"}


def test_tasker_all_is_pinned() -> None:
    assert sorted(tasker.__all__) == [
        "ApiStepHandler",
        "StepHandler",
        "StepSequence",
        "StepView",
        "TaskRequest",
        "TaskTimeoutError",
        "TaskView",
        "Tasker",
        "__version__",
    ]
    for name in tasker.__all__:
        assert getattr(tasker, name) is not None, name
    assert isinstance(tasker.__version__, str) and tasker.__version__.count(".") == 2


def test_errors_all_is_pinned() -> None:
    assert sorted(tasker.errors.__all__) == [
        "ConfigurationError",
        "EncodingError",
        "EventError",
        "GeneratorError",
        "GuardFailedError",
        "InvalidStateTransition",
        "MetricsError",
        "PermanentError",
        "RetryableError",
        "StateError",
        "StepError",
        "StepTimeoutError",
        "StoreError",
        "TaskNotFoundError",
        "TaskNotRetryableError",
        "TaskerError",
        "TemplateError",
        "TemplateNotFoundError",
        "ValidationError",
    ]


def test_design_names_are_the_right_kinds() -> None:
    assert inspect.isclass(Tasker) and inspect.isclass(TaskRequest)
    assert issubclass(ApiStepHandler, StepHandler)
    assert issubclass(TemplateError, TaskerError)
    assert issubclass(RetryableError, TaskerError) and issubclass(PermanentError, TaskerError)
    assert inspect.isclass(BaseSubscriber) and inspect.isclass(MetricsBackend)
    assert callable(StepHandler.process)


def _exception_classes() -> list[type[BaseException]]:
    return [
        obj
        for obj in vars(tasker.errors).values()
        if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == "tasker.errors"
    ]


def test_every_tasker_error_derives_from_taskererror() -> None:
    classes = _exception_classes()
    assert len(classes) >= len(tasker.errors.__all__)
    for cls in classes:
        assert issubclass(cls, TaskerError), cls
        assert cls.__name__ in tasker.errors.__all__, f"{cls.__name__} is not exported"
    assert issubclass(tasker.TaskTimeoutError, TaskerError)


def test_step_errors_carry_their_options() -> None:
    retry = RetryableError("slow down", retry_after=12)
    assert retry.retry_after == 12 and str(retry) == "slow down"
    assert RetryableError("again").retry_after is None
    permanent = PermanentError("no such card", error_code="CARD")
    assert permanent.error_code == "CARD" and str(permanent) == "no such card"


def test_tasker_signature_and_methods() -> None:
    params = inspect.signature(Tasker).parameters
    assert list(params)[:2] == ["database_url", "config"]
    for method in ("migrate", "load_task_templates", "register_task_template", "create_task", "run_task",
                   "run_until_done", "get_task", "subscribe", "shutdown", "cancel_task", "resolve_step"):  # fmt: skip
        assert callable(getattr(Tasker, method)), method
    assert "timeout" in inspect.signature(Tasker.run_until_done).parameters


def test_views_have_the_documented_attributes() -> None:
    task_fields = {f.name for f in dataclasses.fields(TaskView)}
    assert {"task_id", "name", "namespace", "version", "status", "context", "steps"} <= task_fields
    step_fields = {f.name for f in dataclasses.fields(StepView)}
    assert {"name", "status", "attempts", "retry_limit", "retryable", "results"} <= step_fields


def test_task_request_defaults() -> None:
    request = TaskRequest(name="order_process")
    assert (request.namespace, request.version, request.context) == ("default", "0.1.0", {})
    with pytest.raises(tasker.errors.ValidationError, match="contxt"):  # unknown fields are refused, not ignored
        TaskRequest(name="x", contxt={})  # type: ignore[call-arg]


# -- the DESIGN.md example, end to end, through public names only ----------------------------------------------


class ValidateOrder(StepHandler):
    def process(self, task: Any, sequence: Any, step: Any) -> dict[str, Any]:
        assert sequence.find_step_by_name("validate_order") is not None
        return {"valid": True, "order_id": task.context["order_id"]}


class ChargeOrder(StepHandler):
    def process(self, task: Any, sequence: Any, step: Any) -> dict[str, Any]:
        validation = sequence.find_step_by_name("validate_order")
        if step.attempts == 0:
            raise RetryableError("gateway busy", retry_after=0)
        return {"charged": validation.results["valid"]}


class Reject(StepHandler):
    def process(self, task: Any, sequence: Any, step: Any) -> Any:
        raise PermanentError("rejected", error_code="NO")


class Notify(BaseSubscriber):
    subscribe_to = ("task.completed", "step.failed")

    def __init__(self) -> None:
        super().__init__()
        self.completed: list[tuple[int, str]] = []
        self.failed: list[str] = []

    def handle_task_completed(self, event: Any) -> None:
        self.completed.append((event["task_id"], event.name))
        assert event.payload["task_id"] == event["task_id"]

    def handle_step_failed(self, event: Any) -> None:
        self.failed.append(event.payload["step_name"])


def _template(charge: str) -> dict[str, Any]:
    return {
        "name": "order_process",
        "namespace_name": "default",
        "version": "0.1.0",
        "step_templates": [
            {"name": "validate_order", "handler_class": f"{__name__}:ValidateOrder"},
            {"name": "charge", "handler_class": f"{__name__}:{charge}", "depends_on_step": "validate_order"},
        ],
    }


def test_design_example_runs(make_app: Callable[..., Tasker]) -> None:
    app = make_app()
    assert isinstance(app.metrics, MetricsBackend)
    notify = app.subscribe(Notify())
    app.register_task_template(_template("ChargeOrder"))
    task = app.create_task(
        TaskRequest(name="order_process", namespace="default", version="0.1.0", context={"order_id": 1})
    )
    assert app.run_until_done(task.task_id, timeout=30) == "complete"
    view = app.get_task(task.task_id)
    assert (view.task_id, view.name, view.namespace, view.version) == (
        task.task_id,
        "order_process",
        "default",
        "0.1.0",
    )
    assert view.status == "complete" and view.context == {"order_id": 1}
    assert view.step("validate_order").results == {"valid": True, "order_id": 1}
    charge = view.step("charge")
    assert (charge.status, charge.attempts, charge.retry_limit, charge.retryable) == ("complete", 2, 3, True)
    assert charge.results == {"charged": True}
    assert {s.status for s in view.steps} <= STATUSES
    assert notify.completed == [(task.task_id, "task.completed")]
    assert notify.failed == ["charge"]


def test_permanent_error_fails_the_task(make_app: Callable[..., Tasker]) -> None:
    app = make_app()
    app.register_task_template(_template("Reject"))
    task = app.create_task(TaskRequest(name="order_process", context={"order_id": 2}))
    assert app.run_until_done(task.task_id, timeout=30) == "error"
    step = app.get_task(task.task_id).step("charge")
    assert step.attempts == 1 and step.retryable is False and step.status == "error"
