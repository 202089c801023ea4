"""JSON and CSV exports built from a registry's collected samples (reference §8.8 shapes).

``collect_points`` turns ``registry.collect()`` into one plain dict per series; ``to_json`` and ``to_csv``
encode those. No state is kept here: whatever the registry reports is what gets exported.
"""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import UTC, datetime
from typing import Any

from prometheus_client.registry import Collector

#: Version of the JSON document shape (``metadata.version``).
JSON_EXPORT_VERSION = "1.0.0"

CSV_COLUMNS = ("timestamp", "name", "type", "value")

# Families whose samples (``_bucket``, ``_count``, ``_sum``) are folded into one point per label set.
_GROUPED_TYPES = frozenset({"histogram", "summary"})
_SUFFIXES = ("_bucket", "_count", "_sum")


def _number(value: float) -> float | str:
    """JSON has no NaN/Infinity: spell those the Prometheus way (``+Inf``, ``-Inf``, ``NaN``)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return value


def collect_points(registry: Collector) -> list[dict[str, Any]]:
    """One dict per series: ``{name, type, value, labels, help}``; histograms carry count/sum/buckets instead.

    Counter names keep their ``_total`` suffix; ``_created`` samples are left out.
    """
    points: list[dict[str, Any]] = []
    for family in registry.collect():
        if family.type not in _GROUPED_TYPES:
            created = family.name + "_created"
            points.extend(
                {
                    "name": sample.name,
                    "type": family.type,
                    "value": _number(sample.value),
                    "labels": dict(sample.labels),
                    "help": family.documentation,
                }
                for sample in family.samples
                if sample.name != created
            )
            continue
        series: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
        for sample in family.samples:
            suffix = sample.name[len(family.name) :]
            if suffix not in _SUFFIXES:
                continue
            labels = {key: value for key, value in sample.labels.items() if key != "le"}
            key = tuple(sorted(labels.items()))
            point = series.get(key)
            if point is None:
                point = series[key] = {"name": family.name, "type": family.type, "count": 0, "sum": 0.0}
                if family.type == "histogram":
                    point["buckets"] = {}
                point.update(labels=labels, help=family.documentation)
            if suffix == "_bucket":
                point["buckets"][sample.labels["le"]] = int(sample.value)
            elif suffix == "_count":
                point["count"] = int(sample.value)
            else:
                point["sum"] = _number(sample.value)
        points.extend(series.values())
    return points


def export_timestamp() -> str:
    """The current UTC time in ISO 8601 (millisecond precision)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def to_json(points: list[dict[str, Any]], timestamp: str) -> str:
    """The JSON export document: ``{timestamp, metrics, total_metrics, metadata}``."""
    document = {
        "timestamp": timestamp,
        "metrics": points,
        "total_metrics": len(points),
        "metadata": {"exporter": "json", "version": JSON_EXPORT_VERSION, "exported_at": timestamp},
    }
    return json.dumps(document)


def to_csv(points: list[dict[str, Any]], timestamp: str) -> str:
    """CSV with ``timestamp,name,type,value`` and one sorted ``label_<key>`` column per label key.

    A histogram becomes two rows, ``<name>_count`` and ``<name>_sum``. No points give the header row alone.
    """
    rows: list[tuple[str, str, float | str, dict[str, str]]] = []
    for point in points:
        if "value" in point:
            rows.append((point["name"], point["type"], point["value"], point["labels"]))
        else:
            rows.append((point["name"] + "_count", point["type"], point["count"], point["labels"]))
            rows.append((point["name"] + "_sum", point["type"], point["sum"], point["labels"]))
    label_keys = sorted({key for *_, labels in rows for key in labels})
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*CSV_COLUMNS, *(f"label_{key}" for key in label_keys)])
    for name, kind, value, labels in rows:
        writer.writerow([timestamp, name, kind, value, *(labels.get(key, "") for key in label_keys)])
    return buffer.getvalue()
