"""The metric catalog: contents, naming rules, and its Markdown rendering."""

from __future__ import annotations

import re
import subprocess
import sys

from tasker.metrics import ENGINE_METRICS, MetricSpec, render_catalog_markdown

TASK_LABELS = ("namespace", "task", "version")


def test_catalog_contents() -> None:
    assert {name: (spec.kind, spec.labels) for name, spec in ENGINE_METRICS.items()} == {
        "tasker_tasks_created_total": ("counter", TASK_LABELS),
        "tasker_tasks_finished_total": ("counter", (*TASK_LABELS, "status")),
        "tasker_task_duration_seconds": ("histogram", (*TASK_LABELS, "status")),
        "tasker_task_queue_wait_seconds": ("histogram", TASK_LABELS),
        "tasker_step_executions_total": ("counter", (*TASK_LABELS, "step", "status")),
        "tasker_step_duration_seconds": ("histogram", (*TASK_LABELS, "step", "status")),
        "tasker_step_retries_total": ("counter", (*TASK_LABELS, "step")),
        "tasker_step_retries_exhausted_total": ("counter", (*TASK_LABELS, "step")),
        "tasker_step_timeouts_total": ("counter", (*TASK_LABELS, "step")),
        "tasker_event_subscriber_errors_total": ("counter", ("subscriber", "event")),
        "tasker_event_subscriber_slow_total": ("counter", ("subscriber", "event")),
        "tasker_events_dropped_total": ("counter", ("subscriber", "event")),
        "tasker_tasks": ("gauge", (*TASK_LABELS, "status")),
        "tasker_tasks_in_progress": ("gauge", TASK_LABELS),
        "tasker_steps": ("gauge", ("status",)),
        "tasker_oldest_pending_task_age_seconds": ("gauge", ()),
        "tasker_workers_active": ("gauge", ("kind",)),
        "tasker_database_up": ("gauge", ()),
    }
    # Every gauge is read from the database at scrape time: none is kept by +1/-1 in a process.
    assert {name for name, spec in ENGINE_METRICS.items() if spec.source == "database"} == {
        name for name, spec in ENGINE_METRICS.items() if spec.kind == "gauge"
    }


def test_catalog_follows_prometheus_conventions() -> None:
    allowed_labels = {"namespace", "task", "version", "step", "status", "subscriber", "event", "kind"}
    for name, spec in ENGINE_METRICS.items():
        assert isinstance(spec, MetricSpec) and spec.name == name
        assert re.fullmatch(r"tasker_[a-z_]+", name)
        assert name.endswith("_total") == (spec.kind == "counter")
        if spec.kind == "histogram":
            assert name.endswith("_seconds")
        assert set(spec.labels) <= allowed_labels, "labels must stay bounded (never ids)"
        assert spec.help.endswith(".")
        assert spec.multiprocess_mode is None or spec.source == "process"


def test_markdown_has_one_row_per_metric() -> None:
    lines = render_catalog_markdown().splitlines()
    assert lines[0] == "| Metric | Type | Source | Labels | Description |"
    assert len(lines) == 2 + len(ENGINE_METRICS)
    assert (
        "| `tasker_tasks_in_progress` | gauge | database | `namespace`, `task`, `version` | "
        "Tasks currently being processed (in_progress in the database). |" in lines
    )


def test_module_prints_the_markdown_without_warnings(subprocess_env: dict[str, str]) -> None:
    completed = subprocess.run(
        [sys.executable, "-W", "error", "-m", "tasker.metrics.catalog"],
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    assert completed.stdout == render_catalog_markdown()
