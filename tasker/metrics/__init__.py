"""tasker.metrics: the engine's Prometheus metrics, catalog, exposition (HTTP, JSON, CSV) and OTel metrics.

The names below load on first access. ``import tasker`` imports this package (for ``MetricsBackend``), and
``python -m tasker.metrics.catalog`` only runs cleanly when that has not already imported the catalog module.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tasker.metrics.backend import CounterInstrument, GaugeInstrument, HistogramInstrument, MetricsBackend
    from tasker.metrics.catalog import ENGINE_METRICS, MetricSpec, render_catalog_markdown
    from tasker.metrics.database import DatabaseCollector, Heartbeat
    from tasker.metrics.http import MetricsAuth, MetricsServer, make_metrics_app, run_metrics_server, serve_metrics
    from tasker.metrics.multiprocess import cleanup_dead_processes, mark_process_dead
    from tasker.metrics.otel import OTelMessagingMetrics

_MODULES = {
    "backend": ("CounterInstrument", "GaugeInstrument", "HistogramInstrument", "MetricsBackend"),
    "catalog": ("ENGINE_METRICS", "MetricSpec", "render_catalog_markdown"),
    "database": ("DatabaseCollector", "Heartbeat"),
    "http": ("MetricsAuth", "MetricsServer", "make_metrics_app", "run_metrics_server", "serve_metrics"),
    "multiprocess": ("cleanup_dead_processes", "mark_process_dead"),
    "otel": ("OTelMessagingMetrics",),
}
_HOME = {name: f"{__name__}.{module}" for module, names in _MODULES.items() for name in names}

__all__ = [
    "ENGINE_METRICS",
    "CounterInstrument",
    "DatabaseCollector",
    "GaugeInstrument",
    "Heartbeat",
    "HistogramInstrument",
    "MetricSpec",
    "MetricsAuth",
    "MetricsBackend",
    "MetricsServer",
    "OTelMessagingMetrics",
    "cleanup_dead_processes",
    "make_metrics_app",
    "mark_process_dead",
    "render_catalog_markdown",
    "run_metrics_server",
    "serve_metrics",
]


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
