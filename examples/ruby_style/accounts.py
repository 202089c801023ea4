"""Handlers of ``signup.yaml`` (Ruby module ``Accounts``): API calls whose results are reshaped."""

from __future__ import annotations

from typing import Any

import httpx

from tasker import StepSequence, StepView, TaskView
from tasker.handlers import ApiStepHandler, TaskHandler


class OpenAccountHandler(TaskHandler):
    """No hooks: Ruby's class only loads its YAML (it could be aliased to ``TaskHandler`` instead)."""


class CreateAccountHandler(ApiStepHandler):
    """POST accounts (appended to the base path)."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> httpx.Response:
        return self.client.post("accounts", json=task.context["member"])

    def process_results(self, step: StepView, process_output: Any, initial_results: Any) -> None:
        step.results = {"account_id": process_output.json()["id"]}


def _account_id(sequence: StepSequence) -> Any:
    account = sequence.find_step_by_name("create_account")
    return account.results["account_id"] if account is not None else None


class SetupBillingHandler(ApiStepHandler):
    """POST billing/profiles for the new account."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> httpx.Response:
        plan = task.context["member"]["plan"]
        return self.client.post("billing/profiles", json={"account_id": _account_id(sequence), "plan": plan})

    def process_results(self, step: StepView, process_output: Any, initial_results: Any) -> None:
        step.results = {"billing_profile": process_output.json()["id"]}


class StorePreferencesHandler(ApiStepHandler):
    """PUT /prefs/v1/preferences: the leading slash replaces the base path, as in Faraday."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> httpx.Response:
        return self.client.put("/prefs/v1/preferences", json={"account_id": _account_id(sequence)})

    def process_results(self, step: StepView, process_output: Any, initial_results: Any) -> None:
        step.results = {"preferences": process_output.json()["id"]}


class SendWelcomeHandler(ApiStepHandler):
    """POST welcome once billing and preferences exist."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> httpx.Response:
        return self.client.post("welcome", json={"account_id": _account_id(sequence)})

    def process_results(self, step: StepView, process_output: Any, initial_results: Any) -> None:
        step.results = {"welcome": process_output.json()["id"]}
