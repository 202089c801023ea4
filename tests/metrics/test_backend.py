"""MetricsBackend: get-or-create instruments, validation, isolation and the engine recording methods."""

from __future__ import annotations

import threading

import prometheus_client
import pytest
from prometheus_client import CollectorRegistry

from tasker.config import JOB_BUCKETS, MetricsConfig
from tasker.errors import MetricsError
from tasker.metrics import ENGINE_METRICS, MetricsBackend

TASK = {"namespace": "shop", "task": "order", "version": "1.0.0"}


def value(backend: MetricsBackend, name: str, **labels: str) -> float | None:
    return backend.registry.get_sample_value(name, labels)


# -- generic API ---------------------------------------------------------------------------------------


def test_same_instrument_for_same_name_and_labels(backend: MetricsBackend) -> None:
    first = backend.counter("jobs_total", queue="a")
    assert backend.counter("jobs_total", queue="a") is first
    assert backend.counter("jobs_total", queue="b") is not first
    assert backend.gauge("depth", queue="a") is backend.gauge("depth", queue="a")
    assert backend.histogram("wait_seconds", queue="a") is backend.histogram("wait_seconds", queue="a")


def test_instruments_are_prometheus_children(backend: MetricsBackend) -> None:
    assert isinstance(backend.counter("jobs_total", queue="a"), prometheus_client.Counter)
    assert isinstance(backend.gauge("depth"), prometheus_client.Gauge)
    assert isinstance(backend.histogram("wait_seconds"), prometheus_client.Histogram)


def test_generic_instruments_record(backend: MetricsBackend) -> None:
    backend.counter("jobs_total", queue="a").inc()
    backend.counter("jobs_total", queue="a").inc(2)
    backend.gauge("depth").set(7)
    backend.gauge("depth").dec(2)
    backend.histogram("wait_seconds", buckets=[1, 2]).observe(1.5)
    assert value(backend, "jobs_total", queue="a") == 3
    assert value(backend, "depth") == 5
    assert value(backend, "wait_seconds_bucket", le="1.0") == 0
    assert value(backend, "wait_seconds_bucket", le="2.0") == 1
    assert value(backend, "wait_seconds_count") == 1


def test_label_names_are_fixed_at_first_use(backend: MetricsBackend) -> None:
    backend.counter("jobs_total", queue="a", kind="x")
    backend.counter("jobs_total", kind="y", queue="b")  # order does not matter
    with pytest.raises(MetricsError) as excinfo:
        backend.counter("jobs_total", queue="a")
    message = str(excinfo.value)
    assert "'jobs_total'" in message
    assert "['kind', 'queue']" in message
    assert "['queue']" in message


def test_engine_metric_label_names_come_from_the_catalog(backend: MetricsBackend) -> None:
    assert backend.counter("tasker_tasks_created_total", **TASK) is backend.counter(
        "tasker_tasks_created_total", **TASK
    )
    with pytest.raises(MetricsError, match="tasker_tasks_created_total"):
        backend.counter("tasker_tasks_created_total", namespace="shop")


def test_engine_metrics_have_catalog_help(backend: MetricsBackend) -> None:
    text = backend.render("prometheus")
    for spec in ENGINE_METRICS.values():
        if spec.source == "database":
            continue  # yielded by the app's DatabaseCollector at scrape time
        assert f"# HELP {spec.name} {spec.help}\n" in text
        assert f"# TYPE {spec.name} {spec.kind}\n" in text
    backend.counter("custom_total").inc()
    assert "# HELP custom_total Tasker counter metric: custom_total\n" in backend.render("prometheus")


@pytest.mark.parametrize("name", ["", "1jobs_total", "jobs-total", "jobs total", "jöbs_total"])
def test_invalid_metric_names(backend: MetricsBackend, name: str) -> None:
    with pytest.raises(MetricsError, match="invalid metric name"):
        backend.counter(name)


def test_counter_names_must_end_with_total(backend: MetricsBackend) -> None:
    with pytest.raises(MetricsError, match="must end with '_total'"):
        backend.counter("jobs")
    with pytest.raises(MetricsError, match="must end with '_total'"):
        backend.counter("_total")


def test_only_counters_end_with_total(backend: MetricsBackend) -> None:
    with pytest.raises(MetricsError, match="only counter names"):
        backend.gauge("depth_total")
    with pytest.raises(MetricsError, match="only counter names"):
        backend.histogram("wait_total")


@pytest.mark.parametrize("label", ["__reserved", "bad-label", "1x"])
def test_invalid_label_names(backend: MetricsBackend, label: str) -> None:
    with pytest.raises(MetricsError, match="invalid label name"):
        backend.counter("jobs_total", **{label: "v"})


def test_histogram_le_label_is_refused(backend: MetricsBackend) -> None:
    with pytest.raises(MetricsError, match="cannot create histogram 'wait_seconds'"):
        backend.histogram("wait_seconds", le="1")


def test_a_name_keeps_its_kind(backend: MetricsBackend) -> None:
    backend.gauge("depth")
    with pytest.raises(MetricsError, match="'depth' is a gauge, not a histogram"):
        backend.histogram("depth")
    with pytest.raises(MetricsError, match="'tasker_tasks_created_total' is a counter, not a gauge"):
        backend.gauge("tasker_tasks_created_total", **TASK)
    backend.gauge("myapp_depth_now")
    with pytest.raises(MetricsError, match="is a gauge, not a counter"):
        backend.counter("myapp_depth_now")


def test_clashing_prometheus_names_are_metrics_errors(backend: MetricsBackend) -> None:
    backend.counter("jobs_total")
    with pytest.raises(MetricsError, match="cannot create gauge 'jobs'"):
        backend.gauge("jobs")


def test_histogram_buckets(backend: MetricsBackend) -> None:
    backend.histogram("wait_seconds", buckets=[0.5, 1, float("inf")], queue="a").observe(0.7)
    assert value(backend, "wait_seconds_bucket", queue="a", le="1.0") == 1
    backend.histogram("wait_seconds", buckets=[0.5, 1], queue="b")  # same buckets: fine
    with pytest.raises(MetricsError, match=r"'wait_seconds' has buckets \[0.5, 1.0\]"):
        backend.histogram("wait_seconds", buckets=[2, 3], queue="a")
    with pytest.raises(MetricsError, match="strictly increasing"):
        backend.histogram("other_seconds", buckets=[2, 1])
    with pytest.raises(MetricsError, match="must not be empty"):
        backend.histogram("other_seconds", buckets=[])


def test_default_buckets_are_the_job_buckets(backend: MetricsBackend) -> None:
    backend.histogram("wait_seconds").observe(450)
    assert value(backend, "wait_seconds_bucket", le="300.0") == 0
    assert value(backend, "wait_seconds_bucket", le="600.0") == 1
    bounds = [float(b) for b in JOB_BUCKETS]
    assert bounds[0] == 0.005 and bounds[-1] == 600.0


def test_custom_backend_buckets_apply_to_engine_histograms() -> None:
    backend = MetricsBackend(buckets=[1, 10])
    backend.step_executed("shop", "order", "1.0.0", "pay", "complete", 5)
    labels = {**TASK, "step": "pay", "status": "complete"}
    assert value(backend, "tasker_step_duration_seconds_bucket", **labels, le="10.0") == 1
    assert value(backend, "tasker_step_duration_seconds_bucket", **labels, le="0.005") is None
    with pytest.raises(MetricsError, match="strictly increasing"):
        MetricsBackend(buckets=[10, 1])


def test_from_config() -> None:
    backend = MetricsBackend.from_config(MetricsConfig(enabled=False, buckets=[1.0, 2.0]))
    assert backend.enabled is False
    assert MetricsBackend.from_config(MetricsConfig()).enabled is True


# -- disabled ------------------------------------------------------------------------------------------


def test_disabled_backend_is_a_no_op() -> None:
    backend = MetricsBackend(enabled=False)
    assert backend.enabled is False
    counter = backend.counter("jobs_total", queue="a")
    counter.inc()
    backend.gauge("depth").set(3)
    backend.gauge("depth", other="label").dec()  # label sets are not tracked when disabled
    backend.histogram("wait_seconds").observe(1)
    assert not isinstance(counter, prometheus_client.Counter)
    backend.task_created("shop", "order", "1.0.0")
    backend.task_started("shop", "order", "1.0.0", queue_wait=1.0)
    backend.task_finished("shop", "order", "1.0.0", "complete", 1.0)
    backend.step_executed("shop", "order", "1.0.0", "pay", "complete", 1.0)
    backend.step_retried("shop", "order", "1.0.0", "pay")
    backend.step_retries_exhausted("shop", "order", "1.0.0", "pay")
    backend.subscriber_error("Notify", "task.completed")
    assert list(backend.registry.collect()) == []
    for fmt in ("prometheus", "openmetrics", "json", "csv"):
        with pytest.raises(MetricsError, match=r"^metrics are disabled$"):
            backend.render(fmt)


def test_disabled_backend_still_validates_names() -> None:
    backend = MetricsBackend(enabled=False)
    with pytest.raises(MetricsError, match="must end with '_total'"):
        backend.counter("jobs")


# -- isolation -----------------------------------------------------------------------------------------


def test_backends_are_isolated_and_leave_the_global_registry_alone() -> None:
    before = {metric.name for metric in prometheus_client.REGISTRY.collect()}
    first, second = MetricsBackend(), MetricsBackend()
    assert first.registry is not second.registry
    assert first.registry is not prometheus_client.REGISTRY
    first.task_created("shop", "order", "1.0.0")
    first.counter("jobs_total").inc()
    assert value(first, "tasker_tasks_created_total", **TASK) == 1
    assert value(second, "tasker_tasks_created_total", **TASK) is None
    assert value(second, "jobs_total") is None
    after = {metric.name for metric in prometheus_client.REGISTRY.collect()}
    assert after == before
    assert not any(name.startswith("tasker_") for name in after)


def test_a_given_registry_is_used() -> None:
    registry = CollectorRegistry()
    backend = MetricsBackend(registry=registry)
    assert backend.registry is registry
    backend.task_created("shop", "order", "1.0.0")
    assert registry.get_sample_value("tasker_tasks_created_total", TASK) == 1
    with pytest.raises(MetricsError, match="cannot create counter 'tasker_tasks_created_total'"):
        MetricsBackend(registry=registry)  # one backend per registry


# -- engine recording methods --------------------------------------------------------------------------


def test_task_lifecycle_metrics(backend: MetricsBackend) -> None:
    backend.task_created("shop", "order", "1.0.0")
    backend.task_created("shop", "order", "1.0.0")
    backend.task_created("shop", "refund", "1.0.0")
    backend.task_started("shop", "order", "1.0.0", queue_wait=0.2)
    backend.task_started("shop", "order", "1.0.0", queue_wait=None)
    backend.task_started("shop", "elsewhere", "1.0.0", queue_wait=None)  # created in another process
    backend.task_finished("shop", "order", "1.0.0", "complete", 3.0)
    backend.task_finished("shop", "order", "1.0.0", "cancelled", 0.5)

    assert value(backend, "tasker_tasks_created_total", **TASK) == 2
    assert value(backend, "tasker_tasks_created_total", namespace="shop", task="refund", version="1.0.0") == 1
    # a process that runs tasks lists their templates, even when they were created elsewhere
    assert value(backend, "tasker_tasks_created_total", namespace="shop", task="elsewhere", version="1.0.0") == 0
    assert value(backend, "tasker_task_queue_wait_seconds_count", **TASK) == 1
    assert value(backend, "tasker_task_queue_wait_seconds_sum", **TASK) == pytest.approx(0.2)
    assert value(backend, "tasker_tasks_finished_total", **TASK, status="complete") == 1
    assert value(backend, "tasker_tasks_finished_total", **TASK, status="cancelled") == 1
    assert value(backend, "tasker_tasks_finished_total", **TASK, status="error") is None
    assert value(backend, "tasker_task_duration_seconds_count", **TASK, status="complete") == 1
    assert value(backend, "tasker_task_duration_seconds_sum", **TASK, status="complete") == 3.0
    assert value(backend, "tasker_task_duration_seconds_bucket", **TASK, status="complete", le="2.5") == 0
    assert value(backend, "tasker_task_duration_seconds_bucket", **TASK, status="complete", le="5.0") == 1


def test_negative_waits_and_durations_are_clamped(backend: MetricsBackend) -> None:
    backend.task_started("shop", "order", "1.0.0", queue_wait=-3.0)  # clock skew
    backend.task_finished("shop", "order", "1.0.0", "error", -1.0)
    assert value(backend, "tasker_task_queue_wait_seconds_sum", **TASK) == 0
    assert value(backend, "tasker_task_queue_wait_seconds_bucket", **TASK, le="0.005") == 1
    assert value(backend, "tasker_task_duration_seconds_sum", **TASK, status="error") == 0


def test_step_metrics(backend: MetricsBackend) -> None:
    backend.step_executed("shop", "order", "1.0.0", "pay", "error", 0.03)
    backend.step_retried("shop", "order", "1.0.0", "pay")
    backend.step_executed("shop", "order", "1.0.0", "pay", "error", 0.04)
    backend.step_retried("shop", "order", "1.0.0", "pay")
    backend.step_executed("shop", "order", "1.0.0", "pay", "complete", 0.2)
    backend.step_executed("shop", "order", "1.0.0", "ship", "error", 1.0)
    backend.step_retries_exhausted("shop", "order", "1.0.0", "ship")

    pay = {**TASK, "step": "pay"}
    assert value(backend, "tasker_step_executions_total", **pay, status="error") == 2
    assert value(backend, "tasker_step_executions_total", **pay, status="complete") == 1
    assert value(backend, "tasker_step_duration_seconds_count", **pay, status="error") == 2
    assert value(backend, "tasker_step_duration_seconds_sum", **pay, status="error") == pytest.approx(0.07)
    assert value(backend, "tasker_step_duration_seconds_bucket", **pay, status="error", le="0.025") == 0
    assert value(backend, "tasker_step_duration_seconds_bucket", **pay, status="error", le="0.05") == 2
    assert value(backend, "tasker_step_retries_total", **pay) == 2
    assert value(backend, "tasker_step_retries_exhausted_total", **pay) == 0  # the series exists, never incremented
    assert value(backend, "tasker_step_retries_exhausted_total", **TASK, step="ship") == 1


def test_subscriber_errors(backend: MetricsBackend) -> None:
    backend.subscriber_error("Notify", "task.completed")
    backend.subscriber_error("Notify", "task.completed")
    backend.subscriber_error("Audit", "step.failed")
    name = "tasker_event_subscriber_errors_total"
    assert value(backend, name, subscriber="Notify", event="task.completed") == 2
    assert value(backend, name, subscriber="Audit", event="step.failed") == 1


def test_statuses_are_checked(backend: MetricsBackend) -> None:
    with pytest.raises(MetricsError, match="task_finished: status 'success'"):
        backend.task_finished("shop", "order", "1.0.0", "success", 1.0)
    with pytest.raises(MetricsError, match="step_executed: status 'pending'"):
        backend.step_executed("shop", "order", "1.0.0", "pay", "pending", 1.0)
    for status in ("complete", "error", "cancelled", "resolved_manually"):
        backend.task_finished("shop", "order", "1.0.0", status, 1.0)
    assert value(backend, "tasker_tasks_finished_total", **TASK, status="resolved_manually") == 1


def test_recording_methods_use_the_generic_instruments(backend: MetricsBackend) -> None:
    backend.task_created("shop", "order", "1.0.0")
    backend.counter("tasker_tasks_created_total", **TASK).inc()
    assert value(backend, "tasker_tasks_created_total", **TASK) == 2


# -- threads -------------------------------------------------------------------------------------------


def test_concurrent_get_or_create_gives_one_child_and_an_exact_total(backend: MetricsBackend) -> None:
    threads, per_thread = 16, 500
    barrier = threading.Barrier(threads)
    seen: list[object] = []
    lock = threading.Lock()

    def work() -> None:
        barrier.wait()
        for _ in range(per_thread):
            counter = backend.counter("race_total", queue="q")
            counter.inc()
            with lock:
                seen.append(counter)
            backend.task_created("shop", "order", "1.0.0")

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len({id(counter) for counter in seen}) == 1
    assert value(backend, "race_total", queue="q") == threads * per_thread
    assert value(backend, "tasker_tasks_created_total", **TASK) == threads * per_thread
