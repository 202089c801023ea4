"""Step handler classes that the template tests refer to by import path."""

from __future__ import annotations

from typing import Any

from tasker.handlers.base import StepHandler
from tasker.handlers.task import TaskHandler
from tasker.views import StepSequence, StepView, TaskView


class ValidateOrder(StepHandler):
    """Root step of the diamond."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        return {"valid": True}


class ReserveStock(StepHandler):
    """Left branch of the diamond."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        return {"reserved": True}


class ChargeCard(StepHandler):
    """Right branch of the diamond."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        return {"charged": True}


class SendConfirmation(StepHandler):
    """Join step of the diamond."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        return {"sent": True}


class Outer:
    """Holds a nested handler class, to test ``module:Outer.Inner`` paths."""

    class Inner(StepHandler):
        """A handler nested in a class."""


class NotAHandler:
    """A class that is not a StepHandler."""


not_a_class = 42


class RubyTaskHandler(TaskHandler):
    """A task handler the Ruby-name tests resolve through an alias."""
