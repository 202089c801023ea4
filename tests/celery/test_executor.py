"""CeleryExecutor and create_celery_app without worker processes: messages, headers, the sweep, retries."""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import event, update

from tasker import Tasker, TaskRequest
from tasker.errors import ConfigurationError, StoreError
from tasker.executors.celery import (
    RUN_STEP,
    RUN_TASK,
    SWEEP_CLAIM,
    CeleryExecutor,
    create_celery_app,
    get_tasker,
    sweep_lost_tasks,
)
from tasker.models import Task
from tasker.models.base import utcnow
from tasker.telemetry.propagation import traceparent
from tests.celery.conftest import REDIS_URL, free_port, purge_queue, require_redis
from tests.support.handlers import template

FAN = {"root": [], "x": ["root"], "y": ["root"], "z": ["x", "y"]}


class RecordingResender:
    """Collects what the sweep re-sends."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, float, dict[str, str] | None]] = []

    def enqueue(self, task_id: int, delay: float = 0.0, *, carrier: Any = None) -> None:
        self.sent.append((task_id, delay, dict(carrier) if carrier is not None else None))


@pytest.fixture
def queue() -> Iterator[str]:
    """A fresh Redis queue, deleted afterwards."""
    require_redis()
    name = f"tasker-unit-{uuid.uuid4().hex[:10]}"
    yield name
    purge_queue(REDIS_URL, name)


def messages(queue: str) -> list[dict[str, Any]]:
    """Messages waiting in a Redis queue, oldest first."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        return [json.loads(raw) for raw in reversed(client.lrange(queue, 0, -1))]
    finally:
        client.close()


def celery_producer(make_app: Callable[..., Tasker], queue: str, **config: Any) -> tuple[Tasker, CeleryExecutor]:
    celery_app = create_celery_app(lambda: app, broker_url=REDIS_URL, queue=queue)
    executor = CeleryExecutor(celery_app, queue=queue, **config)
    app = make_app(executor=executor)
    executor.bind(app)
    return app, executor


@pytest.mark.redis
def test_enqueue_sends_run_task_with_the_task_spans_traceparent(make_app: Callable[..., Tasker], queue: str) -> None:
    app, executor = celery_producer(make_app, queue)
    app.register_task_template(template("diamond"))
    task = app.create_task(TaskRequest(name="diamond", version="1.0.0", context={"x": 1}))
    executor.enqueue(task.task_id, 30)
    first, delayed = messages(queue)
    with app.db.read() as session:
        stored = session.get(Task, task.task_id)
        assert stored is not None and stored.trace_context is not None
        expected = traceparent(stored.trace_context)["traceparent"]
    for message in (first, delayed):
        headers = message["headers"]
        assert headers["task"] == RUN_TASK and headers["argsrepr"] == f"({task.task_id},)"
        assert headers["traceparent"] == expected  # the task span: trace id and task span id stored at creation
        assert message["properties"]["delivery_info"]["routing_key"] == queue
    assert first["headers"]["eta"] is None and delayed["headers"]["eta"] is not None
    assert not hasattr(executor, "dispatch_step")  # the engine dispatches steps only when asked to


@pytest.mark.redis
def test_dispatch_steps_sends_one_run_step_per_ready_step(make_app: Callable[..., Tasker], queue: str) -> None:
    app, _executor = celery_producer(make_app, queue, dispatch_steps=True)
    app.register_task_template(template("fan", FAN))
    task = app.create_task(TaskRequest(name="fan", version="1.0.0", context={"x": 1}))
    assert app.run_task(task.task_id) == "pending"  # root ran here; x and y were reserved and sent
    sent = [(m["headers"]["task"], m["headers"]["argsrepr"]) for m in messages(queue)]
    steps = {s.name: s.step_id for s in app.get_task(task.task_id).steps}
    run_steps = [args for name, args in sent if name == RUN_STEP]
    assert sorted(args.split(",")[1].strip() for args in run_steps) == sorted(str(steps[n]) for n in "xy")
    assert all("'dispatch/" in args for args in run_steps)  # the claim token travels with the step


def test_a_broker_that_is_down_does_not_fail_the_engine(
    make_app: Callable[..., Tasker], caplog: pytest.LogCaptureFixture
) -> None:
    celery_app = create_celery_app(lambda: app, broker_url=f"redis://127.0.0.1:{free_port()}/0", queue="nowhere")
    executor = CeleryExecutor(celery_app, queue="nowhere")
    app = make_app(executor=executor)
    app.register_task_template(template("diamond"))
    with caplog.at_level(logging.WARNING, logger="tasker.executors.celery"):
        task = app.create_task(TaskRequest(name="diamond", version="1.0.0", context={"x": 1}))
    assert app.get_task(task.task_id).status == "pending"  # persisted: the sweep sends it once the broker is back
    assert "the sweep re-sends it" in caplog.text
    celery_app.close()


def test_the_sweep_re_sends_overdue_and_orphaned_tasks_once(make_app: Callable[..., Tasker]) -> None:
    app = make_app()
    app.register_task_template(template("diamond"))
    ids = [app.create_task(TaskRequest(name="diamond", version="1.0.0", context={"i": i})).task_id for i in range(6)]
    now = utcnow()
    state: dict[int, dict[str, Any]] = {
        ids[0]: {"status": "pending", "run_at": now - timedelta(seconds=30)},  # overdue: its message was lost
        ids[1]: {"status": "pending", "run_at": now},  # just due: its message is on the way
        ids[2]: {"status": "in_progress", "run_at": None, "claim_expires_at": now - timedelta(seconds=1)},  # died
        ids[3]: {"status": "in_progress", "run_at": None, "claim_expires_at": now + timedelta(seconds=60)},  # running
        ids[4]: {"status": "complete", "run_at": None},
        ids[5]: {
            "status": "pending",
            "run_at": now - timedelta(seconds=30),
            "claimed_by": "w1",
            "claim_expires_at": now + timedelta(seconds=60),
        },
    }
    with app.db.transaction() as session:
        for task_id, values in state.items():
            session.execute(update(Task).where(Task.task_id == task_id).values(**values))
    resender = RecordingResender()
    assert sweep_lost_tasks(app, resender, grace_seconds=10) == [ids[0], ids[2]]
    carriers = {task_id: carrier for task_id, _delay, carrier in resender.sent}
    assert set(carriers) == {ids[0], ids[2]} and all(d == 0.0 for _t, d, _c in resender.sent)
    assert all(c and c["traceparent"].startswith("00-") for c in carriers.values())
    assert {app.get_task(i).status for i in (ids[0], ids[2])} == {"pending", "in_progress"}  # state untouched
    with app.db.read() as session:
        assert session.get(Task, ids[0]).claimed_by == SWEEP_CLAIM  # type: ignore[union-attr]
    assert sweep_lost_tasks(app, resender, grace_seconds=10) == []  # another sweeper does not send them again
    with app.db.transaction() as session:  # ... until the re-sent message is overdue too
        session.execute(update(Task).where(Task.task_id == ids[0]).values(claim_expires_at=utcnow()))
    assert sweep_lost_tasks(app, resender, grace_seconds=10) == [ids[0]]


def test_the_trace_context_is_read_once_per_task(make_app: Callable[..., Tasker]) -> None:
    celery_app = create_celery_app(lambda: app, broker_url=REDIS_URL, queue="unused")
    executor = CeleryExecutor(celery_app, queue="unused")
    app = make_app()
    executor.bind(app)
    app.register_task_template(template("diamond"))
    task = app.create_task(TaskRequest(name="diamond", version="1.0.0", context={"x": 1}))
    statements: list[str] = []
    event.listen(app.db.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    first = executor.carrier(task.task_id)
    assert executor.carrier(task.task_id) == first and first["traceparent"].startswith("00-")
    assert len([s for s in statements if "trace_context" in s]) == 1
    assert executor.carrier(10_000) == {}  # an unknown task: no headers, no error
    celery_app.close()


def factory_for_tests() -> Tasker:
    """An app factory named by a string (see the next test)."""
    app = Tasker(os.environ["TASKER_UNIT_DB"], config={"celery": {"dispatch_steps": True}})
    app.migrate()
    return app


def test_create_celery_app_builds_each_process_app_from_a_factory_string(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TASKER_UNIT_DB", f"sqlite:///{tmp_path}/unit.db")
    celery_app = create_celery_app("tests.celery.test_executor:factory_for_tests", queue="orders")
    assert {RUN_TASK, RUN_STEP, "tasker.sweep"} <= set(celery_app.tasks.keys())
    assert celery_app.conf.task_default_queue == "orders"
    for name in (RUN_TASK, RUN_STEP):
        task = celery_app.tasks[name]
        assert task.acks_late and task.reject_on_worker_lost
    app = get_tasker(celery_app)
    assert get_tasker(celery_app) is app  # one per process
    assert isinstance(app.executor, CeleryExecutor) and app.executor.queue == "orders"
    assert app.executor.dispatch_steps and getattr(app.executor, "dispatch_step", None) is not None  # from config
    app.shutdown()
    celery_app.close()
    with pytest.raises(ConfigurationError, match=r"package\.module:factory"):
        get_tasker(create_celery_app("no_colon_here"))
    with pytest.raises(ConfigurationError, match="not a Tasker"):
        get_tasker(create_celery_app(lambda: "nope"))  # type: ignore[arg-type,return-value]


def test_a_pass_failing_on_the_database_is_retried_then_given_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = {"celery": {"store_retry_limit": 2, "store_retry_backoff_max_seconds": 0.01}}
    celery_app = create_celery_app(
        lambda: Tasker(f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere", config=config), queue="unused"
    )
    with caplog.at_level(logging.WARNING, logger="tasker.executors.celery"):
        result = celery_app.tasks[RUN_TASK].apply(args=(1,))  # eager: retries run at once, in this process
    assert result.failed() and isinstance(result.result, StoreError)
    ours = [r for r in caplog.records if r.name == "tasker.executors.celery"]
    assert [r.getMessage().split("; ")[-1].split(" in ")[0] for r in ours] == [
        "retry 1",
        "retry 2",
        "giving up after 2 retries",
    ]
    get_tasker(celery_app).shutdown()
    celery_app.close()


@pytest.mark.redis
def test_opentelemetry_instrumentation_publishes_under_the_task_span(
    make_app: Callable[..., Tasker], queue: str
) -> None:
    from opentelemetry.instrumentation.celery import CeleryInstrumentor

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app, _executor = celery_producer(make_app, queue)
    app.register_task_template(template("diamond"))
    instrumentor = CeleryInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        with provider.get_tracer("test").start_as_current_span("caller") as caller:
            task = app.create_task(TaskRequest(name="diamond", version="1.0.0", context={"x": 1}))
            assert trace.get_current_span() is caller  # publishing left no context attached
    finally:
        instrumentor.uninstrument()
    (publish,) = [s for s in exporter.get_finished_spans() if s.name == f"apply_async/{RUN_TASK}"]
    with app.db.read() as session:
        stored = session.get(Task, task.task_id)
        assert stored is not None and stored.trace_context is not None
    assert publish.context is not None and publish.parent is not None
    assert f"{publish.context.trace_id:032x}" == stored.trace_context["trace_id"]  # the task's trace
    assert f"{publish.parent.span_id:016x}" == stored.trace_context["task_span_id"]  # under the task span
    (message,) = messages(queue)
    # The instrumentation's traceparent (its publish span) replaced ours: same trace, one header, no conflict.
    assert message["headers"]["traceparent"] == f"00-{publish.context.trace_id:032x}-{publish.context.span_id:016x}-01"
