"""Prepared statements: the same values in and out as SQLAlchemy's own execution, errors raised the same way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any, cast

import pytest
from sqlalchemy import Table, bindparam, event, select, text, update
from sqlalchemy.exc import IntegrityError

from tasker import Tasker, TaskRequest
from tasker.db.prepared import Prepared
from tasker.errors import StoreError
from tasker.models import WorkflowStep
from tests.support.handlers import template

STEPS = cast(Table, WorkflowStep.__table__)
BY_TASK = select(STEPS).where(STEPS.c.task_id == bindparam("b_task")).order_by(STEPS.c.workflow_step_id)
SET_RESULTS = (
    update(STEPS)
    .where(STEPS.c.workflow_step_id == bindparam("b_id"))
    .values(results=bindparam("b_results"), processed_at=bindparam("b_at"), processed=True)
)


def make_task(app: Tasker) -> int:
    app.register_task_template(template("prepared", {"a": [], "b": ["a"]}))
    return app.create_task(TaskRequest(name="prepared", version="1.0.0", context={"x": 1})).task_id


def test_rows_are_the_rows_sqlalchemy_reads(app: Tasker) -> None:
    task_id = make_task(app)
    moment = datetime(2026, 5, 17, 10, 30, 0, 1, tzinfo=timezone(timedelta(hours=2)))
    with app.db.connection() as connection:
        step_id = connection.execute(BY_TASK, {"b_task": task_id}).first().workflow_step_id  # type: ignore[union-attr]
        changed = Prepared(SET_RESULTS).execute(
            connection, {"b_id": step_id, "b_results": {"n": [1, 2.5, None, "é"]}, "b_at": moment}
        )
        assert changed == 1
    with app.db.read_connection() as connection:
        ours = Prepared(BY_TASK).rows(connection, {"b_task": task_id})
        theirs = list(connection.execute(BY_TASK, {"b_task": task_id}))
    assert [tuple(row) for row in ours] == [tuple(row) for row in theirs]
    first = ours[0]
    assert first.results == {"n": [1, 2.5, None, "é"]} and first.processed is True
    assert first.processed_at == moment and first.processed_at.tzinfo is UTC  # stored as UTC, read back aware
    assert first.name == "a" and ours[1].processed is False
    assert first.updated_at > first.created_at == ours[1].updated_at  # the column's onupdate, as SQLAlchemy does


def test_executemany_and_statement_listeners(app: Tasker) -> None:
    task_id = make_task(app)
    seen: list[tuple[str, bool]] = []

    def listen(_conn: Any, _cursor: Any, statement: str, _params: Any, _context: Any, many: bool) -> None:
        seen.append((statement.split()[0], many))

    event.listen(app.db.engine, "before_cursor_execute", listen)
    try:
        with app.db.connection() as connection:
            ids = [row.workflow_step_id for row in Prepared(BY_TASK).rows(connection, {"b_task": task_id})]
            at = datetime(2026, 1, 1, tzinfo=UTC)
            Prepared(SET_RESULTS).executemany(connection, [{"b_id": i, "b_results": {"i": i}, "b_at": at} for i in ids])
    finally:
        event.remove(app.db.engine, "before_cursor_execute", listen)
    assert ("SELECT", False) in seen and ("UPDATE", True) in seen
    assert {step.name: step.results for step in app.get_task(task_id).steps} == {"a": {"i": ids[0]}, "b": {"i": ids[1]}}


def test_a_driver_error_is_raised_as_sqlalchemy_raises_it_and_rolls_back(app: Tasker) -> None:
    task_id = make_task(app)
    rename = update(STEPS).where(STEPS.c.workflow_step_id == bindparam("b_id")).values(name=bindparam("b_name"))
    with app.db.read_connection() as connection:
        a, b = (row.workflow_step_id for row in Prepared(BY_TASK).rows(connection, {"b_task": task_id}))
    with pytest.raises(StoreError) as raised, app.db.connection() as connection:
        Prepared(rename).execute(connection, {"b_id": a, "b_name": "renamed"})
        Prepared(rename).execute(connection, {"b_id": b, "b_name": "renamed"})  # (task_id, name) is unique
    assert isinstance(raised.value.__cause__, IntegrityError)
    assert [step.name for step in app.get_task(task_id).steps] == ["a", "b"]  # nothing half-written


def test_a_missing_parameter_is_an_error_not_a_null(app: Tasker) -> None:
    task_id = make_task(app)
    with pytest.raises(KeyError, match="b_at"), app.db.connection() as connection:
        Prepared(SET_RESULTS).execute(connection, {"b_id": task_id, "b_results": {}})


def test_turns_on_a_pinned_connection_commit_or_roll_back_whole(app: Tasker) -> None:
    task_id = make_task(app)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    with app.db.read_connection() as connection:
        a = Prepared(BY_TASK).rows(connection, {"b_task": task_id})[0].workflow_step_id
    with app.db.pinned() as pinned:
        with pytest.raises(RuntimeError), app.db.connection(pinned) as connection:
            Prepared(SET_RESULTS).execute(connection, {"b_id": a, "b_results": {"lost": True}, "b_at": at})
            raise RuntimeError("the turn fails after its write")
        with app.db.connection(pinned) as connection:
            Prepared(SET_RESULTS).execute(connection, {"b_id": a, "b_results": {"kept": True}, "b_at": at})
        with pytest.raises(StoreError), app.db.connection(pinned) as connection:  # a driver error: rolled back
            Prepared(SET_RESULTS).execute(connection, {"b_id": a, "b_results": {"lost": 2}, "b_at": at})
            Prepared(text("SELECT * FROM tasker_nowhere")).rows(connection, {})
        with app.db.connection(pinned) as connection:  # and the connection goes on
            assert Prepared(BY_TASK).rows(connection, {"b_task": task_id})[0].results == {"kept": True}
    assert app.get_task(task_id).step("a").results == {"kept": True}
