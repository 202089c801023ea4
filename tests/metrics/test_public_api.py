"""The public names of tasker.metrics."""

from __future__ import annotations

import pytest

import tasker.metrics


def test_exported_names() -> None:
    assert tasker.metrics.__all__ == [
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
    for name in tasker.metrics.__all__:
        assert getattr(tasker.metrics, name) is not None
        assert name in dir(tasker.metrics)


def test_unknown_name() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        _ = tasker.metrics.Nope
