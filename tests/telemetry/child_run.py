"""Runs one task in a fresh process with its own provider; spans go to a file as JSON lines.

``python tests/telemetry/child_run.py DB_URL TASK_ID SPANS_FILE TEMPLATE_JSON CONFIG_JSON [PROPAGATION]``
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root: tests.support.handlers

from tasker import Tasker
from tasker.telemetry import TelemetrySubscriber


def span_dict(span: ReadableSpan) -> dict[str, Any]:
    """The parts of a span the tests compare."""
    assert span.context is not None
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": f"{span.context.trace_id:032x}",
        "span_id": f"{span.context.span_id:016x}",
        "parent_id": f"{span.parent.span_id:016x}" if span.parent is not None else None,
        "parent_is_remote": span.parent.is_remote if span.parent is not None else None,
        "status": span.status.status_code.name,
        "attributes": dict(span.attributes or {}),
        "events": [{"name": e.name, "attributes": dict(e.attributes or {})} for e in span.events],
        "links": [f"{link.context.trace_id:032x}/{link.context.span_id:016x}" for link in span.links],
        "start": span.start_time,
        "end": span.end_time,
    }


class JsonLinesExporter(SpanExporter):
    """Appends one JSON object per span to a file."""

    def __init__(self, path: str) -> None:
        self.path = path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with open(self.path, "a") as out:
            for span in spans:
                out.write(json.dumps(span_dict(span)) + "\n")
        return SpanExportResult.SUCCESS


def main() -> None:
    url, task_id, spans_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    template, config = json.loads(sys.argv[4]), json.loads(sys.argv[5])
    propagation = sys.argv[6] if len(sys.argv) > 6 else "parent"
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesExporter(spans_file)))
    app = Tasker(url, config=config)
    app.register_task_template(template)
    app.subscribe(TelemetrySubscriber(tracer_provider=provider, propagation=propagation))  # type: ignore[arg-type]
    print(app.run_until_done(task_id, timeout=60), flush=True)
    app.shutdown()
    provider.shutdown()


if __name__ == "__main__":
    main()
