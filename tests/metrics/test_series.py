"""Compact series: the engine metrics expose exactly what prometheus_client's own classes expose for them."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable

import prometheus_client
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from tasker.metrics import MetricsBackend, multiprocess

TASK = ("shop", "order", "1.0.0")
LABELS = dict(zip(("namespace", "task", "version"), TASK, strict=True))
_CREATED_VALUE = re.compile(r"^(\w+_created\{[^}]*\}) \S+$", re.MULTILINE)


def record(backend: MetricsBackend) -> None:
    """Every recording method, the generic API on engine metrics, and edge values (bounds, clamps, +Inf, NaN)."""
    backend.task_created(*TASK)
    backend.task_started(*TASK, queue_wait=0.3)
    backend.task_started("shop", "elsewhere", "1.0.0", queue_wait=None)
    backend.step_executed(*TASK, "pay", "error", 0.04)
    backend.step_retried(*TASK, "pay")
    backend.step_executed(*TASK, "pay", "complete", 0.005)  # exactly on a bucket bound
    backend.step_executed(*TASK, "ship", "complete", 700.0)  # past the last bound: +Inf only
    backend.step_executed(*TASK, "ship", "complete", -1.0)  # clamped to 0
    backend.step_executed(*TASK, "ship", "error", 1.0)
    backend.step_timed_out(*TASK, "ship")
    backend.step_retries_exhausted(*TASK, "ship")
    backend.task_finished(*TASK, "error", 1.5)
    backend.task_finished(*TASK, "complete", 30.0)
    backend.subscriber_error("Notify", "task.completed")
    backend.subscriber_slow("Notify", "task.completed")
    backend.event_dropped("Audit", "step.failed")
    backend.counter("tasker_step_retries_total", **LABELS, step="pack").inc(2.5)
    backend.histogram("tasker_step_duration_seconds", **LABELS, step="pack", status="complete").observe(math.nan)
    backend.histogram("tasker_task_queue_wait_seconds", **LABELS).observe(math.inf)
    backend.counter("tasker_tasks_finished_total", **LABELS, status="cancelled")  # exists at 0


@pytest.fixture
def client_backend(monkeypatch: pytest.MonkeyPatch) -> MetricsBackend:
    """A backend laid out as in multiprocess mode: every engine metric a prometheus_client metric."""
    monkeypatch.delenv(multiprocess.ENV_VAR, raising=False)
    monkeypatch.setattr(multiprocess, "values_are_multiprocess", lambda: True)
    return MetricsBackend()


def without_created_values(text: str) -> str:
    return _CREATED_VALUE.sub(r"\1 T", text)


def test_engine_metrics_are_compact_outside_multiprocess_mode(
    backend: MetricsBackend, client_backend: MetricsBackend
) -> None:
    assert not isinstance(backend.counter("tasker_tasks_created_total", **LABELS), prometheus_client.Counter)
    assert isinstance(client_backend.counter("tasker_tasks_created_total", **LABELS), prometheus_client.Counter)


@pytest.mark.parametrize("generate", [generate_latest, generate_openmetrics], ids=["prometheus", "openmetrics"])
def test_exposition_is_prometheus_clients_own(
    backend: MetricsBackend, client_backend: MetricsBackend, generate: Callable[[CollectorRegistry], bytes]
) -> None:
    record(backend)
    record(client_backend)
    ours = generate(backend.registry).decode()
    theirs = generate(client_backend.registry).decode()
    assert "tasker_step_duration_seconds_bucket" in ours
    assert without_created_values(ours) == without_created_values(theirs)
    assert ours != without_created_values(ours)  # _created series are there, with their own times


def test_created_times_are_series_creation_times(backend: MetricsBackend) -> None:
    started = time.time()
    record(backend)
    finished = time.time()
    created = [
        sample.value
        for family in backend.registry.collect()
        for sample in family.samples
        if sample.name.endswith("_created")
    ]
    assert created
    assert all(started <= value <= finished for value in created)


def test_created_series_follow_prometheus_client_switch(
    backend: MetricsBackend, client_backend: MetricsBackend
) -> None:
    record(backend)
    record(client_backend)
    was_enabled = prometheus_client.metrics._use_created
    prometheus_client.disable_created_metrics()
    try:
        ours, theirs = backend.render(), client_backend.render()
    finally:
        if was_enabled:
            prometheus_client.enable_created_metrics()
    assert "_created{" not in ours
    assert ours == theirs


def test_json_and_csv_match(backend: MetricsBackend, client_backend: MetricsBackend) -> None:
    record(backend)
    record(client_backend)
    for fmt in ("json", "csv"):
        ours = re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+\+00:00", "T", backend.render(fmt))
        theirs = re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+\+00:00", "T", client_backend.render(fmt))
        assert ours == theirs


@pytest.mark.parametrize("layout", ["compact", "client"])
def test_engine_counters_refuse_negative_increments(
    backend: MetricsBackend, client_backend: MetricsBackend, layout: str
) -> None:
    chosen = backend if layout == "compact" else client_backend
    counter = chosen.counter("tasker_step_retries_total", **LABELS, step="pay")
    with pytest.raises(ValueError, match="non-negative"):
        counter.inc(-1)
    assert chosen.registry.get_sample_value("tasker_step_retries_total", {**LABELS, "step": "pay"}) == 0


def test_a_new_step_name_adds_its_series_at_zero(backend: MetricsBackend) -> None:
    backend.step_executed(*TASK, "pay", "complete", 0.1)
    step = {**LABELS, "step": "pay"}
    for name in ("tasker_step_retries_total", "tasker_step_retries_exhausted_total", "tasker_step_timeouts_total"):
        assert backend.registry.get_sample_value(name, step) == 0
    assert backend.registry.get_sample_value("tasker_tasks_created_total", LABELS) == 0
    assert backend.registry.get_sample_value("tasker_step_executions_total", {**step, "status": "complete"}) == 1


def test_negative_bucket_bounds_leave_out_the_sum(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(multiprocess.ENV_VAR, raising=False)
    backend = MetricsBackend(buckets=[-1.0, 1.0])
    monkeypatch.setattr(multiprocess, "values_are_multiprocess", lambda: True)
    reference = MetricsBackend(buckets=[-1.0, 1.0])
    for each in (backend, reference):
        each.step_executed(*TASK, "pay", "complete", 0.5)
    assert "tasker_step_duration_seconds_sum" not in backend.render()
    assert without_created_values(backend.render()) == without_created_values(reference.render())
