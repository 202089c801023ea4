"""Step handlers: the base class users subclass, and the HTTP API handler."""

from tasker.handlers.base import StepHandler

__all__ = ["StepHandler"]
