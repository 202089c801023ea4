"""Tests that let tasker install the process's global OpenTelemetry providers put them back afterwards."""

from __future__ import annotations

from opentelemetry import metrics, trace
from opentelemetry.metrics import _internal as metrics_internal
from opentelemetry.util._once import Once


def reset_global_providers() -> None:
    """Shut down and forget the global tracer and meter providers (the API allows setting them once)."""
    for provider in (trace._TRACER_PROVIDER, metrics_internal._METER_PROVIDER):
        shutdown = getattr(provider, "shutdown", None)
        if callable(shutdown):
            shutdown()
    trace._TRACER_PROVIDER = None
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    metrics_internal._METER_PROVIDER = None
    metrics_internal._METER_PROVIDER_SET_ONCE = Once()
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    assert type(metrics.get_meter_provider()).__name__ == "_ProxyMeterProvider"
