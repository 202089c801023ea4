"""``tasker tasks list|show|retry|cancel|create`` and ``tasker steps resolve`` on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from tasker import Tasker
from tasker.cli import main
from tests.cli.support import REPO, assert_one_line_error
from tests.support.handlers import FLAGGED, RECORD
from tests.support.history import task_log


def template(name: str, flag: Path, error: str = "exception", *, skippable: bool = False) -> dict:
    """a -> b -> c where ``b`` fails while ``flag`` exists (2 attempts) and may be skippable."""
    return {
        "name": name,
        "namespace_name": "ops",
        "version": "1.0.0",
        "step_templates": [
            {"name": "a", "handler_class": RECORD},
            {"name": "b", "handler_class": FLAGGED, "depends_on_step": "a", "default_retry_limit": 2,
             "skippable": skippable, "handler_config": {"flag": str(flag), "error": error}},
            {"name": "c", "handler_class": RECORD, "depends_on_step": "b"},
        ],
    }  # fmt: skip


class Ops:
    """A configured project: templates ``flaky``/``fatal``/``optional`` (b skippable) on the test database."""

    def __init__(self, root: Path, database_url: str) -> None:
        self.flag = root / "failing"
        self.flag.touch()
        tasks = root / "tasks"
        tasks.mkdir()
        for name, error, skippable in (("flaky", "exception", False), ("fatal", "permanent", False),
                                       ("optional", "exception", True)):  # fmt: skip
            (tasks / f"{name}.yaml").write_text(yaml.safe_dump(template(name, self.flag, error, skippable=skippable)))
        self.config = root / "tasker.yaml"
        self.config.write_text(
            yaml.safe_dump(
                {
                    "database": {"url": database_url},
                    "templates": {"paths": [str(tasks)]},
                    "backoff": {"max_backoff_seconds": 0, "buffer_seconds": 0},
                }
            )
        )
        self.database_url = database_url
        assert self.cli("db", "upgrade").exit_code == 0

    def cli(self, *args: str) -> Result:
        return CliRunner().invoke(main, ["--config", str(self.config), *args], catch_exceptions=False)

    def create(self, name: str, *extra: str) -> int:
        result = self.cli("tasks", "create", name, "--namespace", "ops", "--context", '{"n": 1}', *extra)
        assert result.exit_code in (0, 1) and "Error" not in result.output, result.output
        return int(result.stdout.splitlines()[0])

    def json(self, *args: str) -> object:
        result = self.cli(*args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def app(self) -> Tasker:
        return Tasker.from_config(self.config)


@pytest.fixture
def ops(tmp_path: Path, database_url: str) -> Ops:
    return Ops(tmp_path, database_url)


def test_create_list_and_show(ops: Ops) -> None:
    failed = ops.create("flaky")  # runs inline: b fails twice, the task ends in error (exit 1)
    ops.flag.unlink()
    done = ops.create("flaky")
    queued = ops.create("fatal", "--enqueue-only")

    listed = ops.json("tasks", "list")
    assert isinstance(listed, list)
    assert [(t["task_id"], t["status"]) for t in listed] == [(queued, "pending"), (done, "complete"), (failed, "error")]
    by_id = {t["task_id"]: t for t in listed}
    assert (by_id[done]["steps_complete"], by_id[done]["steps_total"]) == (3, 3)
    assert (by_id[failed]["steps_complete"], by_id[failed]["steps_total"]) == (1, 3)
    assert by_id[failed]["last_error"] == "gateway down: password=[FILTERED]"
    assert by_id[done]["duration"] > 0 and len(by_id[done]["trace_id"]) == 32
    assert [t["task_id"] for t in ops.json("tasks", "list", "--status", "error")] == [failed]  # type: ignore[union-attr]
    assert [t["task_id"] for t in ops.json("tasks", "list", "--name", "flaky", "--since", "1h")] == [done, failed]  # type: ignore[union-attr]
    assert ops.json("tasks", "list", "--namespace", "elsewhere") == []
    page = ops.json("tasks", "list", "--limit", "2")
    assert [t["task_id"] for t in page] == [queued, done]  # type: ignore[union-attr]
    assert [t["task_id"] for t in ops.json("tasks", "list", "--limit", "2", "--after", str(done))] == [failed]  # type: ignore[union-attr]

    table = ops.cli("tasks", "list")
    assert table.exit_code == 0
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["id", "task", "status", "steps", "created", "duration", "last", "error"]
    assert rows[2].split()[:4] == [str(failed), "ops.flaky@1.0.0", "error", "1/3"]
    assert rows[2].endswith("gateway down: password=[FILTERED]")

    shown = ops.json("tasks", "show", str(failed))
    assert isinstance(shown, dict)
    steps = {s["name"]: s for s in shown["steps"]}
    assert (steps["b"]["status"], steps["b"]["attempts"], steps["b"]["retry_limit"]) == ("error", 2, 2)
    assert steps["b"]["last_error"] == "gateway down: password=[FILTERED]\nsecond line"
    assert steps["c"]["depends_on"] == ["b"] and steps["c"]["status"] == "pending"
    assert shown["dag"]["execution_status"] == "blocked_by_failures"
    assert shown["trace_id"] == by_id[failed]["trace_id"]

    text = ops.cli("tasks", "show", str(failed)).stdout
    assert f"task {failed} ops.flaky@1.0.0: error" in text
    assert "dag: blocked_by_failures" in text and f"trace id: {shown['trace_id']}" in text
    assert "password=hunter2" not in text and "gateway down: password=[FILTERED]" in text
    assert "timeline" in text  # the waterfall of attempts follows the steps


def test_retry_one_then_bulk_with_counts(ops: Ops) -> None:
    # retry limit exhausted, a permanent error, and one more of each for the bulk retry
    exhausted, permanent, exhausted2, permanent2 = (ops.create(n) for n in ("flaky", "fatal", "flaky", "fatal"))
    ops.flag.unlink()  # the handler works from now on
    complete = ops.create("flaky")

    refused = ops.cli("tasks", "retry", str(complete))
    assert_one_line_error(refused, f"task {complete} is 'complete': only a task in 'error' can be retried")

    for task_id in (exhausted, permanent):
        retried = ops.cli("tasks", "retry", str(task_id), "--reason", "gateway fixed")
        assert retried.exit_code == 0, retried.output
        assert f"task {task_id} re-queued: b pending again" in retried.stdout
        assert f"task {task_id}: complete" in retried.stdout  # the inline executor ran it here

    queued = ops.cli("tasks", "retry", "--status", "error", "--namespace", "ops", "--since", "1h", "--enqueue-only")
    assert queued.exit_code == 0, queued.output
    assert queued.stdout.strip() == "re-queued 2, refused 0"
    assert {t["status"] for t in ops.json("tasks", "list", "--status", "pending")} == {"pending"}  # type: ignore[union-attr]
    assert len(ops.json("tasks", "list", "--status", "pending")) == 2  # type: ignore[arg-type]
    with ops.app() as app:  # a worker's job with --enqueue-only; done here
        assert [app.run_until_done(t) for t in (exhausted2, permanent2)] == ["complete", "complete"]
        assert ("error", "pending", {"reason": "gateway fixed"}) in task_log(app, exhausted)
        assert ("error", "pending", {"reason": "gateway fixed"}) in task_log(app, permanent)

    everything = ops.cli("tasks", "retry", "--name", "flaky")  # every flaky task is complete now
    assert everything.exit_code == 0 and everything.stdout.strip() == "re-queued 0, refused 3"


def test_retry_usage_mistakes(ops: Ops) -> None:
    assert_one_line_error(ops.cli("tasks", "retry"), "give task ids, or filters")
    assert_one_line_error(ops.cli("tasks", "retry", "1", "--status", "error"), "not both")
    assert_one_line_error(ops.cli("tasks", "retry", "999"), "no task with id 999")


def test_cancel_resolve_and_bypass(ops: Ops) -> None:
    queued = ops.create("flaky", "--enqueue-only")
    cancelled = ops.cli("tasks", "cancel", str(queued))
    assert cancelled.exit_code == 0 and f"task {queued}: cancelled" in cancelled.stdout
    assert_one_line_error(ops.cli("tasks", "retry", str(queued)), "is 'cancelled'")
    assert_one_line_error(ops.cli("tasks", "cancel", "999"), "no task with id 999")

    failed = ops.create("flaky")
    resolved = ops.cli("steps", "resolve", str(failed), "b")
    assert resolved.exit_code == 0, resolved.output
    assert f"task {failed}: complete" in resolved.stdout  # c ran after b was resolved
    assert_one_line_error(ops.cli("steps", "resolve", str(failed), "nope"), "has no step named 'nope'")

    # bypass: the skippable failing step is not run; its dependent proceeds
    bypassed = ops.create("optional", "--bypass-step", "b")
    shown = ops.json("tasks", "show", str(bypassed))
    assert shown["status"] == "complete"  # type: ignore[index]
    steps = {s["name"]: s for s in shown["steps"]}  # type: ignore[index]
    assert (steps["b"]["status"], steps["b"]["attempts"], steps["c"]["status"]) == ("resolved_manually", 0, "complete")
    assert_one_line_error(ops.cli("tasks", "create", "flaky", "--namespace", "ops", "--bypass-step", "b"),
                          "not marked skippable", "b")  # fmt: skip
    assert_one_line_error(ops.cli("tasks", "create", "optional", "--namespace", "ops", "--bypass-step", "zz"),
                          "names no step", "zz")  # fmt: skip


def test_create_mistakes_and_context_file(ops: Ops, tmp_path: Path) -> None:
    ops.flag.unlink()
    context = tmp_path / "context.json"
    context.write_text('{"n": 2}')
    made = ops.cli("tasks", "create", "flaky", "--namespace", "ops", "--version", "1.0.0", "--context", f"@{context}")
    assert made.exit_code == 0, made.output
    assert ops.json("tasks", "show", made.stdout.splitlines()[0])["status"] == "complete"  # type: ignore[index]
    assert_one_line_error(ops.cli("tasks", "create", "nope", "--namespace", "ops"), "no task template ops.nope")
    assert_one_line_error(ops.cli("tasks", "create", "flaky", "--namespace", "ops", "--context", "[1]"), "JSON object")
    assert_one_line_error(ops.cli("tasks", "create", "flaky", "--namespace", "ops", "--context", "@missing.json"),
                          "missing.json")  # fmt: skip


def test_read_commands_refuse_a_missing_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/none.db"
    result = CliRunner().invoke(main, ["tasks", "list", "--database-url", url], catch_exceptions=False)
    assert_one_line_error(result, "no database file at")
    assert not (tmp_path / "none.db").exists()


def test_json_and_broken_pipe_in_real_processes(ops: Ops) -> None:
    ops.flag.unlink()
    for _ in range(3):
        ops.create("flaky", "--enqueue-only")
    env = {**os.environ, "TASKER_CONFIG": str(ops.config)}
    listed = subprocess.run([sys.executable, "-m", "tasker", "tasks", "list", "--json"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    assert [t["status"] for t in json.loads(listed.stdout)] == ["pending"] * 3
    # `tasker tasks list | head`: the reader has gone away before the command writes; it exits quietly
    piped = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {sys.executable} -m tasker tasks list | true"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert (piped.returncode, piped.stderr) == (0, "")
