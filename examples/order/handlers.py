"""Step handlers of the example order workflow."""

from __future__ import annotations

import time
from typing import Any

from tasker import StepHandler, StepSequence, StepView, TaskView
from tasker.errors import PermanentError, RetryableError


def _work(seconds: float) -> None:
    """Stand in for real I/O (an HTTP call, a query)."""
    time.sleep(seconds)


class ValidateOrder(StepHandler):
    """Check the order has items and a positive total."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> dict[str, Any]:
        _work(0.02)
        items = task.context.get("items") or []
        if not items:
            raise PermanentError("order has no items", error_code="EMPTY_ORDER")
        total = sum(float(i["price"]) * int(i["quantity"]) for i in items)
        return {"valid": True, "total": round(total, 2), "item_count": len(items)}


class ReserveInventory(StepHandler):
    """Reserve stock for every item."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> dict[str, Any]:
        _work(0.05)
        return {"reserved": [i["sku"] for i in task.context["items"]]}


class ChargePayment(StepHandler):
    """Charge the customer; the first attempt hits a gateway timeout (configurable)."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> dict[str, Any]:
        _work(0.04)
        fail_attempts = int(self.config.get("fail_first_attempts", 0))
        if step.attempts < fail_attempts:
            raise RetryableError("payment gateway timed out", retry_after=self.config.get("retry_after", 1))
        validation = sequence.find_step_by_name("validate_order")
        total = validation.results["total"] if validation else 0
        return {"charged": total, "payment_id": f"pay_{task.task_id}_{step.attempts + 1}"}


class ShipOrder(StepHandler):
    """Create the shipment once stock is reserved and payment charged."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> dict[str, Any]:
        _work(0.03)
        payment = sequence.find_step_by_name("charge_payment")
        return {"shipment_id": f"shp_{task.task_id}", "payment_id": payment.results["payment_id"] if payment else None}


class NotifyCustomer(StepHandler):
    """Tell the customer the order shipped."""

    custom_events = [{"name": "order.notified", "description": "The customer was told the order shipped"}]

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> dict[str, Any]:
        _work(0.01)
        self.publish_event("order.notified", {"task_id": task.task_id, "email": task.context.get("email")})
        return {"notified": task.context.get("email", "unknown")}
