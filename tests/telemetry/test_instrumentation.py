"""Instrumentations under tasker's telemetry, exported over real OTLP/HTTP to a local receiver.

The handler's own HTTP (httpx) and database (psycopg) spans are children of its step span when tasker installs
the provider (``exporter: otlp``); tasker's own polls and bookkeeping make no spans; CLI arguments are never
recorded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

from tasker import Tasker, TaskRequest, __version__
from tests.support import otlp
from tests.support.handlers import template
from tests.support.otlp import OtlpReceiver
from tests.telemetry.instrumented import HANDLER

receiver = pytest.fixture(otlp.receiver)


@pytest.fixture
def instrumented() -> Iterator[None]:
    HTTPXClientInstrumentor().instrument()
    PsycopgInstrumentor().instrument()
    yield
    PsycopgInstrumentor().uninstrument()
    HTTPXClientInstrumentor().uninstrument()


def _dsn(pg_url: str) -> str:
    return pg_url.replace("postgresql+psycopg://", "postgresql://", 1)


def test_handler_http_and_db_spans_nest_under_the_step_span(
    make_app: Callable[..., Tasker], receiver: OtlpReceiver, instrumented: None, pg_schema: str
) -> None:
    app = make_app({"telemetry": {"exporter": "otlp", "otlp_endpoint": receiver.url}})
    app.register_task_template(template("calls", {"call": []}, handler=HANDLER))
    task = app.create_task(
        TaskRequest(name="calls", version="1.0.0", context={"url": receiver.url + "/ping", "dsn": _dsn(pg_schema)})
    )
    assert app.run_until_done(task.task_id) == "complete"
    assert app.get_task(task.task_id).steps[0].results == {"status": 200, "one": 1}
    assert app.telemetry is not None and app.telemetry.force_flush()
    receiver.wait_for(lambda: bool(receiver.received("tasker.task.execution")))

    (step,) = receiver.received("tasker.step.execution")
    (task_span,) = receiver.received("tasker.task.execution")
    assert step.parent_span_id == task_span.span_id
    children = [s for s in receiver.received() if s.parent_span_id == step.span_id]
    http = [s for s in children if "http.request.method" in s.attributes or "http.method" in s.attributes]
    db = [s for s in children if "db.system" in s.attributes or "db.system.name" in s.attributes]
    assert len(http) == 1 and len(db) == 1, [(s.name, s.parent_span_id) for s in receiver.received()]
    assert {s.trace_id for s in receiver.received()} == {step.trace_id}  # one trace: nothing engine-internal
    others = {s.name for s in receiver.received()} - {s.name for s in (*http, *db)}
    assert others == {"tasker.task.enqueue", "tasker.task.execution", "tasker.step.execution"}
    assert step.scope == ("tasker", __version__)
    assert "service.version" not in step.resource or step.resource["service.version"] != __version__


@pytest.mark.slow
def test_an_idle_instrumented_worker_exports_no_spans_and_no_arguments(
    receiver: OtlpReceiver, pg_schema: str, tmp_path: Path
) -> None:
    templates = tmp_path / "tasks"
    templates.mkdir()
    (templates / "calls.yaml").write_text(yaml.safe_dump(template("calls", {"call": []}, handler=HANDLER)))
    secret_url = _dsn(pg_schema).replace("postgres@", "postgres:s3cr3t-pw@", 1)
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.telemetry.idle_worker", receiver.url, "worker", "--templates", str(templates),
         "--database-url", secret_url, "--poll-interval", "0.05"],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()},
    )  # fmt: skip
    assert process.stderr is not None
    line = process.stderr.readline()
    assert "template(s)" in line, line + process.stderr.read()
    time.sleep(5)  # the worker idles: about 100 polls and a claim recovery every 5 s
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0, process.stderr.read()
    receiver.wait_for(lambda: bool(receiver.received("probe")))
    assert [s.name for s in receiver.received()] == ["probe"]
    assert all("s3cr3t-pw" not in repr(s) for s in receiver.received())
