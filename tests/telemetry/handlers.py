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


#: Secrets the masking test plants (each must reach no sink); the card number is Luhn-valid.
SECRETS = {
    "password": "hunter2-pw-XYZ",
    "api_key": "ak_live_Q9w8e7r6",
    "token": "tok_5f4e3d2c1b",
    "bearer": "eyJhbGciOiJIUzI1NiJ9.cGF5bG9hZA.c2lnbmF0dXJl",
    "card": "4111 1111 1111 1111",
}


class Echo(StepHandler):
    """Returns the secrets in its results: under innocent keys, as free text, a card number as an integer."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        s = SECRETS
        return {
            "summary": f"called with password: {s['password']} and Authorization: Bearer {s['bearer']}",
            "payment": {"cc": int(s["card"].replace(" ", "")), "holder": "ann"},
            "headers": '{"api_key": "' + s["api_key"] + '"}',
        }


class Careless(StepHandler):
    """Fails permanently with every secret in its message and its traceback."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        s = SECRETS
        try:
            raise ConnectionError(f"upstream rejected Authorization: Basic {s['bearer']} (card {s['card']})")
        except ConnectionError as exc:
            raise RuntimeError(
                f"login failed password={s['password']} api_key={s['api_key']} token: {s['token']} "
                f"card={s['card'].replace(' ', '-')}"
            ) from exc


ECHO = "tests.telemetry.handlers:Echo"
CARELESS = "tests.telemetry.handlers:Careless"
