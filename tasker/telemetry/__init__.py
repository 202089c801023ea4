"""tasker.telemetry: OpenTelemetry tracing of tasks, one trace per task across processes and retries.

Modules: ``propagation`` (the trace ids fixed and stored at task creation, W3C carriers), ``subscriber``
(:class:`TelemetrySubscriber`: lifecycle events -> spans), ``ids`` (preset span ids on the SDK tracer),
``redaction`` (the sensitive-data filter for span attributes), ``sampling`` (:class:`TailSamplingProcessor`),
``setup`` (providers and exporters from ``TelemetryConfig``), ``logs`` (trace ids in log records),
``waterfall`` (a terminal rendering of a task's spans). See docs/telemetry.md.
"""

from tasker.telemetry.logs import TraceContextFilter, install_log_correlation
from tasker.telemetry.sampling import TailSamplingProcessor
from tasker.telemetry.setup import AppTelemetry, build_tracer_provider
from tasker.telemetry.subscriber import TelemetrySubscriber
from tasker.telemetry.waterfall import render_waterfall

__all__ = [
    "AppTelemetry",
    "TailSamplingProcessor",
    "TelemetrySubscriber",
    "TraceContextFilter",
    "build_tracer_provider",
    "install_log_correlation",
    "render_waterfall",
]
