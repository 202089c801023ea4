"""``BlogExamples::Post02``: the analytics pipeline of Ruby's blog post 02, publishing its events by Ruby's names."""

from __future__ import annotations

from typing import Any

from tasker import StepHandler, StepSequence, StepView, TaskView
from tasker.errors import RetryableError


class _Extract(StepHandler):
    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        self.publish_event("data_extraction_started", {"step_name": step.name})
        if step.attempts < (task.context.get("flaky") or {}).get(step.name, 0):
            self.publish_event("data_extraction_failed", {"step_name": step.name})  # not declared, as in Ruby
            raise RetryableError(f"{step.name}: source unavailable")
        self.publish_event("data_extraction_completed", {"step_name": step.name, "records_extracted": 10})
        return {"records": 10}


class ExtractOrdersHandler(_Extract):
    """Orders."""


class ExtractUsersHandler(_Extract):
    """Users."""


class ExtractProductsHandler(_Extract):
    """Products."""


class _Stage(StepHandler):
    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        self.publish_event("pipeline_milestone_reached", {"milestone": step.name})
        return {"done": step.name}


class TransformCustomerMetricsHandler(_Stage):
    """Customer metrics."""


class TransformProductMetricsHandler(_Stage):
    """Product metrics."""


class GenerateInsightsHandler(_Stage):
    """Insights."""


class UpdateDashboardHandler(_Stage):
    """Dashboard."""


class SendNotificationsHandler(_Stage):
    """Notifications."""
