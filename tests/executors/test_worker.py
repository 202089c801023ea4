"""Database workers: polling, sharing work safely, surviving SIGKILL, stopping on SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tasker import Tasker, TaskRequest
from tasker.executors import Worker, claim_next_task
from tests.support.handlers import calls, fan_out, read_log, template
from tests.support.processes import configured_worker, wait_for

REPO = Path(__file__).resolve().parents[2]
FILE_RECORD = "tests.support.handlers:FileRecord"


def test_worker_runs_tasks_created_elsewhere(make_app: Callable[..., Tasker]) -> None:
    producer = make_app()
    producer.register_task_template(template("diamond"))
    ids = [
        producer.create_task(TaskRequest(name="diamond", version="1.0.0", context={"i": i})).task_id for i in range(3)
    ]
    consumer = make_app()
    consumer.register_task_template(template("diamond"))
    worker = Worker(consumer, concurrency=2, poll_interval=0.01)
    worker.run(until_idle=True, timeout=60)
    assert [producer.get_task(i).status for i in ids] == ["complete"] * 3
    assert Counter((c.task_id, c.step) for c in calls()) == {(i, s): 1 for i in ids for s in "abcd"}


def test_a_claimed_task_is_not_claimed_twice(app: Tasker) -> None:
    app.register_task_template(template("diamond"))
    task = app.create_task(TaskRequest(name="diamond", version="1.0.0", context={"x": 1}))
    assert claim_next_task(app, "w1") == task.task_id
    assert claim_next_task(app, "w2") is None


def test_retried_task_is_picked_up_when_due(make_app: Callable[..., Tasker]) -> None:
    app = make_app({"backoff": {"max_backoff_seconds": 300}})
    app.register_task_template(
        template("later", {"a": []}, {"a": {"fail_times": 1, "error": "retryable", "retry_after": 1}})
    )
    task = app.create_task(TaskRequest(name="later", version="1.0.0", context={"x": 1}))
    Worker(app, poll_interval=0.05).run(until_idle=True, timeout=60)
    assert app.get_task(task.task_id).status == "complete"
    assert [c.attempt for c in calls("a")] == [1, 2]


@pytest.mark.postgres
def test_two_worker_apps_on_postgres_never_run_a_step_twice(pg_schema: str, make_app: Callable[..., Tasker]) -> None:
    from tests.conftest import truncate_all

    truncate_all(pg_schema)
    tmpl = template("fan", fan_out(6))
    producer = Tasker(pg_schema, config={"backoff": {"max_backoff_seconds": 0}})
    producer.register_task_template(tmpl)
    ids = [producer.create_task(TaskRequest(name="fan", version="1.0.0", context={"i": i})).task_id for i in range(15)]
    workers = []
    for n in range(2):
        app = Tasker(pg_schema, config={"backoff": {"max_backoff_seconds": 0}}, worker_id=f"w{n}")
        app.register_task_template(tmpl)
        workers.append(Worker(app, concurrency=2, poll_interval=0.01))
    threads = [threading.Thread(target=w.run, kwargs={"until_idle": True, "timeout": 120}) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {producer.get_task(i).status for i in ids} == {"complete"}
    per_step = Counter((c.task_id, c.step) for c in calls())
    assert len(per_step) == 15 * 8 and set(per_step.values()) == {1}
    assert all(w.passes > 0 for w in workers)
    for w in workers:
        w.app.shutdown()
    producer.shutdown()


@pytest.mark.slow
def test_sigkill_mid_step_loses_nothing(
    database_url: str, make_app: Callable[..., Tasker], tmp_path: Path, procs: list[subprocess.Popen[str]]
) -> None:
    log = str(tmp_path / "calls.log")
    config = {"backoff": {"max_backoff_seconds": 0}, "execution": {"step_lease_seconds": 1.5}}
    tmpl = template(
        "slow", {"a": [], "b": ["a"]}, {"a": {"log": log, "sleep": 3}, "b": {"log": log}}, handler=FILE_RECORD
    )
    app = make_app(config)
    app.register_task_template(tmpl)
    task = app.create_task(TaskRequest(name="slow", version="1.0.0", context={"x": 1}))
    victim = configured_worker(database_url, config, [tmpl], log=tmp_path / "victim.log")
    procs.append(victim)
    wait_for(lambda: os.path.exists(log) and any(e[0] == "start" for e in read_log(log)))
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    survivor = configured_worker(database_url, config, [tmpl], log=tmp_path / "survivor.log")
    procs.append(survivor)
    wait_for(lambda: app.get_task(task.task_id).status == "complete", timeout=90)
    events = read_log(log)
    ends = Counter((e[2], e[4]) for e in events if e[0] == "end")
    assert {step for step, _pid in ends} == {"a", "b"}
    assert all(pid == survivor.pid for _step, pid in ends)  # the killed worker never finished "a"
    assert ends[("a", survivor.pid)] == 1 and ends[("b", survivor.pid)] == 1
    view = app.get_task(task.task_id)
    assert view.step("a").attempts == 2  # the killed attempt counts
    assert view.step("a").results["pid"] == survivor.pid


@pytest.mark.slow
def test_sigterm_finishes_the_running_step_and_exits(
    database_url: str, make_app: Callable[..., Tasker], tmp_path: Path, procs: list[subprocess.Popen[str]]
) -> None:
    log = str(tmp_path / "calls.log")
    config = {"backoff": {"max_backoff_seconds": 0}}
    tmpl = template(
        "chain", {"a": [], "b": ["a"]}, {"a": {"log": log, "sleep": 1}, "b": {"log": log}}, handler=FILE_RECORD
    )
    app = make_app(config)
    app.register_task_template(tmpl)
    task = app.create_task(TaskRequest(name="chain", version="1.0.0", context={"x": 1}))
    proc = configured_worker(database_url, config, [tmpl], log=tmp_path / "worker.log")
    procs.append(proc)
    wait_for(lambda: os.path.exists(log) and any(e[0] == "start" for e in read_log(log)))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    view = app.get_task(task.task_id)
    assert view.step("a").status == "complete"  # the in-flight step was finished, not abandoned
    assert view.step("a").in_process is False
    assert view.status == "pending"  # released for another worker
    Worker(app, poll_interval=0.02).run(until_idle=True, timeout=60)
    assert app.get_task(task.task_id).status == "complete"


@pytest.mark.slow
def test_tasker_worker_command_runs_tasks_and_stops_on_sigterm(
    database_url: str, make_app: Callable[..., Tasker]
) -> None:
    app = make_app()
    app.load_task_templates(REPO / "examples/order/order_process.yaml")
    context = {"order_id": 1, "items": [{"sku": "A", "price": 2.0, "quantity": 1}]}
    task = app.create_task(TaskRequest(name="order_process", namespace="ecommerce", version="1.0.0", context=context))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tasker", "worker", "-t", "examples/order/order_process.yaml", "-c", "2",
         "--poll-interval", "0.05", "--database-url", database_url],
        cwd=REPO, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for(lambda: app.get_task(task.task_id).status == "complete", timeout=60)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert re.search(r"stopped after \d+ pass\(es\)$", err.strip())  # a clean exit, not a crash


@pytest.mark.postgres
@pytest.mark.slow
def test_two_processes_running_passes_of_the_same_tasks_never_run_a_step_twice(
    pg_schema: str, tmp_path: Path, procs: list[subprocess.Popen[str]]
) -> None:
    from tests.conftest import truncate_all

    truncate_all(pg_schema)
    log = str(tmp_path / "calls.log")
    steps = {"root": [], **{f"w{i}": ["root"] for i in range(4)}, "merge": [f"w{i}" for i in range(4)]}
    tmpl = template("same", steps, {name: {"log": log, "sleep": 0.02} for name in steps}, handler=FILE_RECORD)
    producer = Tasker(pg_schema)
    producer.register_task_template(tmpl)
    ids = [producer.create_task(TaskRequest(name="same", version="1.0.0", context={"i": i})).task_id for i in range(12)]
    for _ in range(2):
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.pass_runner", pg_schema, json.dumps(tmpl), ",".join(map(str, ids))],
            cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )  # fmt: skip
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        procs.append(proc)
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    assert {producer.get_task(i).status for i in ids} == {"complete"}
    events = read_log(log)
    starts = Counter((e[1], e[2]) for e in events if e[0] == "start")
    ends = Counter((e[1], e[2]) for e in events if e[0] == "end")
    assert starts == ends == {(i, s): 1 for i in ids for s in steps}
    assert len({e[4] for e in events}) == 2  # both processes executed steps
    producer.shutdown()
