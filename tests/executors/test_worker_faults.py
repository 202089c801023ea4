"""Fault tests with real ``tasker worker`` processes on PostgreSQL: bad user code never stops a worker.

Each measured failure of the fault runs (issue 11) is reproduced here: poisoned results and interrupting
handlers used to kill worker threads (and the process then exited 0 with work pending), a worker pointed at
an unusable database logged a traceback every second, and an outage logged one per poll.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tasker import Tasker, TaskRequest
from tests.celery.tcp_proxy import TcpProxy
from tests.support.processes import REPO, tasker_worker, wait_for, write_templates

FAULT = "tests.support.faults:Fault"
TERMINAL = {"complete", "error", "cancelled", "resolved_manually"}

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _template(name: str, configs: dict[str, dict[str, object]] | None = None) -> dict[str, object]:
    from tests.support.handlers import template

    return template(name, {"a": [], "b": ["a"]}, configs, handler=FAULT)


@pytest.fixture
def pg(pg_schema: str) -> Iterator[Tasker]:
    from tests.conftest import truncate_all

    truncate_all(pg_schema)
    app = Tasker(pg_schema, config={"backoff": {"max_backoff_seconds": 0}})
    yield app
    app.shutdown()


def _status(app: Tasker, task_id: int) -> str:
    return app.get_task(task_id).status


def _stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=60)


def test_poisoned_results_fail_their_tasks_and_the_worker_goes_on(
    pg: Tasker, pg_schema: str, tmp_path: Path, procs: list[subprocess.Popen[str]]
) -> None:
    poisoned, healthy = _template("poisoned", {"a": {"fault": "datetime"}}), _template("healthy")
    templates = write_templates(tmp_path / "templates", poisoned, healthy)
    pg.register_task_template(poisoned)
    pg.register_task_template(healthy)
    bad = [pg.create_task(TaskRequest(name="poisoned", version="1.0.0", context={"i": i})).task_id for i in range(2)]
    proc = tasker_worker(pg_schema, templates, "-c", "2", log=tmp_path / "worker.log")
    procs.append(proc)
    wait_for(lambda: all(_status(pg, t) == "error" for t in bad), timeout=30, what="poisoned tasks failed")
    good = [pg.create_task(TaskRequest(name="healthy", version="1.0.0", context={"i": i})).task_id for i in range(3)]
    wait_for(lambda: all(_status(pg, t) == "complete" for t in good), timeout=30, what="later tasks completed")
    for task_id in bad:
        step = pg.get_task(task_id).step("a")
        assert step.results["error"] == "step a: results.at: datetime is not JSON-serializable"
    assert proc.poll() is None and _stop(proc) == 0


@pytest.mark.parametrize("kind", ["keyboard_interrupt", "system_exit", "cancelled", "generator_exit"])
def test_interrupting_handlers_never_stop_the_worker(
    pg: Tasker, pg_schema: str, tmp_path: Path, procs: list[subprocess.Popen[str]], kind: str
) -> None:
    tmpl = _template("interrupts", {"a": {"fault": kind, "times": 1}})
    templates = write_templates(tmp_path / "templates", tmpl)
    pg.register_task_template(tmpl)
    ids = [pg.create_task(TaskRequest(name="interrupts", version="1.0.0", context={"i": i})).task_id for i in range(3)]
    proc = tasker_worker(pg_schema, templates, "-c", "2", log=tmp_path / "worker.log")
    procs.append(proc)
    wait_for(lambda: all(_status(pg, t) == "complete" for t in ids), timeout=45, what="tasks completed")
    assert {pg.get_task(t).step("a").attempts for t in ids} == {2}  # the interrupted attempt, then a retry
    assert proc.poll() is None and _stop(proc) == 0


def test_a_database_outage_logs_one_warning_and_one_recovery(
    pg: Tasker, pg_schema: str, tmp_path: Path, procs: list[subprocess.Popen[str]]
) -> None:
    tmpl = _template("steady")
    templates = write_templates(tmp_path / "templates", tmpl)
    pg.register_task_template(tmpl)
    url = make_url(pg_schema)
    log = tmp_path / "worker.log"
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        proc = tasker_worker(proxied, templates, log=log)
        procs.append(proc)
        first = pg.create_task(TaskRequest(name="steady", version="1.0.0", context={"i": 1})).task_id
        wait_for(lambda: _status(pg, first) == "complete", timeout=30, what="first task")
        proxy.down()
        wait_for(lambda: "lost the database" in log.read_text(), timeout=30, what="the outage noticed")
        later = pg.create_task(TaskRequest(name="steady", version="1.0.0", context={"i": 2})).task_id
        proxy.up()
        wait_for(lambda: _status(pg, later) == "complete", timeout=60, what="work after the outage")
        assert _stop(proc) == 0
    text = log.read_text()
    assert text.count("lost the database") == 1, text
    assert text.count("reachable again") == 1, text
    assert "Traceback" not in text, text


def _worker_command(url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    templates = write_templates(tmp_path / "templates", _template("any"))
    return subprocess.run(
        [sys.executable, "-m", "tasker", "worker", "-t", str(templates), "--database-url", url],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_worker_refuses_to_start_on_an_unreachable_database(tmp_path: Path) -> None:
    result = _worker_command("postgresql://tasker:s3cret@127.0.0.1:1/nowhere", tmp_path)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("Error: cannot reach the database at postgresql+psycopg://tasker:***@127.0.0.1:1/nowhere")


def test_worker_refuses_to_start_on_an_unmigrated_database(tmp_path: Path) -> None:
    result = _worker_command(f"sqlite:///{tmp_path}/empty.db", tmp_path)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("Error: schema is not migrated: run tasker db upgrade")
