"""The Celery app the Celery tests' worker processes run: ``celery -A tests.support.celery_app:celery_app worker``.

Configured through the environment the test gives the worker:

``TASKER_TEST_DATABASE_URL`` the database · ``TASKER_TEST_CONFIG`` app config (JSON) ·
``TASKER_TEST_TEMPLATES`` task templates (JSON list) · ``TASKER_TEST_BROKER_URL`` · ``TASKER_TEST_CELERY_QUEUE`` ·
``TASKER_TEST_DISPATCH`` (``1``: dispatch steps) · ``TASKER_TEST_SPANS_FILE`` (export spans there, one JSON
object per line) · ``TASKER_TEST_OTEL_CELERY`` (``1``: enable opentelemetry-instrumentation-celery on the spans
file's provider; ``global``: ``CeleryInstrumentor().instrument()`` with no provider, as docs/deployment.md says).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from tasker import Tasker
from tasker.executors.celery import create_celery_app
from tasker.telemetry import TelemetrySubscriber


def span_record(span: ReadableSpan) -> dict[str, Any]:
    """The fields the tests look at, JSON-ready."""
    context = span.get_span_context()
    assert context is not None
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": f"{context.trace_id:032x}",
        "span_id": f"{context.span_id:016x}",
        "parent_id": f"{span.parent.span_id:016x}" if span.parent is not None else None,
        "start": span.start_time,
        "end": span.end_time,
        "status": span.status.status_code.name,
        "attributes": {
            key: value if isinstance(value, str | int | float | bool) else list(value or ())
            for key, value in (span.attributes or {}).items()
        },
        "pid": os.getpid(),
    }


class JsonLinesSpanExporter(SpanExporter):
    """Appends one JSON object per finished span to a file shared by every process of a test."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Write the batch with one ``write`` (O_APPEND keeps lines of concurrent processes whole)."""
        data = "".join(json.dumps(span_record(span)) + "\n" for span in spans)
        with self._lock, open(self.path, "a") as out:
            out.write(data)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing to release."""


def read_spans(path: str) -> list[dict[str, Any]]:
    """Every span exported to ``path`` so far."""
    if not os.path.exists(path):
        return []
    with open(path) as spans:
        return [json.loads(line) for line in spans if line.strip()]


def make_tasker() -> Tasker:
    """The worker's app (called in each pool process after the fork)."""
    app = Tasker(
        os.environ["TASKER_TEST_DATABASE_URL"], config=json.loads(os.environ.get("TASKER_TEST_CONFIG") or "{}")
    )
    for template in json.loads(os.environ.get("TASKER_TEST_TEMPLATES") or "[]"):
        app.register_task_template(template)
    if os.environ.get("TASKER_TEST_OTEL_CELERY") == "global":  # the deployment guide's recipe, word for word
        from opentelemetry.instrumentation.celery import CeleryInstrumentor

        CeleryInstrumentor().instrument()
    spans = os.environ.get("TASKER_TEST_SPANS_FILE")
    if spans:
        provider = TracerProvider(resource=Resource.create({"service.name": "tasker-test-worker"}))
        provider.add_span_processor(BatchSpanProcessor(JsonLinesSpanExporter(spans)))
        trace.set_tracer_provider(provider)  # global: the executor flushes it when the process exits
        app.subscribe(TelemetrySubscriber(provider))
        if os.environ.get("TASKER_TEST_OTEL_CELERY") == "1":
            from opentelemetry.instrumentation.celery import CeleryInstrumentor

            CeleryInstrumentor().instrument(tracer_provider=provider)
    return app


celery_app = create_celery_app(
    make_tasker,
    broker_url=os.environ.get("TASKER_TEST_BROKER_URL", "redis://127.0.0.1:6379/0"),
    queue=os.environ.get("TASKER_TEST_CELERY_QUEUE", "tasker-tests"),
    dispatch_steps=os.environ.get("TASKER_TEST_DISPATCH") == "1",
)
