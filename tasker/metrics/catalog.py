"""The engine's metric catalog: every metric tasker records, as data.

This is the one source of truth: :class:`~tasker.metrics.MetricsBackend` creates its engine metrics from it
(``source="process"``: recorded where things happen), :class:`~tasker.metrics.database.DatabaseCollector`
yields the ``source="database"`` gauges at scrape time, and ``docs/metrics.md`` embeds
:func:`render_catalog_markdown` (print it with ``python -m tasker.metrics.catalog``).
Labels are bounded (namespace, task, version, step, status, subscriber, event, kind), never ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

MetricKind = Literal["counter", "gauge", "histogram"]
MetricSource = Literal["process", "database"]

#: Gauge aggregation modes of prometheus_client's multiprocess mode.
MultiprocessMode = Literal[
    "all", "liveall", "min", "livemin", "max", "livemax", "sum", "livesum", "mostrecent", "livemostrecent"
]

_TASK = ("namespace", "task", "version")


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric's definition: name, kind, help text, label names, multiprocess gauge mode and source."""

    name: str
    kind: MetricKind
    help: str
    labels: tuple[str, ...]
    multiprocess_mode: MultiprocessMode | None = None
    source: MetricSource = "process"


def _catalog(*specs: MetricSpec) -> Mapping[str, MetricSpec]:
    return MappingProxyType({spec.name: spec for spec in specs})


#: The engine metrics by name, in documentation order.
ENGINE_METRICS: Mapping[str, MetricSpec] = _catalog(
    MetricSpec(
        "tasker_tasks_created_total",
        "counter",
        "Tasks created.",
        _TASK,
    ),
    MetricSpec(
        "tasker_tasks_finished_total",
        "counter",
        "Tasks that reached a terminal status (complete, error, cancelled, resolved_manually).",
        (*_TASK, "status"),
    ),
    MetricSpec(
        "tasker_task_duration_seconds",
        "histogram",
        "Seconds from task creation to its terminal status.",
        (*_TASK, "status"),
    ),
    MetricSpec(
        "tasker_task_queue_wait_seconds",
        "histogram",
        "Seconds from when a task was due to when a worker picked it up.",
        _TASK,
    ),
    MetricSpec(
        "tasker_step_executions_total",
        "counter",
        "Step execution attempts by outcome (complete or error).",
        (*_TASK, "step", "status"),
    ),
    MetricSpec(
        "tasker_step_duration_seconds",
        "histogram",
        "Seconds one step execution attempt took.",
        (*_TASK, "step", "status"),
    ),
    MetricSpec(
        "tasker_step_retries_total",
        "counter",
        "Failed steps scheduled for another attempt.",
        (*_TASK, "step"),
    ),
    MetricSpec(
        "tasker_step_retries_exhausted_total",
        "counter",
        "Failed steps with no attempts left.",
        (*_TASK, "step"),
    ),
    MetricSpec(
        "tasker_step_timeouts_total",
        "counter",
        "Step attempts that timed out: ran past their timeout (StepTimeoutError), or their worker stopped "
        "renewing the lease (died or hung; recovered as LeaseExpired).",
        (*_TASK, "step"),
    ),
    MetricSpec(
        "tasker_event_subscriber_errors_total",
        "counter",
        "Exceptions raised by event subscribers (the workflow carried on).",
        ("subscriber", "event"),
    ),
    MetricSpec(
        "tasker_event_subscriber_slow_total",
        "counter",
        "Synchronous subscriber deliveries slower than events.slow_subscriber_seconds.",
        ("subscriber", "event"),
    ),
    MetricSpec(
        "tasker_events_dropped_total",
        "counter",
        "Events dropped because a background subscriber's queue was full.",
        ("subscriber", "event"),
    ),
    MetricSpec(
        "tasker_tasks",
        "gauge",
        "Tasks by status: pending, in_progress and error ones, per template (from the database).",
        (*_TASK, "status"),
        source="database",
    ),
    MetricSpec(
        "tasker_tasks_in_progress",
        "gauge",
        "Tasks currently being processed (in_progress in the database).",
        _TASK,
        source="database",
    ),
    MetricSpec(
        "tasker_steps",
        "gauge",
        "Steps of unfinished tasks by status (from the database).",
        ("status",),
        source="database",
    ),
    MetricSpec(
        "tasker_oldest_pending_task_age_seconds",
        "gauge",
        "Seconds the most overdue pending task has waited since it was due; 0 when none is (from the database).",
        (),
        source="database",
    ),
    MetricSpec(
        "tasker_workers_active",
        "gauge",
        "Worker processes with a heartbeat in the last 30 s, by kind: worker or celery (from the database).",
        ("kind",),
        source="database",
    ),
    MetricSpec(
        "tasker_database_up",
        "gauge",
        "1 when the database gauges could be read at the last scrape, else 0.",
        (),
        source="database",
    ),
)


def render_catalog_markdown() -> str:
    """The catalog as a Markdown table (the generated section of ``docs/metrics.md``)."""
    lines = [
        "| Metric | Type | Source | Labels | Description |",
        "| --- | --- | --- | --- | --- |",
    ]
    for spec in ENGINE_METRICS.values():
        kind = spec.kind if spec.multiprocess_mode is None else f"{spec.kind} ({spec.multiprocess_mode})"
        labels = ", ".join(f"`{label}`" for label in spec.labels)
        lines.append(f"| `{spec.name}` | {kind} | {spec.source} | {labels} | {spec.help} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_catalog_markdown(), end="")
