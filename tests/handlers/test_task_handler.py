"""TaskHandler hooks (Ruby's task handler class) and task annotations."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from tasker import Tasker, TaskRequest
from tasker.errors import TaskNotFoundError, TemplateError, ValidationError
from tasker.handlers import StepHandler, TaskHandler
from tasker.views import StepSequence, StepView, TaskView

HANDLERS: list[str] = []


class Echo(StepHandler):
    """Returns its inputs."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        return {"inputs": step.inputs}


class Checkout(TaskHandler):
    """Enriches express/premium orders, annotates completed ones."""

    def establish_step_dependencies_and_defaults(self, task: TaskView, steps: list[StepView]) -> None:
        if task.context.get("priority") == "express":
            task.context["express_processing"] = {"payment_retries": 1}
            steps[1].retry_limit = 1
        if task.context.get("tier") == "premium":
            steps[0].inputs = {**task.context, "premium": True}

    def update_annotations(self, task: TaskView, sequence: StepSequence, steps: list[StepView]) -> None:
        HANDLERS.append(task.status)
        self.annotate(task, "checkout_summary", {"steps": [s.name for s in sequence], "status": task.status})


class StrictSchema(TaskHandler):
    """Replaces the template's schema."""

    def schema(self) -> Mapping[str, Any] | None:
        return {"type": "object", "required": ["order_id"]}


def _register(app: Tasker, task_handler: str, name: str = "checkout") -> None:
    app.register_task_template({
        "name": name, "namespace_name": "shop", "version": "1.0.0", "task_handler_class": task_handler,
        "step_templates": [
            {"name": "validate", "handler_class": f"{__name__}:Echo"},
            {"name": "pay", "handler_class": f"{__name__}:Echo", "depends_on_step": "validate"},
        ],
    })  # fmt: skip


def _create(app: Tasker, context: dict[str, Any], name: str = "checkout") -> TaskView:
    return app.create_task(TaskRequest(name=name, namespace="shop", version="1.0.0", context=context))


def test_establish_hook_changes_are_persisted_with_the_task(app: Tasker) -> None:
    _register(app, f"{__name__}:Checkout")
    created = _create(app, {"priority": "express", "tier": "premium"})
    stored = app.get_task(created.task_id)
    enriched = {"priority": "express", "tier": "premium", "express_processing": {"payment_retries": 1}}
    assert created.context == stored.context == enriched
    assert stored.step("validate").inputs == {**enriched, "premium": True}
    assert stored.step("pay").inputs == {}  # no step-specific inputs: the context is stored once, on the task
    assert (stored.step("pay").retry_limit, stored.step("validate").retry_limit) == (1, 3)
    assert created.step("pay").step_id == stored.step("pay").step_id


def test_plain_orders_are_left_alone(app: Tasker) -> None:
    _register(app, f"{__name__}:Checkout")
    created = _create(app, {"priority": "standard"})
    assert app.get_task(created.task_id).context == {"priority": "standard"}


def test_update_annotations_runs_once_the_task_is_complete(app: Tasker) -> None:
    HANDLERS.clear()
    _register(app, f"{__name__}:Checkout")
    task = _create(app, {"priority": "standard"})
    assert app.run_until_done(task.task_id) == "complete"
    assert HANDLERS == ["complete"]
    [annotation] = app.get_task(task.task_id).annotations
    assert annotation.annotation_type == "checkout_summary"
    assert annotation.data == {"steps": ["validate", "pay"], "status": "complete"}


def test_a_schema_override_validates_the_context(app: Tasker) -> None:
    _register(app, f"{__name__}:StrictSchema")
    with pytest.raises(ValidationError, match="order_id"):
        _create(app, {"x": 1})
    assert _create(app, {"order_id": 1}).task_id > 0


def test_an_unresolvable_ruby_task_handler_names_the_candidates(make_app: Any) -> None:
    app = make_app({"templates": {"handler_aliases": {"Shop": "tests.handlers.no_such_module"}}})
    _register(app, "Shop::CheckoutHandler")
    with pytest.raises(TemplateError) as info:
        _create(app, {"x": 1})
    message = str(info.value)
    assert message.startswith("shop.checkout@1.0.0, field 'task_handler_class': cannot resolve Ruby handler")
    assert "tests.handlers.no_such_module.checkout_handler:CheckoutHandler" in message


def test_a_ruby_task_handler_resolves_through_an_alias(make_app: Any) -> None:
    app = make_app({"templates": {"handler_aliases": {"Shop::CheckoutHandler": f"{__name__}:Checkout"}}})
    _register(app, "Shop::CheckoutHandler")
    assert "express_processing" in _create(app, {"priority": "express"}).context


def test_annotate_task_lists_annotations_in_order(app: Tasker) -> None:
    _register(app, f"{__name__}:TaskHandler")
    task = _create(app, {"x": 1})
    app.annotate_task(task.task_id, "audit", {"by": "ops"})
    app.annotate_task(task.task_id, "fraud_check", {"score": 0.2})
    app.annotate_task(task.task_id, "audit", {"by": "bot"})
    annotations = app.get_task(task.task_id).annotations
    assert [(a.annotation_type, a.data) for a in annotations] == [
        ("audit", {"by": "ops"}), ("fraud_check", {"score": 0.2}), ("audit", {"by": "bot"}),
    ]  # fmt: skip
    assert all(a.created_at is not None for a in annotations)


@pytest.mark.parametrize(
    ("task_id", "annotation_type", "data", "error"),
    [
        (None, "", {}, ValidationError),
        (None, "x" * 65, {}, ValidationError),
        (None, "audit", ["not", "a", "mapping"], ValidationError),
        (None, "audit", {"when": object()}, ValidationError),
        (987654, "audit", {}, TaskNotFoundError),
    ],
)
def test_annotate_task_refuses_bad_input(
    app: Tasker, task_id: int | None, annotation_type: str, data: Any, error: type[Exception]
) -> None:
    _register(app, f"{__name__}:TaskHandler")
    real = _create(app, {"x": 1}).task_id
    with pytest.raises(error):
        app.annotate_task(task_id or real, annotation_type, data)
    assert app.get_task(real).annotations == []
