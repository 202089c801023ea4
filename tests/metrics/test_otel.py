"""OTel messaging metrics, read back through an InMemoryMetricReader."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader, NumberDataPoint

from tasker import __version__
from tasker.metrics import OTelMessagingMetrics
from tasker.metrics.otel import MESSAGING_BUCKETS, destination_name


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def otel(reader: InMemoryMetricReader) -> OTelMessagingMetrics:
    return OTelMessagingMetrics(MeterProvider(metric_readers=[reader]), worker_name="worker-1")


def collected(reader: InMemoryMetricReader) -> dict[str, Any]:
    data = reader.get_metrics_data()
    assert data is not None
    return {
        metric.name: metric
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }


def points(metric: Any) -> dict[frozenset[tuple[str, Any]], Any]:
    return {frozenset(point.attributes.items()): point for point in metric.data.data_points}


PROCESS = {
    "messaging.system": "tasker",
    "messaging.operation.name": "process",
    "messaging.destination.name": "shop.order",
    "messaging.destination.partition.id": "worker-1",
}


def test_the_apalis_buckets() -> None:
    assert MESSAGING_BUCKETS == (
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 20, 30, 60, 120, 300, 600,
    )  # fmt: skip


def test_sent_and_consumed(otel: OTelMessagingMetrics, reader: InMemoryMetricReader) -> None:
    destination = destination_name("shop", "order")
    assert destination == "shop.order"
    otel.message_sent(destination)
    otel.message_sent(destination)
    otel.processed(destination, 0.1)
    metrics = collected(reader)

    sent = metrics["messaging.client.sent.messages"]
    assert sent.unit == "{message}"
    [(attributes, point)] = points(sent).items()
    assert isinstance(point, NumberDataPoint) and point.value == 2
    assert dict(attributes) == {
        "messaging.system": "tasker",
        "messaging.operation.name": "send",
        "messaging.destination.name": "shop.order",
    }

    consumed = metrics["messaging.client.consumed.messages"]
    assert consumed.unit == "{message}"
    [(attributes, point)] = points(consumed).items()
    assert point.value == 1
    assert dict(attributes) == {**PROCESS, "tasker.status": "ok"}


def test_process_duration(otel: OTelMessagingMetrics, reader: InMemoryMetricReader) -> None:
    otel.processed("shop.order", 0.2)
    otel.processed("shop.order", 0.4)
    otel.processed("shop.order", 17.0)
    otel.processed("shop.order", 700.0, error_type="tasker.errors.PermanentError")
    duration = collected(reader)["messaging.process.duration"]
    assert duration.unit == "s"
    by_attributes = points(duration)
    assert len(by_attributes) == 2
    ok = by_attributes[frozenset({**PROCESS, "tasker.status": "ok"}.items())]
    assert isinstance(ok, HistogramDataPoint)
    assert ok.count == 3 and ok.sum == pytest.approx(17.6)
    assert tuple(ok.explicit_bounds) == MESSAGING_BUCKETS
    bounds = list(MESSAGING_BUCKETS)
    assert ok.bucket_counts[bounds.index(0.25)] == 1 and ok.bucket_counts[bounds.index(0.5)] == 1
    assert ok.bucket_counts[bounds.index(20.0)] == 1  # 15 s < 17 s <= 20 s: a bucket of its own
    failed = by_attributes[
        frozenset({**PROCESS, "tasker.status": "error", "error.type": "tasker.errors.PermanentError"}.items())
    ]
    assert failed.count == 1
    assert failed.bucket_counts[-1] == 1  # above the last bound (600 s)


def test_every_observation_has_a_status_and_no_process_id(reader: InMemoryMetricReader) -> None:
    otel = OTelMessagingMetrics(MeterProvider(metric_readers=[reader]))  # no worker name configured
    otel.processed("shop.order", 0.1)
    otel.processed("shop.order", 0.1, error_type="ValueError")
    for name in ("messaging.client.consumed.messages", "messaging.process.duration"):
        for point in collected(reader)[name].data.data_points:
            assert point.attributes["tasker.status"] in ("ok", "error")
            assert "messaging.destination.partition.id" not in point.attributes
            assert ("error.type" in point.attributes) == (point.attributes["tasker.status"] == "error")


def test_scope_is_tasker_with_its_version(otel: OTelMessagingMetrics, reader: InMemoryMetricReader) -> None:
    otel.message_sent("shop.order")
    data = reader.get_metrics_data()
    assert data is not None
    scopes = {(s.scope.name, s.scope.version) for r in data.resource_metrics for s in r.scope_metrics}
    assert scopes == {("tasker", __version__)}


def test_custom_buckets(reader: InMemoryMetricReader) -> None:
    otel = OTelMessagingMetrics(MeterProvider(metric_readers=[reader]), buckets=[1.0, 5.0])
    otel.processed("shop.order", 2.0)
    [point] = collected(reader)["messaging.process.duration"].data.data_points
    assert tuple(point.explicit_bounds) == (1.0, 5.0)
    assert list(point.bucket_counts) == [0, 1, 0]
