"""The ready-steps query reads a task's candidate steps through its index, never the steps already finished.

A pass runs it once per iteration, so on a chain of N steps a query that also read the finished steps would make
the task cost O(N²). The database's own plan says which rows it reads: the ``status`` condition must be part of
the index search (SQLite: ``status=?`` in the search; PostgreSQL: no row of a finished step removed by a filter).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from tasker import Tasker, TaskRequest
from tasker.models.base import utcnow
from tasker.orchestration.readiness import _READY
from tests.support.handlers import chain, template


def _plan(app: Tasker, task_id: int) -> str:
    with app.db.engine.connect() as connection:
        compiled = _READY._compile(connection.dialect)
        params = _READY._bind(compiled, {"b_task": task_id, "b_now": utcnow()})
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        if connection.dialect.name == "postgresql":
            # a table this small may be read whole once analysed: the question is what an index search covers
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + compiled.sql, params)
            return json.dumps(cursor.fetchone()[0])
        cursor.execute("EXPLAIN QUERY PLAN " + compiled.sql, params)
        return " ".join(str(row[-1]) for row in cursor.fetchall())


def test_finished_steps_are_not_read_to_find_the_ready_ones(make_app: Callable[..., Tasker]) -> None:
    app = make_app()
    app.register_task_template(template("forty", chain(40)))
    task = app.create_task(TaskRequest(name="forty", version="1.0.0", context={}))
    assert app.run_until_done(task.task_id) == "complete"  # 40 steps complete, each with no unsatisfied parent

    plan = _plan(app, task.task_id)
    if app.db.dialect == "postgresql":
        nodes = json.loads(plan)
        scans = [node for node in _nodes(nodes[0]["Plan"]) if "Index Cond" in node]
        assert scans and all("status" in node["Index Cond"] for node in scans), plan
        assert all(node.get("Rows Removed by Filter", 0) == 0 for node in _nodes(nodes[0]["Plan"])), plan
    else:
        searches = plan.split("SEARCH")[1:]
        assert searches and all("status=?" in part for part in searches), plan


def _nodes(node: dict[str, object]) -> list[dict[str, object]]:
    children = node.get("Plans", [])
    assert isinstance(children, list)
    return [node, *(n for child in children for n in _nodes(child))]
