"""The database gauges (DatabaseCollector) and the worker heartbeats behind tasker_workers_active."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import update

from tasker import Tasker, TaskRequest
from tasker.metrics.database import DatabaseCollector, Heartbeat
from tasker.models import Task, WorkerHeartbeat
from tasker.models.base import utcnow
from tests.celery.conftest import wait_for
from tests.support.handlers import template

TASK = {"namespace": "default", "task": "diamond", "version": "1.0.0"}


def gauges(app: Tasker) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in DatabaseCollector(app.db, cache_seconds=0).collect():
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def labels(**values: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(values.items()))


def test_gauges_count_what_the_database_holds(app: Tasker) -> None:
    app.register_task_template(template("diamond", configs={"a": {"fail_times": 9}}, retry_limit=1))
    done = app.create_task(TaskRequest(name="diamond", version="1.0.0", context={}))
    assert app.run_until_done(done.task_id) == "error"
    waiting = [app.create_task(TaskRequest(name="diamond", version="1.0.0", context={"n": n})) for n in range(3)]
    with app.db.transaction() as session:  # one of them is claimed by a worker; one is due since a minute
        session.execute(update(Task).where(Task.task_id == waiting[0].task_id).values(status="in_progress"))
        session.execute(
            update(Task).where(Task.task_id == waiting[1].task_id).values(run_at=utcnow() - timedelta(seconds=60))
        )
    got = gauges(app)
    assert got["tasker_tasks"] == {
        labels(**TASK, status="pending"): 2,
        labels(**TASK, status="in_progress"): 1,
        labels(**TASK, status="error"): 1,
    }
    assert got["tasker_tasks_in_progress"] == {labels(**TASK): 1}
    assert got["tasker_steps"][labels(status="pending")] == 12  # the steps of the three unfinished tasks
    assert 60 <= got["tasker_oldest_pending_task_age_seconds"][()] < 120
    assert got["tasker_database_up"][()] == 1
    assert all(value >= 0 for family in got.values() for value in family.values())


def test_heartbeats_make_workers_active_until_they_stop_or_go_stale(app: Tasker) -> None:
    first = Heartbeat(app.db, "host:1", "worker", interval=60).start()
    second = Heartbeat(app.db, "host:2", "celery", interval=60).start()
    assert gauges(app)["tasker_workers_active"] == {labels(kind="worker"): 1, labels(kind="celery"): 1}
    with app.db.transaction() as session:  # a SIGKILLed worker stops beating
        session.execute(
            update(WorkerHeartbeat)
            .where(WorkerHeartbeat.worker_id == "host:2")
            .values(last_seen_at=utcnow() - timedelta(seconds=31))
        )
    assert gauges(app)["tasker_workers_active"] == {labels(kind="worker"): 1, labels(kind="celery"): 0}
    first.stop()
    second.stop()
    assert gauges(app)["tasker_workers_active"] == {labels(kind="worker"): 0, labels(kind="celery"): 0}


def test_an_unreadable_database_says_so(tmp_path: Path) -> None:
    app = Tasker(f"sqlite:///{tmp_path}/never-migrated.db")
    try:
        families = list(DatabaseCollector(app.db).collect())
        assert [(f.name, f.samples[0].value) for f in families] == [("tasker_database_up", 0)]
    finally:
        app.shutdown()


def test_scrapes_within_the_cache_window_share_one_query(app: Tasker) -> None:
    collector = DatabaseCollector(app.db, cache_seconds=60)
    first = list(collector.collect())
    app.register_task_template(template("diamond"))
    app.create_task(TaskRequest(name="diamond", version="1.0.0", context={}))
    assert list(collector.collect()) == first  # cached
    assert list(DatabaseCollector(app.db, cache_seconds=0).collect()) != first


def test_the_worker_command_serves_metrics_and_heartbeats(
    make_app: Callable[..., Tasker], tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    app = make_app()
    if app.db.dialect != "postgresql":
        pytest.skip("one run is enough: PostgreSQL, as workers share it")
    (tmp_path / "diamond.yaml").write_text(yaml.safe_dump(template("diamond")))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tasker", "worker", "--templates", str(tmp_path), "--metrics-port", "0",
         "--auth-token", "s3cret", "--database-url", app.db.url, "--poll-interval", "0.05"],
        env=subprocess_env, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "serving metrics on http://127.0.0.1:" in line, line
        url = line.split()[-1]
        assert httpx.get(url, timeout=10).status_code == 401
        app.register_task_template(template("diamond"))
        task = app.create_task(TaskRequest(name="diamond", version="1.0.0", context={}))
        wait_for(lambda: app.get_task(task.task_id).status == "complete", timeout=30, what="task run by the worker")
        text = httpx.get(url, headers={"Authorization": "Bearer s3cret"}, timeout=10).text
        assert 'tasker_workers_active{kind="worker"} 1.0' in text
        assert 'tasker_step_executions_total{namespace="default",status="complete",step="d",task="diamond"' in text
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert gauges(app)["tasker_workers_active"][labels(kind="worker")] == 0  # the row left with the worker
