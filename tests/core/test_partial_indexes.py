"""Partial indexes (migration 0006): each holds only the rows its queries look for, and those queries use it.

A step's commit writes every index page its changes touch, so the claim-lease, ``processed_at`` and failed-attempt
indexes keep only claimed steps, finished steps and failed attempts. That is only safe while the queries they serve
still find them: the expired-claims check and the statistics queries are explained on both databases here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import event

from tasker import Tasker, TaskRequest
from tasker.models.base import utcnow
from tasker.models.stats import task_stats
from tasker.orchestration.coordinator import _EXPIRED_ANY
from tests.support.handlers import chain, template
from tests.support.plans import query_plan

LEASE = "ix_tasker_workflow_steps_in_process_lease_expires_at"
PROCESSED = "ix_tasker_workflow_steps_processed_at"
FAILED = "ix_tasker_workflow_step_transitions_to_state_created_at"


def _index_definitions(app: Tasker) -> dict[str, str]:
    query = (
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        if app.db.dialect == "sqlite"
        else "SELECT indexname, indexdef FROM pg_indexes"
    )
    with app.db.engine.connect() as connection:
        return {name: sql for name, sql in connection.exec_driver_sql(query)}


def test_the_three_indexes_keep_only_claimed_finished_and_failed_rows(app: Tasker) -> None:
    definitions = _index_definitions(app)
    assert "in_process IS 1" in definitions[LEASE] or "(in_process IS TRUE)" in definitions[LEASE]
    assert "processed_at IS NOT NULL" in definitions[PROCESSED]
    assert "'error'" in definitions[FAILED]


def test_the_expired_claims_check_searches_the_claimed_steps_only(app: Tasker) -> None:
    with app.db.engine.connect() as connection:
        compiled = _EXPIRED_ANY._compile(connection.dialect)
        params = _EXPIRED_ANY._bind(compiled, {"b_now": utcnow()})
    assert LEASE in query_plan(app, compiled.sql, params)


def test_statistics_queries_read_the_partial_indexes(make_app: Callable[..., Tasker]) -> None:
    app = make_app()
    app.register_task_template(template("flaky", chain(2), {"s0": {"fail_times": 1}}))
    task = app.create_task(TaskRequest(name="flaky", version="1.0.0", context={}))
    assert app.run_until_done(task.task_id) == "complete"
    executed: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        executed.append((statement, parameters))

    event.listen(app.db.engine, "before_cursor_execute", capture)
    try:
        stats = task_stats(app.db, timedelta(hours=1))
    finally:
        event.remove(app.db.engine, "before_cursor_execute", capture)
    assert [e.count for e in stats.top_error_classes] == [1]  # the failed attempt is found through its index

    def plan_of(fragment: str) -> str:
        sql, params = next((s, p) for s, p in executed if fragment in s)
        return query_plan(app, sql, params)

    assert FAILED in plan_of("tasker_workflow_step_transitions.to_state")
    assert PROCESSED in plan_of("tasker_workflow_steps.processed_at >=")
