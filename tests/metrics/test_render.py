"""Rendering: Prometheus text and OpenMetrics (checked with prometheus_client's parsers), JSON, CSV."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from tasker.errors import MetricsError
from tasker.metrics import ENGINE_METRICS, MetricsBackend
from tasker.metrics.export import JSON_EXPORT_VERSION

TASK = {"namespace": "shop", "task": "order", "version": "1.0.0"}


@pytest.fixture
def recorded(backend: MetricsBackend) -> MetricsBackend:
    backend.task_created("shop", "order", "1.0.0")
    backend.task_created("shop", "order", "1.0.0")
    backend.task_started("shop", "order", "1.0.0", queue_wait=0.3)
    backend.step_executed("shop", "order", "1.0.0", "pay", "complete", 0.02)
    backend.step_executed("shop", "order", "1.0.0", "pay", "error", 0.5)
    backend.step_retried("shop", "order", "1.0.0", "pay")
    backend.task_finished("shop", "order", "1.0.0", "complete", 1.5)
    backend.subscriber_error("Notify", "task.completed")
    return backend


def samples(families: object) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in families  # type: ignore[attr-defined]
        for sample in family.samples
    }


def test_openmetrics_parses_strictly(recorded: MetricsBackend) -> None:
    text = recorded.render("openmetrics")
    assert text.endswith("# EOF\n")
    families = {family.name: family for family in parse_openmetrics(text)}
    for spec in ENGINE_METRICS.values():
        if spec.source == "database":
            continue  # the app's DatabaseCollector yields them (tests/metrics/test_database.py)
        family = families[spec.name.removesuffix("_total")]
        assert family.type == spec.kind
        assert family.documentation == spec.help
    values = samples(families.values())
    assert values[("tasker_tasks_created_total", tuple(sorted(TASK.items())))] == 2
    step = tuple(sorted({**TASK, "step": "pay", "status": "error"}.items()))
    assert values[("tasker_step_duration_seconds_count", step)] == 1
    assert values[("tasker_step_duration_seconds_bucket", tuple(sorted([*step, ("le", "+Inf")])))] == 1


def test_prometheus_text_parses(recorded: MetricsBackend) -> None:
    text = recorded.render("prometheus")
    assert "# EOF" not in text
    families = list(parse_text(text))
    assert {family.name for family in families} >= {
        spec.name.removesuffix("_total") for spec in ENGINE_METRICS.values() if spec.source == "process"
    }
    values = samples(families)
    assert values[("tasker_tasks_finished_total", tuple(sorted({**TASK, "status": "complete"}.items())))] == 1
    assert recorded.render() == text  # prometheus is the default


def test_empty_backend_renders_valid_exposition(backend: MetricsBackend) -> None:
    process = [spec for spec in ENGINE_METRICS.values() if spec.source == "process"]
    assert len(list(parse_openmetrics(backend.render("openmetrics")))) == len(process)
    assert len(list(parse_text(backend.render("prometheus")))) == len(process)


def test_unknown_format_lists_the_formats(backend: MetricsBackend) -> None:
    with pytest.raises(MetricsError, match="unknown metrics format 'xml'; expected one of: prometheus, "):
        backend.render("xml")
    with pytest.raises(MetricsError, match="openmetrics, json, csv"):
        MetricsBackend(enabled=False).render("yaml")


def test_json_shape(recorded: MetricsBackend) -> None:
    document = json.loads(recorded.render("json"))
    assert set(document) == {"timestamp", "metrics", "total_metrics", "metadata"}
    assert document["metadata"] == {
        "exporter": "json",
        "version": JSON_EXPORT_VERSION,
        "exported_at": document["timestamp"],
    }
    datetime.fromisoformat(document["timestamp"])
    assert document["total_metrics"] == len(document["metrics"])
    by_name: dict[str, list[dict[str, object]]] = {}
    for metric in document["metrics"]:
        by_name.setdefault(metric["name"], []).append(metric)

    [created] = by_name["tasker_tasks_created_total"]
    assert created == {
        "name": "tasker_tasks_created_total",
        "type": "counter",
        "value": 2.0,
        "labels": TASK,
        "help": ENGINE_METRICS["tasker_tasks_created_total"].help,
    }
    durations = {metric["labels"]["status"]: metric for metric in by_name["tasker_step_duration_seconds"]}  # type: ignore[index]
    error = durations["error"]
    assert error["type"] == "histogram"
    assert "value" not in error
    assert error["count"] == 1
    assert error["sum"] == 0.5
    assert error["labels"] == {**TASK, "step": "pay", "status": "error"}
    buckets = error["buckets"]
    assert isinstance(buckets, dict)
    assert buckets["0.25"] == 0 and buckets["0.5"] == 1 and buckets["+Inf"] == 1
    assert list(buckets)[-1] == "+Inf"
    assert not any(name.endswith("_created") for name in by_name)


def test_json_spells_non_finite_values(backend: MetricsBackend) -> None:
    backend.gauge("ratio").set(float("inf"))
    backend.gauge("other").set(float("nan"))
    metrics = {metric["name"]: metric for metric in json.loads(backend.render("json"))["metrics"]}
    assert metrics["ratio"]["value"] == "+Inf"
    assert metrics["other"]["value"] == "NaN"


def test_json_with_no_samples(backend: MetricsBackend) -> None:
    document = json.loads(backend.render("json"))
    assert document["metrics"] == []
    assert document["total_metrics"] == 0


def test_csv_shape(recorded: MetricsBackend) -> None:
    recorded.counter("plain_total").inc(3)
    text = recorded.render("csv")
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    assert header == [
        "timestamp",
        "name",
        "type",
        "value",
        "label_event",
        "label_namespace",
        "label_status",
        "label_step",
        "label_subscriber",
        "label_task",
        "label_version",
    ]
    records = [dict(zip(header, row, strict=True)) for row in rows[1:]]
    assert len({record["timestamp"] for record in records}) == 1
    by_key = {(r["name"], r["label_status"], r["label_step"]): r for r in records}
    created = by_key[("tasker_tasks_created_total", "", "")]
    assert (created["type"], float(created["value"]), created["label_namespace"]) == ("counter", 2.0, "shop")
    assert created["label_event"] == ""
    count = by_key[("tasker_step_duration_seconds_count", "error", "pay")]
    total = by_key[("tasker_step_duration_seconds_sum", "error", "pay")]
    assert (count["type"], count["value"], float(total["value"])) == ("histogram", "1", 0.5)
    errors = by_key[("tasker_event_subscriber_errors_total", "", "")]
    assert (errors["label_subscriber"], errors["label_event"]) == ("Notify", "task.completed")
    plain = by_key[("plain_total", "", "")]
    assert plain["value"] == "3.0" and plain["label_namespace"] == ""
    assert not any(record["name"].endswith(("_created", "_bucket")) for record in records)


def test_csv_with_no_samples_is_the_header_row(backend: MetricsBackend) -> None:
    assert backend.render("csv") == "timestamp,name,type,value\n"
