"""Step handlers for the telemetry tests."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.trace import TracerProvider

from tasker import StepHandler, StepSequence, StepView, TaskView

#: Providers the handlers' own spans go to, by ``handler_config["provider"]`` (tests never set the global one).
PROVIDERS: dict[str, TracerProvider] = {}


class Traced(StepHandler):
    """Starts a span of its own inside ``process()``, the way an instrumented HTTP client or DB driver would."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        provider = PROVIDERS.get(str(self.config.get("provider", "")))
        tracer = trace.get_tracer("tests.telemetry.handlers", tracer_provider=provider)
        with tracer.start_as_current_span("handler.http_call", attributes={"http.method": "GET"}) as span:
            context = span.get_span_context()
            return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}


class Leaky(StepHandler):
    """Fails with the task's secrets quoted in the error message, the way careless code does."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        password, token = task.context.get("password"), task.context.get("api_token")
        raise RuntimeError(
            f"login failed: password={password} {{'api_token': '{token}'}} via https://bob:{password}@db.example"
        )


TRACED = "tests.telemetry.handlers:Traced"
LEAKY = "tests.telemetry.handlers:Leaky"
