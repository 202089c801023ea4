"""API latency on a large PostgreSQL database: task listing (filtered, deep keyset pages) and statistics.

Bulk-inserts N tasks (default 100,000) of four templates with three steps each and two transitions per step,
created over the last 24 hours with a realistic mix of statuses (70% complete, 10% error, 10% pending,
5% cancelled, 5% in progress), then times requests against the real ASGI app (in process, FastAPI included):

    GET /api/v1/tasks?status=error&limit=50                first page of a filtered list
    GET /api/v1/tasks?status=error&limit=50&after=<deep>   a page near the end (keyset, no OFFSET)
    GET /api/v1/tasks?limit=50&after=<deep>                unfiltered, near the end
    GET /api/v1/tasks?namespace=..&name=..&status=complete&after=<deep>   combined filters, deep
    GET /api/v1/stats?period=24h                           every task and step of the period

Required: p95 <= 50 ms for every list, <= 500 ms for stats. The database's tasker tables are emptied first.
Run:

    python bench/api.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench
    python bench/api.py --tasks 20000 --requests 50
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from sqlalchemy import text

from tasker import Tasker, TaskRequest
from tasker.web import create_app

with warnings.catch_warnings():  # starlette asks for httpx2 at import; httpx is what is installed
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

NOOP = "tests.support.handlers:Noop"
TEMPLATES = [("shop", "order"), ("shop", "refund"), ("ops", "report"), ("ops", "cleanup")]
LIST_P95_MS = 50.0
STATS_P95_MS = 500.0

# Tasks: created over the last 24h, newest id = newest; status by id modulo 20.
_TASKS = """
INSERT INTO tasker_tasks (task_id, named_task_id, status, complete, requested_at, initiator, source_system, reason,
    bypass_steps, tags, context, identity_hash, trace_context, run_at, started_at, completed_at,
    created_at, updated_at)
SELECT i, (SELECT named_task_id FROM tasker_named_tasks ORDER BY named_task_id OFFSET (i % 4) LIMIT 1),
    s.status, s.status = 'complete', c, 'bench', 'bench', 'bench', '[]', '[]',
    jsonb_build_object('order_id', i, 'password', 'hunter2'), 'bench-' || i,
    jsonb_build_object('trace_id', lpad(to_hex(i), 32, '0')),
    CASE WHEN s.status = 'pending' THEN c END,
    CASE WHEN s.status <> 'pending' THEN c + interval '1 second' END,
    CASE WHEN s.status IN ('complete', 'error', 'cancelled') THEN c + (1 + i % 7) * interval '1 second' END,
    c, c
FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS i
CROSS JOIN LATERAL (SELECT now() - (CAST(:count AS bigint) - i) * (interval '86000 seconds' / CAST(:count AS bigint)) AS c) AS t
CROSS JOIN LATERAL (SELECT CASE
    WHEN i % 20 < 14 THEN 'complete' WHEN i % 20 < 16 THEN 'error' WHEN i % 20 < 18 THEN 'pending'
    WHEN i % 20 = 18 THEN 'cancelled' ELSE 'in_progress' END AS status) AS s
"""

# Three steps per task: s0 -> s1 -> s2; a failed task's s0 is in error, later steps pending.
_STEPS = """
INSERT INTO tasker_workflow_steps (workflow_step_id, task_id, named_step_id, name, status, retryable, retry_limit,
    in_process, processed, processed_at, attempts, started_at, last_attempted_at, inputs, results, skippable,
    unsatisfied_parents, created_at, updated_at)
SELECT t.task_id * 3 + n, t.task_id, (SELECT min(named_step_id) FROM tasker_named_steps), 's' || n, st.status,
    true, 3, false, st.status = 'complete',
    CASE WHEN st.status = 'complete' THEN t.started_at + (n + 1) * interval '1 second' END,
    CASE WHEN st.status IN ('complete', 'error') THEN 1 ELSE 0 END,
    CASE WHEN st.status IN ('complete', 'error') THEN t.started_at + n * interval '1 second'
        + (t.task_id % 13) * interval '10 milliseconds' END,
    CASE WHEN st.status IN ('complete', 'error') THEN t.started_at + (n + 1) * interval '1 second' END,
    '{}',
    CASE WHEN st.status = 'error' THEN jsonb_build_object('error', 'gateway said password=hunter2',
        'error_class', CASE WHEN t.task_id % 3 = 0 THEN 'TimeoutError' ELSE 'PermanentError' END)
        ELSE jsonb_build_object('ok', true) END,
    false, CASE WHEN n = 0 THEN 0 ELSE 1 END, t.created_at, t.created_at
FROM tasker_tasks t CROSS JOIN generate_series(0, 2) AS n
CROSS JOIN LATERAL (SELECT CASE
    WHEN t.status = 'complete' THEN 'complete'
    WHEN t.status = 'error' AND n = 0 THEN 'error'
    WHEN t.status = 'cancelled' THEN 'cancelled'
    WHEN t.status = 'in_progress' AND n = 0 THEN 'complete'
    ELSE 'pending' END AS status) AS st
WHERE t.task_id BETWEEN :first AND :last
"""

# Two transitions per step that ran (pending -> in_progress -> outcome), one for the others.
_TRANSITIONS = """
INSERT INTO tasker_workflow_step_transitions (workflow_step_id, to_state, from_state, metadata, sort_key,
    most_recent, created_at, updated_at)
SELECT s.workflow_step_id, x.to_state, x.from_state, x.meta, x.sort_key, x.last, x.at, x.at
FROM tasker_workflow_steps s
CROSS JOIN LATERAL (VALUES
    ('in_progress', 'pending', jsonb_build_object('attempt_number', 1), 1, s.attempts = 0, s.started_at),
    (s.status, 'in_progress', CASE WHEN s.status = 'error' THEN jsonb_build_object('error_class',
        s.results->>'error_class', 'error_message', s.results->>'error') ELSE '{}'::jsonb END, 2, true,
        s.last_attempted_at)
) AS x(to_state, from_state, meta, sort_key, last, at)
WHERE s.task_id BETWEEN :first AND :last AND s.attempts > 0
"""


def populate(app: Tasker, count: int, batch: int = 20_000) -> float:
    """Empty the tables, register the templates (one real task each), bulk-insert ``count`` tasks; seconds."""
    with app.db.transaction() as session:
        names = session.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE 'tasker_%'")
        ).scalars()
        session.execute(text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))
    for namespace, name in TEMPLATES:
        app.register_task_template(
            {"name": name, "namespace_name": namespace, "version": "1.0.0",
             "step_templates": [{"name": f"s{i}", "handler_class": NOOP,
                                 "depends_on_steps": [f"s{i - 1}"] if i else []} for i in range(3)]}
        )  # fmt: skip
        app.create_task(TaskRequest(name=name, namespace=namespace, version="1.0.0"))
    started = time.perf_counter()
    with app.db.transaction() as session:
        session.execute(text("DELETE FROM tasker_tasks"))  # keep the catalog rows the real tasks created
    for first in range(1, count + 1, batch):
        last = min(first + batch - 1, count)
        with app.db.transaction() as session:
            params = {"first": first, "last": last, "count": count}
            for statement in (_TASKS, _STEPS, _TRANSITIONS):
                session.execute(text(statement), params)
        print(f"  inserted tasks {first}-{last}", file=sys.stderr)
    with app.db.transaction() as session:
        session.execute(text("SELECT setval(pg_get_serial_sequence('tasker_tasks', 'task_id'), :n)"), {"n": count})
        session.execute(
            text("SELECT setval(pg_get_serial_sequence('tasker_workflow_steps', 'workflow_step_id'), :n)"),
            {"n": count * 3 + 3},
        )
    with app.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))
    return time.perf_counter() - started


def measure(client: TestClient, path: str, params: dict[str, Any], requests: int) -> tuple[float, float, int]:
    """p50 and p95 in milliseconds over ``requests`` calls (after 3 warm-ups), and the items in the last answer."""
    for _ in range(3):
        client.get(path, params=params).raise_for_status()
    times = []
    body: Any = None
    for _ in range(requests):
        start = time.perf_counter()
        response = client.get(path, params=params)
        times.append((time.perf_counter() - start) * 1000)
        response.raise_for_status()
        body = response.json()
    times.sort()
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    items = len(body["tasks"]) if "tasks" in body else sum(body["counts_by_status"].values())
    return statistics.median(times), p95, items


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support.handlers:Noop
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("TASKER_BENCH_DATABASE_URL"), required=False)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="Reuse the tasks already in the database.")
    args = parser.parse_args()
    if not args.database_url or not args.database_url.startswith("postgresql"):
        parser.error("--database-url (or TASKER_BENCH_DATABASE_URL) must name a PostgreSQL database")
    app = Tasker(args.database_url)
    app.migrate()
    if not args.keep:
        print(f"inserting {args.tasks:,} tasks ...", file=sys.stderr)
        print(f"inserted in {populate(app, args.tasks):.1f}s", file=sys.stderr)
    deep = 200  # "after" near the end: only the oldest few hundred tasks remain
    cases: list[tuple[str, str, dict[str, Any], float | None]] = [
        ("list status=error, first page", "/api/v1/tasks", {"status": "error", "limit": 50}, LIST_P95_MS),
        ("list status=error, deep page", "/api/v1/tasks", {"status": "error", "limit": 50, "after": deep * 5},
         LIST_P95_MS),
        ("list unfiltered, deep page", "/api/v1/tasks", {"limit": 50, "after": deep}, LIST_P95_MS),
        ("list namespace+name+status, deep", "/api/v1/tasks",
         {"namespace": "ops", "name": "report", "status": "complete", "limit": 50, "after": deep * 5}, LIST_P95_MS),
        ("list limit=500 (largest page)", "/api/v1/tasks", {"limit": 500}, None),
        ("stats period=24h", "/api/v1/stats", {"period": "24h"}, STATS_P95_MS),
    ]  # fmt: skip
    failed = False
    with TestClient(create_app(app)) as client:
        print(f"{'request':<36} {'p50 ms':>8} {'p95 ms':>8} {'limit':>7} {'items':>7}")
        for label, path, params, limit in cases:
            requests = args.requests if path.endswith("tasks") else max(args.requests // 10, 10)
            p50, p95, items = measure(client, path, params, requests)
            ok = limit is None or p95 <= limit
            failed |= not ok
            bound = "-" if limit is None else f"{limit:.0f}"
            print(f"{label:<36} {p50:8.1f} {p95:8.1f} {bound:>7} {items:7d}  {'ok' if ok else 'TOO SLOW'}")
    app.shutdown()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
