"""Step handlers for the API tests: results and errors that quote secrets."""

from __future__ import annotations

from typing import Any

from tasker import StepHandler, StepSequence, StepView, TaskView
from tasker.errors import PermanentError


class Leaky(StepHandler):
    """Returns results with a sensitive key and a secret in free text."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        return {"api_key": "sk-live-123", "note": "login with password=hunter2 worked", "ok": True}


class FailsLeaky(StepHandler):
    """Fails permanently with a secret in the error message."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        raise PermanentError("login failed: password=hunter2 for https://bob:s3cret@db.example")
