"""Secrets in context, results, exception messages and tracebacks reach no sink; the database keeps them.

Sinks: event payloads, spans, log records (with tracebacks), transition metadata and ``tasker trace``.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from tasker.cli import main
from tasker.models import Task, TaskTransition, WorkflowStepTransition
from tests.support.handlers import template
from tests.telemetry.conftest import Traced
from tests.telemetry.handlers import CARELESS, ECHO, SECRETS

#: Every form a secret may take in text: the card with spaces, dashes or none at all.
FORMS = [
    *SECRETS.values(),
    SECRETS["card"].replace(" ", ""),
    SECRETS["card"].replace(" ", "-"),
]


def occurrences(text: str) -> dict[str, int]:
    return {form: text.count(form) for form in FORMS if text.count(form)}


@pytest.fixture
def log_text() -> Iterator[io.StringIO]:
    """Everything tasker logs (DEBUG and up, tracebacks included), formatted as a handler would."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    log = logging.getLogger("tasker")
    previous = log.level
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    yield stream
    log.removeHandler(handler)
    log.setLevel(previous)


def test_no_sink_carries_a_secret(traced: Traced, log_text: io.StringIO) -> None:
    app = traced.app
    events: list[dict[str, Any]] = []
    for name in app.events.catalog.names():
        app.events.subscribe(name, lambda event: events.append({"name": event.name, **event.payload}))
    s = SECRETS
    context = {
        "password": s["password"],
        "api_key": s["api_key"],
        "token": s["token"],
        "note": f"use Authorization: Bearer {s['bearer']} for the call",  # innocent keys from here on
        "card": s["card"],
        "cc": int(s["card"].replace(" ", "")),
        "billing": {"line": f"card {s['card'].replace(' ', '-')} charged"},
    }
    tmpl = template("payment", {"echo": [], "charge": ["echo"]}, retry_limit=1)
    tmpl["step_templates"][0]["handler_class"] = ECHO
    tmpl["step_templates"][1]["handler_class"] = CARELESS
    task_id, status = traced.run(tmpl, context)
    assert status == "error"

    sinks: dict[str, str] = {
        "events": json.dumps(events, default=str),
        "spans": "\n".join(span.to_json() for span in traced.spans()),
        "logs": log_text.getvalue(),
    }
    with app.db.read() as session:
        transitions = [
            *session.scalars(select(TaskTransition.metadata_)),
            *session.scalars(select(WorkflowStepTransition.metadata_)),
        ]
        stored_context = session.scalar(select(Task.context).where(Task.task_id == task_id))
    sinks["transition metadata"] = json.dumps(transitions, default=str)
    result = CliRunner().invoke(main, ["trace", str(task_id), "--database-url", app.db.url])
    assert result.exit_code == 0, result.output
    sinks["tasker trace"] = result.output

    # The sinks did get the events, spans, logs and rows (the test can fail) ...
    assert "login failed" in sinks["events"] and "login failed" in sinks["spans"]
    assert "login failed" in sinks["logs"] and "Traceback" in sinks["logs"] and "ConnectionError" in sinks["logs"]
    assert "login failed" in sinks["transition metadata"] and "login failed" in sinks["tasker trace"]
    # ... and not one secret in any of them.
    assert {sink: occurrences(text) for sink, text in sinks.items() if occurrences(text)} == {}
    # The database keeps what the user wrote.
    assert stored_context == context
    (echo, _) = app.get_task(task_id).steps
    assert echo.results["payment"]["cc"] == context["cc"]
