"""``BlogExamples::Post01``: the checkout of Ruby's blog post 01, with handlers of our own."""

from __future__ import annotations

from typing import Any

from tasker import StepHandler, StepSequence, StepView, TaskView
from tasker.handlers import TaskHandler


class OrderProcessingHandler(TaskHandler):
    """Express orders and premium customers get extra handling, recorded in the context (Ruby's hook)."""

    def establish_step_dependencies_and_defaults(self, task: TaskView, steps: list[StepView]) -> None:
        if task.context.get("priority") == "express":
            task.context["express_processing"] = {"payment_timeout_ms": 15000, "payment_retries": 1}
        if task.context["customer_info"].get("tier") == "premium":
            task.context["premium_processing"] = {"priority": "high", "faster_processing": True}


class _Step(StepHandler):
    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        return {"step": step.name, "premium": "premium_processing" in task.context}


class ValidateCartHandler(_Step):
    """Cart check."""


class ProcessPaymentHandler(_Step):
    """Payment."""


class UpdateInventoryHandler(_Step):
    """Inventory."""


class CreateOrderHandler(_Step):
    """Order record."""


class SendConfirmationHandler(_Step):
    """Confirmation email."""
