"""Dashboard page latency on a large PostgreSQL database: the overview, a filtered list and a 200-step task.

Fills the database like ``bench/api.py`` (N tasks, default 100,000, bulk-inserted over the last 24 hours with a
realistic mix of statuses), adds one real task of a 200-step template (20 levels of 10 steps, each depending on
two steps of the level before) run to completion, then renders pages through the real ASGI app in process
(FastAPI, Jinja, masking and SVG layout included):

    GET /                                   counts, 24 h throughput and rates, recent failures, workers
    GET /tasks?status=error&namespace=ops   a filtered list page (50 rows)
    GET /tasks?status=error&after=<deep>    the same filter, a page near the end (keyset)
    GET /tasks/<id>                         the 200-step task: DAG, step table, waterfall of 200 attempts

Required: p95 <= 200 ms for each. The overview reuses the day's statistics for ``STATS_TTL`` seconds; its
render with the statistics recomputed every time is printed too (for information). The database's tasker tables are emptied first. Run:

    python bench/dashboard.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench
    python bench/dashboard.py --tasks 20000 --requests 30
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench.api, tests.support.handlers:Noop

from bench.api import NOOP, populate
from tasker import Tasker, TaskRequest
from tasker.web import create_app
from tasker.web.pages.site import Site

with warnings.catch_warnings():  # starlette asks for httpx2 at import; httpx is what is installed
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

PAGE_P95_MS = 200.0
LEVELS, WIDTH = 20, 10


def wide_template() -> dict[str, Any]:
    """200 steps: level 0 has 10 roots, every later step depends on two steps of the level before."""
    steps = []
    for level in range(LEVELS):
        for i in range(WIDTH):
            parents = [f"l{level - 1}_s{i}", f"l{level - 1}_s{(i + 1) % WIDTH}"] if level else []
            steps.append({"name": f"l{level}_s{i}", "handler_class": NOOP, "depends_on_steps": parents})
    return {"name": "wide_dag", "namespace_name": "bench", "version": "1.0.0", "step_templates": steps}


def measure(client: TestClient, path: str, requests: int) -> tuple[float, float, float, int]:
    """Over ``requests`` renders (after 3 warm-ups): p50 and p95 wall time and p50 CPU time of this process
    (the app, in its threads), in milliseconds, and the page's size in bytes.

    The CPU time shows the cost of a page apart from waiting for a busy machine's cores (or the database).
    """
    for _ in range(3):
        client.get(path).raise_for_status()
    times, cpu = [], []
    size = 0
    for _ in range(requests):
        start, start_cpu = time.perf_counter(), time.process_time()
        response = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
        response.raise_for_status()
        size = len(response.content)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.95))], statistics.median(cpu), size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("TASKER_BENCH_DATABASE_URL"))
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--keep", action="store_true", help="Reuse the tasks already in the database.")
    args = parser.parse_args()
    if not args.database_url or not args.database_url.startswith("postgresql"):
        parser.error("--database-url (or TASKER_BENCH_DATABASE_URL) must name a PostgreSQL database")
    app = Tasker(args.database_url)
    app.migrate()
    app.register_task_template(wide_template())
    if args.keep:
        wide = app.list_tasks(namespace="bench", name="wide_dag", limit=1)[0].task_id
    else:
        print(f"inserting {args.tasks:,} tasks ...", file=sys.stderr)
        print(f"inserted in {populate(app, args.tasks):.1f}s", file=sys.stderr)
        wide = app.create_task(TaskRequest(name="wide_dag", namespace="bench", version="1.0.0")).task_id
        started = time.perf_counter()
        assert app.run_until_done(wide, timeout=600) == "complete"
        print(f"ran the 200-step task in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    cases = [
        ("overview /", "/"),
        ("list status=error&namespace=ops", "/tasks?status=error&namespace=ops"),
        ("list status=error, deep page", f"/tasks?status=error&after={args.tasks // 100}"),
        ("task page, 200-step DAG", f"/tasks/{wide}"),
    ]
    failed = False
    uncached = create_app(app)
    uncached.state.tasker_pages = Site(stats_ttl=0)  # every render recomputes the day's statistics
    with TestClient(create_app(app)) as client, TestClient(uncached) as cold:
        print(f"{'page':<40} {'p50 ms':>8} {'p95 ms':>8} {'cpu ms':>8} {'limit':>7} {'KiB':>7}")
        for label, path in cases:
            p50, p95, cpu, size = measure(client, path, args.requests)
            ok = p95 <= PAGE_P95_MS
            failed |= not ok
            verdict = "ok" if ok else "TOO SLOW"
            print(f"{label:<40} {p50:8.1f} {p95:8.1f} {cpu:8.1f} {PAGE_P95_MS:7.0f} {size / 1024:7.1f}  {verdict}")
        p50, p95, cpu, size = measure(cold, "/", max(args.requests // 4, 5))
        print(
            f"{'overview, statistics recomputed (info)':<40} {p50:8.1f} {p95:8.1f} {cpu:8.1f} {'-':>7} {size / 1024:7.1f}"
        )
    app.shutdown()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
