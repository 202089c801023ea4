"""Handlers of ``support_refund.yaml`` (Ruby module ``Support``) and ``payments_refund.yaml`` (``Payments``)."""

from __future__ import annotations

from typing import Any

import httpx
from tasker.examples.ruby_style.simulate import maybe_fail

from tasker import StepHandler, StepSequence, StepView, TaskView
from tasker.errors import PermanentError
from tasker.handlers import ApiStepHandler, TaskHandler


class IssueRefundHandler(TaskHandler):
    """Both teams' task handler (Ruby's ``Support::IssueRefundHandler`` and ``Payments::IssueRefundHandler``)."""


class CheckTicketHandler(StepHandler):
    """The ticket must exist."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        maybe_fail(task, step)
        return {"ticket": task.context["ticket"], "status": "open"}


class CheckPolicyHandler(StepHandler):
    """Refunds above ``max_cents`` are refused for good."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        maybe_fail(task, step)
        if task.context["amount_cents"] > self.config["max_cents"]:
            raise PermanentError("refund exceeds the policy limit", error_code="POLICY_LIMIT")
        return {"policy": "within_limit"}


class GetApprovalHandler(StepHandler):
    """Manager approval, when the request needs it."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        maybe_fail(task, step)
        return {"approved": True, "by": "manager" if task.context.get("needs_approval") else "auto"}


class DelegateToPaymentsHandler(ApiStepHandler):
    """Asks the payments service to start the payments team's workflow."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> httpx.Response:
        request = {
            "namespace": self.config["target_namespace"],
            "name": self.config["target_workflow"],
            "version": self.config["target_version"],
            "context": {
                "charge_id": task.context["charge_id"],
                "amount_cents": task.context["amount_cents"],
                "requested_by": f"support:{task.context['ticket']}",
            },
        }
        return self.client.post("/tasks", json=request)

    def process_results(self, step: StepView, process_output: Any, initial_results: Any) -> None:
        step.results = {"payments_task_id": process_output.json()["task_id"]}


class CloseTicketHandler(StepHandler):
    """Closes the ticket with the payments task id."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        maybe_fail(task, step)
        delegated = sequence.find_step_by_name("delegate_to_payments")
        return {"closed": True, "payments_task_id": delegated.results["payments_task_id"] if delegated else None}


class VerifyChargeHandler(StepHandler):
    """The charge must be refundable."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        maybe_fail(task, step)
        return {"charge_id": task.context["charge_id"], "refundable": True}


class RefundGatewayHandler(StepHandler):
    """Refunds through the gateway."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        maybe_fail(task, step)
        return {"refund_id": f"re_{task.context['charge_id']}", "amount_cents": task.context["amount_cents"]}


class UpdateLedgerHandler(StepHandler):
    """Books the refund."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        maybe_fail(task, step)
        return {"ledger_entry": f"L-{task.task_id}"}


class NotifyCustomerHandler(StepHandler):
    """Tells the customer."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        maybe_fail(task, step)
        return {"notified": task.context.get("requested_by", "customer")}
