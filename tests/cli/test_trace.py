"""``tasker trace``: a task's waterfall of step attempts, from the database alone."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasker import Tasker, TaskRequest
from tasker.cli.trace import load_trace, render_trace
from tasker.db import Database
from tests.cli.support import FAST, ORDER_CONTEXT, ORDER_TEMPLATE, assert_one_line_error, invoke

FAILING = {
    "name": "failing",
    "step_templates": [
        {"name": "validate_order", "handler_class": "tasker.examples.order.handlers:ValidateOrder"},
        {
            "name": "ship",
            "handler_class": "tasker.examples.order.handlers:ShipOrder",
            "depends_on_step": "validate_order",
        },
    ],
}
BAR = re.compile(r"\|([^|]*)\|")


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Tasker]:
    with Tasker(f"sqlite:///{tmp_path}/trace.db", config=FAST) as app:
        app.migrate()
        app.load_task_templates(ORDER_TEMPLATE)
        app.register_task_template(FAILING)
        yield app


def rows(output: str) -> dict[tuple[str, str], str]:
    """Waterfall rows keyed by (step, attempt)."""
    table = output.split("\n\n", 1)[1].splitlines()[1:]
    return {(line.split()[0], line.split()[1]): line for line in table}


def test_retried_step_shows_both_attempts_and_the_error(app: Tasker) -> None:
    task = app.create_task(
        TaskRequest(name="order_process", namespace="ecommerce", version="1.0.0", context=ORDER_CONTEXT)
    )
    assert app.run_until_done(task.task_id, timeout=30) == "complete"

    result = invoke("trace", str(task.task_id), "--database-url", app.db.url)
    assert result.exit_code == 0, result.output
    header = result.stdout.splitlines()[0]
    assert re.fullmatch(rf"task {task.task_id} ecommerce\.order_process@1\.0\.0: complete in \d+(ms|\.\d\ds)", header)
    assert "5 steps, 6 attempts" in result.stdout.splitlines()[1]

    table = rows(result.stdout)
    assert set(table) == {
        ("validate_order", "1"), ("reserve_inventory", "1"), ("charge_payment", "1"), ("charge_payment", "2"),
        ("ship_order", "1"), ("notify_customer", "1"),
    }  # fmt: skip
    failed, retried = table[("charge_payment", "1")], table[("charge_payment", "2")]
    assert re.match(r"charge_payment\s+1\s+error\s+\+\d+ms\s+\d+ms\s+\|", failed), failed
    assert failed.endswith("|  payment gateway timed out")
    assert re.match(r"charge_payment\s+2\s+complete\s+", retried), retried
    assert "payment gateway" not in retried
    for key, line in table.items():
        if key != ("charge_payment", "1"):
            assert " complete " in line and line.endswith("|"), line

    bars = {key: BAR.search(line).group(1) for key, line in table.items()}  # type: ignore[union-attr]
    assert all(len(bar) == 40 for bar in bars.values())
    assert set(bars[("charge_payment", "1")].strip()) == {"x"}
    assert set(bars[("charge_payment", "2")].strip()) == {"#"}

    def start(key: tuple[str, str]) -> int:
        return len(bars[key]) - len(bars[key].lstrip())

    def end(key: tuple[str, str]) -> int:
        return len(bars[key].rstrip())

    assert start(("charge_payment", "2")) >= end(("charge_payment", "1")) - 1  # the retry comes after the failure
    assert start(("ship_order", "1")) >= end(("charge_payment", "2")) - 1  # ship waits for the payment
    assert start(("validate_order", "1")) <= start(("reserve_inventory", "1"))
    starts = [start(key) for key in table]
    assert starts == sorted(starts)  # rows are in start order


def test_permanent_failure_and_steps_that_never_ran(app: Tasker) -> None:
    task = app.create_task(TaskRequest(name="failing", context={"items": []}))
    assert app.run_until_done(task.task_id, timeout=30) == "error"

    result = invoke("trace", str(task.task_id), "--database-url", app.db.url, "--width", "20")
    assert result.exit_code == 0, result.output
    assert f"task {task.task_id} default.failing@0.1.0: error in" in result.stdout
    table = rows(result.stdout)
    assert table[("validate_order", "1")].endswith("|  order has no items")
    assert len(BAR.search(table[("validate_order", "1")]).group(1)) == 20  # type: ignore[union-attr]
    assert re.match(r"ship\s+-\s+pending\s+-\s+-\s+\| +\|$", table[("ship", "-")]), table[("ship", "-")]


def test_a_task_not_run_yet(app: Tasker) -> None:
    task = app.create_task(TaskRequest(name="failing", context={"items": []}))
    db = Database(app.db.url)
    try:
        trace = load_trace(db, task.task_id)
    finally:
        db.dispose()
    assert trace.status == "pending"
    assert [(a.step, a.number, a.status) for a in trace.attempts] == [
        ("validate_order", None, "pending"),
        ("ship", None, "pending"),
    ]
    assert "0 attempts" in render_trace(trace)[1]


def test_unknown_task_and_bad_databases(app: Tasker, tmp_path: Path) -> None:
    assert_one_line_error(invoke("trace", "999", "--database-url", app.db.url), "no task with id 999")
    assert_one_line_error(invoke("trace", "1", "--database-url", f"sqlite:///{tmp_path}/missing.db"), "missing.db")
    assert not (tmp_path / "missing.db").exists()
    empty = tmp_path / "empty.db"
    db = Database(f"sqlite:///{empty}")
    db.table_names()  # creates the file, no schema
    db.dispose()
    assert_one_line_error(invoke("trace", "1", "--database-url", f"sqlite:///{empty}"), "tasker db upgrade")
    assert_one_line_error(invoke("trace", "one"), "TASK_ID", exit_code=2)


def test_cancelled_steps_show_without_attempts(app: Tasker) -> None:
    task = app.create_task(TaskRequest(name="failing", context={"items": []}))
    assert app.cancel_task(task.task_id) == "cancelled"
    result = invoke("trace", str(task.task_id), "--database-url", app.db.url)
    assert result.exit_code == 0, result.output
    assert f"task {task.task_id} default.failing@0.1.0: cancelled in" in result.stdout
    table = rows(result.stdout)
    assert set(table) == {("validate_order", "-"), ("ship", "-")}
    assert all(re.search(r"\s+-\s+cancelled\s+-\s+-\s+\| +\|$", line) for line in table.values()), table


def test_a_step_run_again_after_an_operator_retry_is_numbered_on(app: Tasker) -> None:
    """An operator retry renews the step's attempt budget; its next run is still the step's second row, not "#1"
    again (and, over the HTTP API, a span of its own)."""
    task = app.create_task(TaskRequest(name="failing", context={"items": []}))
    assert app.run_until_done(task.task_id, timeout=30) == "error"
    app.retry_task(task.task_id)
    assert app.run_until_done(task.task_id, timeout=30) == "error"

    db = Database(app.db.url)
    try:
        trace = load_trace(db, task.task_id)
    finally:
        db.dispose()
    assert [(a.step, a.number, a.status) for a in trace.attempts] == [
        ("validate_order", 1, "error"),
        ("validate_order", 2, "error"),
        ("ship", None, "pending"),
    ]
