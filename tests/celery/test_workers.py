"""Real ``celery worker`` processes (prefork, 2 children each) running tasks on PostgreSQL through Redis or RabbitMQ."""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from tasker import Tasker, TaskRequest
from tasker.metrics.multiprocess import multiprocess_registry
from tasker.telemetry import TelemetrySubscriber
from tests.celery.conftest import (
    AMQP_URL,
    FILE_RECORD,
    CeleryHarness,
    free_port,
    merge_config,
    wait_for,
)
from tests.support.celery_app import read_spans, span_record
from tests.support.handlers import fan_out, read_log, template

pytestmark = [pytest.mark.celery, pytest.mark.postgres]

DIAMOND = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}


def recorded(
    name: str, steps: dict[str, list[str]], log: Path, sleep: float = 0.0, sleep_only: str = ""
) -> dict[str, Any]:
    """A template whose steps append start/end lines (with their pid) to ``log``.

    Steps sleep ``sleep`` seconds (only those whose name starts with ``sleep_only``, when given).
    """
    configs = {s: {"log": str(log), "sleep": sleep if s.startswith(sleep_only) else 0.0} for s in steps}
    return template(name, steps, configs, handler=FILE_RECORD)


def ends(log: Path) -> Counter[str]:
    """How many times each step's handler finished."""
    return Counter(step for event, _task, step, _attempt, _pid in read_log(str(log)) if event == "end")


def completes(app: Tasker, task_id: int, timeout: float = 20) -> None:
    wait_for(lambda: app.get_task(task_id).status in ("complete", "error"), timeout, f"task {task_id} finished")
    assert app.get_task(task_id).status == "complete"


@pytest.fixture
def producer_spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def assert_one_trace(spans: list[dict[str, Any]], caller: dict[str, Any], steps: set[str]) -> dict[str, dict[str, Any]]:
    """One trace: caller -> enqueue -> task -> one span per step, every parent present; returns spans by id."""
    by_id = {span["span_id"]: span for span in spans}
    assert len(by_id) == len(spans), "duplicate span ids"
    assert {span["trace_id"] for span in spans} == {caller["trace_id"]}
    (enqueue,) = [s for s in spans if s["name"] == "tasker.task.enqueue"]
    (task,) = [s for s in spans if s["name"] == "tasker.task.execution"]
    step_spans = [s for s in spans if s["name"] == "tasker.step.execution"]
    assert sorted(s["attributes"]["tasker.step.name"] for s in step_spans) == sorted(steps)
    assert enqueue["parent_id"] == caller["span_id"]
    assert task["parent_id"] == enqueue["span_id"] and task["status"] == "OK"
    assert all(s["parent_id"] == task["span_id"] and s["status"] == "OK" for s in step_spans)
    orphans = [s["name"] for s in spans if s["parent_id"] is not None and s["parent_id"] not in by_id]
    assert orphans == []
    return by_id


@pytest.mark.redis
def test_diamond_runs_on_a_worker_in_one_trace_even_when_children_are_recycled(
    celery_harness: CeleryHarness, tmp_path: Path, producer_spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    log, spans_file = tmp_path / "calls.log", tmp_path / "spans.jsonl"
    tmpl = recorded("diamond", DIAMOND, log)
    # Every pool process exits after one message: its spans survive only if worker_process_shutdown flushes them.
    celery_harness.start_worker(
        [tmpl], dispatch=True, env={"TASKER_TEST_SPANS_FILE": str(spans_file)}, args=("--max-tasks-per-child", "1")
    )
    provider, exporter = producer_spans
    app = celery_harness.producer([tmpl])
    app.subscribe(TelemetrySubscriber(provider))
    with provider.get_tracer("test").start_as_current_span("http.request"):
        task = app.create_task(TaskRequest(name="diamond", version="1.0.0", context={"order": 1}))
    completes(app, task.task_id)
    assert ends(log) == dict.fromkeys("abcd", 1)

    def worker_spans() -> list[dict[str, Any]]:
        return [s for s in read_spans(str(spans_file)) if s["name"].startswith("tasker.")]

    wait_for(lambda: len(worker_spans()) >= 5, 15, "worker spans exported")
    produced = [span_record(span) for span in exporter.get_finished_spans()]
    (caller,) = [s for s in produced if s["name"] == "http.request"]
    spans = produced + worker_spans()
    assert_one_trace(spans, caller, set("abcd"))
    worker_pids = {s["pid"] for s in worker_spans()}
    assert len(worker_pids) >= 2 and os.getpid() not in worker_pids  # made by several (recycled) pool processes


@pytest.mark.redis
def test_two_workers_share_a_fan_out_of_dispatched_steps(celery_harness: CeleryHarness, tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    fan = {"root": [], **{f"s{i:02}": ["root"] for i in range(40)}, "merge": [f"s{i:02}" for i in range(40)]}
    tmpl = recorded("fan", fan, log, sleep=0.2, sleep_only="s")
    workers = [celery_harness.start_worker([tmpl], dispatch=True) for _ in range(2)]
    app = celery_harness.producer([tmpl])
    task = app.create_task(TaskRequest(name="fan", version="1.0.0", context={"batch": 1}))
    completes(app, task.task_id, timeout=30)
    assert ends(log) == dict.fromkeys(fan, 1)
    fan_pids = [pid for event, _t, step, _a, pid in read_log(str(log)) if event == "end" and step.startswith("s")]
    per_worker = Counter(next(i for i, w in enumerate(workers) if w.owns(pid)) for pid in fan_pids)
    assert set(per_worker) == {0, 1}, per_worker  # both workers ran fan-out steps
    steps = [s for s in app.get_task(task.task_id).steps if s.name.startswith("s")]
    started = min(s.started_at for s in steps if s.started_at is not None)
    finished = max(s.processed_at for s in steps if s.processed_at is not None)
    wall = (finished - started).total_seconds()
    assert wall < 4.0, f"40 x 0.2 s steps took {wall:.2f}s of wall time (8 s serially)"


@pytest.mark.redis
def test_sigkill_of_a_worker_mid_step_loses_nothing(celery_harness: CeleryHarness, tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    tmpl = recorded("chain", {"a": [], "b": ["a"]}, log, sleep=1.0)
    config = merge_config({"execution": {"step_lease_seconds": 2.0}})
    workers = [celery_harness.start_worker([tmpl], config=config) for _ in range(2)]
    app = celery_harness.producer([tmpl], config=config)
    task = app.create_task(TaskRequest(name="chain", version="1.0.0", context={"x": 1}))
    wait_for(lambda: log.exists() and any(e[0] == "start" for e in read_log(str(log))), 20, "step a started")
    victim_pid = next(e[4] for e in read_log(str(log)) if e[0] == "start")
    (victim,) = [w for w in workers if w.owns(victim_pid)]
    (survivor,) = [w for w in workers if w is not victim]
    victim.kill_group()
    completes(app, task.task_id, timeout=20)
    events = read_log(str(log))
    assert ends(log) == {"a": 1, "b": 1}  # every step's handler completed exactly once
    assert all(survivor.owns(pid) for event, _t, _s, _a, pid in events if event == "end")
    assert [(e[2], e[3]) for e in events if e[0] == "start" and e[4] == victim_pid] == [("a", 1)]
    view = app.get_task(task.task_id)
    assert view.step("a").attempts == 2  # the killed attempt counts


@pytest.mark.redis
def test_metrics_of_prefork_children_add_up_in_one_scrape(celery_harness: CeleryHarness, tmp_path: Path) -> None:
    log, metrics_dir = tmp_path / "calls.log", tmp_path / "metrics"
    metrics_dir.mkdir()
    fan = fan_out(6)
    tmpl = recorded("fan", fan, log, sleep=0.3)
    worker = celery_harness.start_worker([tmpl], dispatch=True, env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)})
    app = celery_harness.producer([tmpl])
    task = app.create_task(TaskRequest(name="fan", version="1.0.0", context={"x": 1}))
    completes(app, task.task_id)
    step_pids = {pid for event, _t, _s, _a, pid in read_log(str(log)) if event == "end"}
    assert len(step_pids) == 2 and worker.pid not in step_pids  # both pool children ran steps

    registry = multiprocess_registry(str(metrics_dir))  # a fresh registry per scrape, as /metrics does
    families = {f.name: f for f in text_string_to_metric_families(generate_openmetrics(registry).decode())}

    def total(family: str, **labels: str) -> float:
        samples = families[family].samples
        return sum(s.value for s in samples if s.name.endswith("_total") and labels.items() <= s.labels.items())

    assert total("tasker_step_executions", status="complete", task="fan") == 8
    assert total("tasker_tasks_finished", status="complete", task="fan") == 1
    for pid in step_pids:
        assert (metrics_dir / f"counter_{pid}.db").exists()
    worker.wait_idle()
    worker.stop()  # each child's worker_process_shutdown forgets its live gauges; totals stay
    assert not list(metrics_dir.glob("gauge_live*.db"))
    families = {
        f.name: f
        for f in text_string_to_metric_families(generate_openmetrics(multiprocess_registry(str(metrics_dir))).decode())
    }
    assert total("tasker_step_executions", status="complete", task="fan") == 8


@pytest.mark.redis
def test_a_task_whose_message_died_with_the_broker_is_re_sent_by_the_sweep(
    celery_harness: CeleryHarness, tmp_path: Path
) -> None:
    import redis

    port = free_port()
    broker = f"redis://127.0.0.1:{port}/0"

    def start_redis() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=port, socket_connect_timeout=1)

        def up() -> bool:
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        wait_for(up, 10, "private redis-server up")
        client.close()
        return proc

    try:
        server = start_redis()
    except FileNotFoundError as exc:
        pytest.skip(f"redis-server is not installed: {exc}")
    try:
        log = tmp_path / "calls.log"
        tmpl = recorded("diamond", DIAMOND, log)
        app = celery_harness.producer([tmpl], broker_url=broker)
        task = app.create_task(TaskRequest(name="diamond", version="1.0.0", context={"x": 1}))
        client = redis.Redis(port=port)
        assert client.llen(celery_harness.queue) == 1  # the message is in the broker ...
        client.close()
        server.terminate()
        server.wait(timeout=10)
        server = start_redis()  # ... which restarts empty before any worker consumed it
        client = redis.Redis(port=port)
        assert client.llen(celery_harness.queue) == 0
        client.close()
        worker = celery_harness.start_worker([tmpl], broker_url=broker)
        completes(app, task.task_id)
        assert ends(log) == dict.fromkeys("abcd", 1)
        assert "sweep: re-sending 1 overdue task(s)" in worker.output()
    finally:
        for worker in celery_harness.workers:
            worker.stop()
        server.terminate()
        server.wait(timeout=10)
        celery_harness.brokers.discard(broker)


def test_rabbitmq_broker_runs_a_diamond(celery_harness: CeleryHarness, tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    tmpl = recorded("diamond", DIAMOND, log)
    celery_harness.start_worker([tmpl], broker_url=AMQP_URL, dispatch=True)
    app = celery_harness.producer([tmpl], broker_url=AMQP_URL)
    task = app.create_task(TaskRequest(name="diamond", version="1.0.0", context={"x": 1}))
    completes(app, task.task_id)
    assert ends(log) == dict.fromkeys("abcd", 1)


@pytest.mark.redis
def test_opentelemetry_celery_instrumentation_joins_the_same_trace(
    celery_harness: CeleryHarness, tmp_path: Path, producer_spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    from opentelemetry.instrumentation.celery import CeleryInstrumentor

    log, spans_file = tmp_path / "calls.log", tmp_path / "spans.jsonl"
    tmpl = recorded("diamond", DIAMOND, log)
    celery_harness.start_worker(
        [tmpl],
        dispatch=True,
        env={
            "TASKER_TEST_SPANS_FILE": str(spans_file),
            "TASKER_TEST_OTEL_CELERY": "1",
            "OTEL_BSP_SCHEDULE_DELAY": "100",  # export within 0.1 s (the default waits 5 s)
        },
    )
    provider, exporter = producer_spans
    instrumentor = CeleryInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        app = celery_harness.producer([tmpl])
        app.subscribe(TelemetrySubscriber(provider))
        with provider.get_tracer("test").start_as_current_span("http.request"):
            task = app.create_task(TaskRequest(name="diamond", version="1.0.0", context={"x": 1}))
        completes(app, task.task_id)
    finally:
        instrumentor.uninstrument()
    assert ends(log) == dict.fromkeys("abcd", 1)
    wait_for(
        lambda: any(s["name"] == "tasker.task.execution" for s in read_spans(str(spans_file))), 15, "task span exported"
    )
    celery_harness.workers[0].wait_idle()
    celery_harness.workers[0].stop()  # flush whatever the pool processes still buffer
    produced = [span_record(span) for span in exporter.get_finished_spans()]
    (caller,) = [s for s in produced if s["name"] == "http.request"]
    spans = produced + read_spans(str(spans_file))
    by_id = assert_one_trace(spans, caller, set("abcd"))
    task_span = next(s for s in spans if s["name"] == "tasker.task.execution")
    publishes = [s for s in spans if s["name"].startswith("apply_async/tasker.")]
    runs = [s for s in spans if s["name"].startswith("run/tasker.")]
    assert publishes and runs  # the instrumentation was active on both sides
    assert all(s["parent_id"] == task_span["span_id"] for s in publishes)  # sent under the task span
    assert all(by_id[s["parent_id"]]["name"].startswith("apply_async/") for s in runs)  # its own traceparent won
    assert any(s["pid"] == os.getpid() for s in publishes)  # the producer's create_task message


@pytest.mark.redis
def test_a_database_outage_fails_passes_cleanly_and_they_are_retried(
    celery_harness: CeleryHarness, tmp_path: Path
) -> None:
    from tests.celery.tcp_proxy import TcpProxy

    log = tmp_path / "calls.log"
    tmpl = recorded("diamond", DIAMOND, log)
    with TcpProxy("127.0.0.1", 5432) as proxy:
        worker = celery_harness.start_worker(
            [tmpl], env={"TASKER_TEST_DATABASE_URL": celery_harness.database_url.replace(":5432", f":{proxy.port}")}
        )
        proxy.down()
        app = celery_harness.producer([tmpl])  # the producer reaches PostgreSQL directly
        task = app.create_task(TaskRequest(name="diamond", version="1.0.0", context={"x": 1}))
        wait_for(lambda: worker.output().count("failed on the database") >= 2, 15, "passes failing on the database")
        assert app.get_task(task.task_id).status == "pending"
        proxy.up()
        completes(app, task.task_id)
    assert ends(log) == dict.fromkeys("abcd", 1)
    assert "retry 2 in" in worker.output()
