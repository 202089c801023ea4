"""``python -m tests.telemetry.idle_worker OTLP_URL ARGS...``: ``tasker ARGS`` under psycopg and click instrumentation.

The process has its own global TracerProvider exporting over OTLP (like ``opentelemetry-instrument`` with a
distro); one ``probe`` span is made on the way out, so the receiver sees that the pipeline worked.
"""

from __future__ import annotations

import sys

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.click import ClickInstrumentor
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=sys.argv[1] + "/v1/traces")))
trace.set_tracer_provider(provider)
PsycopgInstrumentor().instrument()
ClickInstrumentor().instrument()

from tasker.cli import main  # noqa: E402 - instrumented before tasker is imported, as auto-instrumentation does

try:
    main(sys.argv[2:], prog_name="tasker")
finally:
    trace.get_tracer("probe").start_span("probe").end()
    provider.shutdown()
