"""Step handlers: the base class users subclass, and the HTTP API handler."""

from tasker.handlers.api import ApiStepHandler, parse_retry_after
from tasker.handlers.base import StepHandler

__all__ = ["ApiStepHandler", "StepHandler", "parse_retry_after"]
