"""OTel messaging metrics, read back through an InMemoryMetricReader."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader, NumberDataPoint

from tasker.config import JOB_BUCKETS
from tasker.metrics import OTelMessagingMetrics
from tasker.metrics.otel import destination_name


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def otel(reader: InMemoryMetricReader) -> OTelMessagingMetrics:
    return OTelMessagingMetrics(MeterProvider(metric_readers=[reader]))


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


def test_sent_and_consumed(otel: OTelMessagingMetrics, reader: InMemoryMetricReader) -> None:
    destination = destination_name("shop", "order")
    assert destination == "shop.order"
    otel.message_sent(destination)
    otel.message_sent(destination)
    otel.message_consumed(destination, "worker-1")
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
    assert dict(attributes) == {
        "messaging.system": "tasker",
        "messaging.operation.name": "process",
        "messaging.destination.name": "shop.order",
        "messaging.destination.partition.id": "worker-1",
    }


def test_process_duration(otel: OTelMessagingMetrics, reader: InMemoryMetricReader) -> None:
    otel.processed("shop.order", "worker-1", 0.2)
    otel.processed("shop.order", "worker-1", 0.4)
    otel.processed("shop.order", "worker-1", 700.0, error_type="tasker.errors.PermanentError")
    duration = collected(reader)["messaging.process.duration"]
    assert duration.unit == "s"
    by_attributes = points(duration)
    assert len(by_attributes) == 2
    success = {
        "messaging.system": "tasker",
        "messaging.operation.name": "process",
        "messaging.destination.name": "shop.order",
        "messaging.destination.partition.id": "worker-1",
    }
    ok = by_attributes[frozenset(success.items())]
    assert isinstance(ok, HistogramDataPoint)
    assert ok.count == 2 and ok.sum == pytest.approx(0.6)
    assert tuple(ok.explicit_bounds) == JOB_BUCKETS
    assert ok.bucket_counts[JOB_BUCKETS.index(0.25)] == 1 and ok.bucket_counts[JOB_BUCKETS.index(0.5)] == 1
    failed = by_attributes[frozenset({**success, "error.type": "tasker.errors.PermanentError"}.items())]
    assert failed.count == 1
    assert failed.bucket_counts[-1] == 1  # above the last bound (600 s)


def test_error_type_only_on_failure(otel: OTelMessagingMetrics, reader: InMemoryMetricReader) -> None:
    otel.message_sent("shop.order")
    otel.message_consumed("shop.order", "w")
    otel.processed("shop.order", "w", 0.1)
    for metric in collected(reader).values():
        for point in metric.data.data_points:
            assert "error.type" not in point.attributes


def test_custom_buckets(reader: InMemoryMetricReader) -> None:
    otel = OTelMessagingMetrics(MeterProvider(metric_readers=[reader]), buckets=[1.0, 5.0])
    otel.processed("shop.order", "w", 2.0)
    [point] = collected(reader)["messaging.process.duration"].data.data_points
    assert tuple(point.explicit_bounds) == (1.0, 5.0)
    assert list(point.bucket_counts) == [0, 1, 0]
