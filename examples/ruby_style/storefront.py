"""Handlers of ``checkout.yaml`` (Ruby module ``Storefront``)."""

from __future__ import annotations

from typing import Any

from tasker.examples.ruby_style.simulate import maybe_fail

from tasker import StepHandler, StepSequence, StepView, TaskView
from tasker.errors import PermanentError
from tasker.handlers import TaskHandler


class PlaceOrderHandler(TaskHandler):
    """Ruby's task handler: rush deliveries and gold shoppers get extra handling, recorded in the context."""

    def establish_step_dependencies_and_defaults(self, task: TaskView, steps: list[StepView]) -> None:
        if task.context.get("delivery") == "rush":
            task.context["rush_handling"] = {"warehouse_priority": "high", "receipt_retries": 2}
            for step in steps:
                if step.name == "email_receipt":
                    step.retry_limit = 2
        if task.context["shopper"].get("loyalty") == "gold":
            task.context["gold_benefits"] = {"free_shipping": True, "points_multiplier": 2}

    def update_annotations(self, task: TaskView, sequence: StepSequence, steps: list[StepView]) -> None:
        record = sequence.find_step_by_name("record_order")
        total = record.results["total"] if record is not None else None
        self.annotate(task, "order_summary", {"order_number": f"SO-{task.task_id}", "total": total})


class CheckBasketHandler(StepHandler):
    """Totals the basket; a mismatch with the card amount can never succeed."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        maybe_fail(task, step)
        total = round(sum(i["quantity"] * i["unit_price"] for i in task.context["basket"]), 2)
        if abs(total - task.context["card"]["amount"]) > 0.005:
            raise PermanentError(f"basket totals {total}, card amount differs", error_code="AMOUNT_MISMATCH")
        return {"total": total, "lines": len(task.context["basket"])}


class AuthorizeCardHandler(StepHandler):
    """Authorizes the card (a stand-in for the payment gateway)."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        maybe_fail(task, step)
        basket = sequence.find_step_by_name("check_basket")
        return {"authorization": f"auth-{task.task_id}", "amount": basket.results["total"] if basket else None}


class ReserveStockHandler(StepHandler):
    """Holds every line; rush orders go first."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        maybe_fail(task, step)
        priority = (task.context.get("rush_handling") or {}).get("warehouse_priority", "normal")
        return {"held": [line["sku"] for line in task.context["basket"]], "priority": priority}


class RecordOrderHandler(StepHandler):
    """Writes the order record."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        maybe_fail(task, step)
        basket = sequence.find_step_by_name("check_basket")
        return {"order_number": f"SO-{task.task_id}", "total": basket.results["total"] if basket else None}


class EmailReceiptHandler(StepHandler):
    """Emails the receipt."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        maybe_fail(task, step)
        return {"sent_to": task.context["shopper"]["email"], "gold": "gold_benefits" in task.context}
