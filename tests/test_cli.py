"""The ``tasker`` command line: version, demo, run, and one-line errors for user mistakes."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import tasker
from tasker.cli import main

REPO = Path(__file__).resolve().parents[1]
ORDER_TEMPLATE = REPO / "examples" / "order" / "order_process.yaml"
ORDER_STEPS = ("validate_order", "reserve_inventory", "charge_payment", "ship_order", "notify_customer")
GOOD_CONTEXT = {"order_id": 1, "email": "a@b.c", "items": [{"sku": "A", "price": 9.5, "quantity": 2}]}


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The CLI configures logging (it owns the process when run for real); undo that between tests."""
    loggers = [logging.getLogger(), logging.getLogger("tasker")]
    saved = [(lg, lg.level, list(lg.handlers)) for lg in loggers]
    yield
    for lg, level, handlers in saved:
        lg.setLevel(level)
        lg.handlers[:] = handlers


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def run_module(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m tasker ARGS`` in a fresh process: what a user sees on stdout/stderr."""
    return subprocess.run([sys.executable, "-m", "tasker", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert "tasker" in result.output and tasker.__version__ in result.output


def test_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # any temp folder would show up here
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("COLUMNS", "80")
    result = invoke("demo")
    assert result.exit_code == 0, result.output
    for step in ORDER_STEPS:
        assert step in result.output
    assert "complete" in result.output
    assert re.search(r"^charge_payment\s+complete\s+2\b", result.output, re.MULTILINE), result.output
    for step in set(ORDER_STEPS) - {"charge_payment"}:
        assert re.search(rf"^{step}\s+complete\s+1\b", result.output, re.MULTILINE), step
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tasker-demo.db", "tmp"]  # persists; no temp folders
    assert list((tmp_path / "tmp").iterdir()) == []
    assert all(len(line) <= 80 for line in result.output.splitlines()), result.output
    assert "ERROR payment gateway timed out" in result.output  # the failed span shows its message
    # the table's durations are the waterfall's (latest attempt of each step)
    table = dict(re.findall(r"^(\w+)\s+complete\s+\d\s+([\d.]+ m?s)$", result.output, re.MULTILINE))
    bars = re.findall(r"^\s+step (\w+) #\d+\s+\|.*\|\s+([\d.]+ m?s)", result.output, re.MULTILINE)
    assert table == dict(bars) and len(table) == 5
    # the suggested next command works, from the same directory
    (suggestion,) = re.findall(r"^next: tasker (.+)$", result.output, re.MULTILINE)
    shown = invoke(*suggestion.split())
    assert shown.exit_code == 0, shown.output
    assert "ecommerce.order_process@1.0.0: complete" in shown.output and "payment gateway timed out" in shown.output
    again = invoke("demo")  # a second run appends to the same database
    assert again.exit_code == 0 and "outcome: task 2 complete" in again.output


def test_demo_on_a_given_database(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    result = invoke("demo", "--database-url", f"sqlite:///{db}")
    assert result.exit_code == 0, result.output
    assert db.exists() and "outcome" in result.output


def test_run_example_template(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/run.db"
    result = invoke("run", str(ORDER_TEMPLATE), "--context", json.dumps(GOOD_CONTEXT), "--database-url", url)
    assert result.exit_code == 0, result.output
    assert "ecommerce.order_process@1.0.0: complete" in result.output
    for step in ORDER_STEPS:
        assert step in result.output


def test_run_uses_the_environment_url(tmp_path: Path) -> None:
    db = tmp_path / "env.db"
    result = CliRunner().invoke(
        main, ["run", str(ORDER_TEMPLATE), "--context", json.dumps(GOOD_CONTEXT)],
        env={"TASKER_DATABASE_URL": f"sqlite:///{db}"}, catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert db.exists()


def test_run_with_invalid_json(tmp_path: Path) -> None:
    result = run_module("run", str(ORDER_TEMPLATE), "--context", "{not json", "--database-url",
                        f"sqlite:///{tmp_path}/x.db", cwd=tmp_path)  # fmt: skip
    assert_one_line_error(result)


def test_run_with_a_non_object_context(tmp_path: Path) -> None:
    result = run_module("run", str(ORDER_TEMPLATE), "--context", "[1, 2]", "--database-url",
                        f"sqlite:///{tmp_path}/x.db", cwd=tmp_path)  # fmt: skip
    assert_one_line_error(result, "object")


def test_run_with_a_context_failing_the_schema(tmp_path: Path) -> None:
    result = run_module("run", str(ORDER_TEMPLATE), "--context", '{"order_id": "one"}', "--database-url",
                        f"sqlite:///{tmp_path}/x.db", cwd=tmp_path)  # fmt: skip
    assert_one_line_error(result, "order_id", "items")


def test_run_with_a_missing_file(tmp_path: Path) -> None:
    result = run_module("run", str(tmp_path / "missing.yaml"), "--context", "{}", "--database-url",
                        f"sqlite:///{tmp_path}/x.db", cwd=tmp_path)  # fmt: skip
    assert_one_line_error(result, "missing.yaml")


def test_run_with_a_broken_template(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: broken\nstep_templates:\n  - name: a\n    handler_class: no.such.module:Handler\n")
    result = run_module("run", str(broken), "--context", "{}", "--database-url", f"sqlite:///{tmp_path}/x.db",
                        cwd=tmp_path)  # fmt: skip
    assert_one_line_error(result, "handler_class")


def test_run_exits_non_zero_when_the_task_fails(tmp_path: Path) -> None:
    failing = tmp_path / "failing.yaml"
    failing.write_text(
        "name: failing\nstep_templates:\n"
        "  - name: validate_order\n    handler_class: tasker.examples.order.handlers:ValidateOrder\n"
    )
    result = invoke("run", str(failing), "--context", '{"items": []}', "--database-url", f"sqlite:///{tmp_path}/f.db")
    assert result.exit_code == 1
    assert "error" in result.output and "order has no items" in result.output


def test_python_dash_m_help(tmp_path: Path) -> None:
    result = run_module("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for command in ("demo", "run", "db"):
        assert command in result.stdout
    assert result.stderr == ""
