"""A handler whose own code makes instrumented calls: an HTTP request (httpx) and a query (psycopg)."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg

from tasker import StepHandler, StepSequence, StepView, TaskView

HANDLER = "tests.telemetry.instrumented:CallsOut"


class CallsOut(StepHandler):
    """GETs ``context["url"]`` and runs ``SELECT 1`` on ``context["dsn"]``."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        with httpx.Client() as client:
            status = client.get(task.context["url"]).status_code
        with psycopg.connect(task.context["dsn"]) as connection:
            (one,) = connection.execute("SELECT 1").fetchone() or (None,)
        return {"status": status, "one": one}
