"""Real ``tasker`` processes: a worker configured by ``--config`` takes over a killed worker's step within its
lease, and ``tasker run`` interrupted by a signal or ``--timeout`` releases its claims and says how to resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from tasker import Tasker, TaskRequest
from tests.cli.support import REPO

pytestmark = pytest.mark.slow

LEASE = 3.0
POLL = 0.1


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


class Project:
    """A config file naming the test database, a one-step template whose first attempt hangs, and a log."""

    def __init__(self, root: Path, database_url: str, executor: str) -> None:
        self.log = root / "calls.log"
        self.log.touch()
        template = {
            "name": "slow", "namespace_name": "ops", "version": "1.0.0",
            "step_templates": [
                {"name": "first", "handler_class": "tests.support.handlers:Record"},
                {"name": "hang", "depends_on_step": "first", "handler_class": "tests.support.handlers:SlowFirstAttempt",
                 "handler_config": {"log": str(self.log), "sleep": 120}},
            ],
        }  # fmt: skip
        self.template = root / "slow.yaml"
        self.template.write_text(yaml.safe_dump(template))
        self.config = root / "tasker.yaml"
        self.config.write_text(
            yaml.safe_dump(
                {
                    "database": {"url": database_url},
                    "executor": executor,
                    "templates": {"paths": [str(self.template)]},
                    "execution": {"step_lease_seconds": LEASE, "worker_poll_interval": POLL},
                    "backoff": {"max_backoff_seconds": 0, "buffer_seconds": 0},
                }
            )
        )

    def tasker(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "tasker", "--config", str(self.config), *args],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={k: v for k, v in os.environ.items() if k != "TASKER_CONFIG"},
        )  # fmt: skip

    def starts(self) -> list[tuple[int, int]]:
        return [(int(a), int(p)) for _, a, p in (line.split() for line in self.log.read_text().splitlines())]

    def app(self) -> Tasker:
        return Tasker.from_config(self.config)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


def test_a_second_worker_takes_over_a_killed_workers_step_within_the_lease(
    tmp_path: Path, database_url: str, processes: list[subprocess.Popen[str]]
) -> None:
    project = Project(tmp_path, database_url, executor="worker")
    with project.app() as app:
        app.migrate()
    created = subprocess.run(
        [sys.executable, "-m", "tasker", "--config", str(project.config), "tasks", "create", "slow", "--namespace", "ops"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    task_id = int(created.stdout.split()[0])  # the worker executor: created for workers, not run here
    first = project.tasker("worker")
    processes.append(first)
    wait_for(lambda: len(project.starts()) == 1, 30, "the first worker to start the hanging step")
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    killed = time.monotonic()
    second = project.tasker("worker")
    processes.append(second)
    with project.app() as app:
        wait_for(lambda: app.get_task(task_id).status == "complete", LEASE + 30, "the second worker to finish")
        took = time.monotonic() - killed
        step = app.get_task(task_id).step("hang")
    assert [a for a, _ in project.starts()] == [1, 2]
    assert project.starts()[1][1] == second.pid
    assert step.attempts == 2 and step.results["pid"] == second.pid
    # lease (3 s) + poll + zero backoff + the second process's start-up; the default lease would be 300 s
    assert took < LEASE + 10, took
    print(f"step taken over {took:.2f}s after SIGKILL (lease {LEASE:g}s)")
    second.send_signal(signal.SIGTERM)
    _, err = second.communicate(timeout=30)
    assert second.returncode == 0, err
    assert f"step lease {LEASE:g}s" in err


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_run_releases_its_claims_and_says_how_to_resume(
    tmp_path: Path, database_url: str, processes: list[subprocess.Popen[str]], signum: int, code: int
) -> None:
    project = Project(tmp_path, database_url, executor="inline")
    with project.app() as app:
        app.migrate()
    run = project.tasker("run", str(project.template), "--context", "{}")
    processes.append(run)
    wait_for(lambda: len(project.starts()) == 1, 30, "the run to start the hanging step")
    run.send_signal(signum)
    out, err = run.communicate(timeout=30)
    assert run.returncode == code, (out, err)
    ours = [line for line in err.splitlines() if line.startswith("interrupted")]
    assert len(ours) == 1 and err.strip().splitlines()[-1] == ours[0], err  # one line of the command's, last
    assert "resume with `tasker worker`" in ours[0] and "Traceback" not in err
    with project.app() as app:
        (task,) = app.list_tasks()
        hang = app.get_task(task.task_id).step("hang")
        assert not hang.in_process and hang.status != "in_progress"  # released at once, not after the lease
    shown = subprocess.run(
        [sys.executable, "-m", "tasker", "--config", str(project.config), "tasks", "show", str(task.task_id), "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert '"status": "in_progress"' not in shown.stdout.split('"steps"')[1]
    worker = project.tasker("worker")  # finishes the task without waiting for any lease
    processes.append(worker)
    started = time.monotonic()
    with project.app() as app:
        wait_for(lambda: app.get_task(task.task_id).status == "complete", LEASE + 20, "a worker to finish the task")
    assert time.monotonic() - started < LEASE + 10


def test_run_timeout_is_enforced_while_a_step_runs(tmp_path: Path, database_url: str) -> None:
    project = Project(tmp_path, database_url, executor="inline")
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "tasker", "--config", str(project.config), "run", str(project.template), "--timeout", "2"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert time.monotonic() - started < 30  # the hanging step sleeps 120 s
    assert done.returncode == 1
    ours = [line for line in done.stderr.splitlines() if line.startswith("interrupted")]
    assert len(ours) == 1 and ours[0].startswith("interrupted (timed out after 2s): task 1 left"), done.stderr
    assert "Traceback" not in done.stderr


def test_a_second_ctrl_c_forces_a_worker_out(tmp_path: Path) -> None:
    project = Project(tmp_path, f"sqlite:///{tmp_path}/w.db", executor="worker")
    with project.app() as app:
        app.migrate()
        app.create_task(TaskRequest(name="slow", namespace="ops", version="1.0.0"))
    stderr = tmp_path / "worker.err"
    with stderr.open("w") as err:
        worker = subprocess.Popen(
            [sys.executable, "-m", "tasker", "--config", str(project.config), "worker"],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=err, text=True,
        )  # fmt: skip
    try:
        wait_for(lambda: len(project.starts()) == 1, 30, "the worker to start the hanging step")
        worker.send_signal(signal.SIGINT)
        wait_for(lambda: "again to force" in stderr.read_text(), 10, "the first Ctrl-C to be acknowledged")
        assert worker.poll() is None  # the first Ctrl-C waits for the running step (it sleeps 120 s)
        worker.send_signal(signal.SIGINT)
        assert worker.wait(10) == 130
        assert "forced exit" in stderr.read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
