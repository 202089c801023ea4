"""Step handlers of the dashboard tests: a step that fails until a flag file exists, quoting a secret."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tasker import StepHandler, StepSequence, StepView, TaskView
from tasker.errors import PermanentError


class Gate(StepHandler):
    """Fails permanently (with a password in the message) until the file ``flag`` exists."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        if not Path(self.config["flag"]).exists():
            raise PermanentError("gate closed: login with password=hunter2 refused")
        return {"opened": True}
