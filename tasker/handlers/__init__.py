"""Handlers: the step handler base class, the HTTP API step handler and the optional task handler."""

from tasker.handlers.api import ApiStepHandler, AsyncApiStepHandler, parse_retry_after
from tasker.handlers.base import StepHandler
from tasker.handlers.task import TaskHandler

__all__ = [
    "ApiStepHandler",
    "AsyncApiStepHandler",
    "StepHandler",
    "TaskHandler",
    "parse_retry_after",
]
