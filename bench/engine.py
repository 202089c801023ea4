"""Engine throughput: no-op steps on a SQLite file, chain and diamond of N steps, against raw sqlite3.

The baseline does the minimum durable work per step with the stdlib driver: insert the step row, then two
transitions (pending->in_progress, in_progress->complete), each a transition-row insert plus a status update,
committed per transition, in WAL mode with the same pragmas as the engine. Run:

    python bench/engine.py            # N = 10, 100, 1000
    python bench/engine.py --sizes 10 100
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tasker import Tasker, TaskRequest

NOOP = "tests.support.handlers:Noop"


def shape(kind: str, n: int) -> dict[str, list[str]]:
    """Step name -> parents: a chain, or a diamond (root -> n-2 parallel steps -> merge)."""
    if kind == "chain":
        return {f"s{i}": ([f"s{i - 1}"] if i else []) for i in range(n)}
    middle = [f"m{i}" for i in range(n - 2)]
    return {"root": [], **{m: ["root"] for m in middle}, "merge": middle}


def template(kind: str, n: int) -> dict[str, Any]:
    return {
        "name": f"{kind}_{n}",
        "version": "1.0.0",
        "step_templates": [
            {"name": name, "handler_class": NOOP, "depends_on_steps": parents}
            for name, parents in shape(kind, n).items()
        ],
    }


def engine_seconds(kind: str, n: int, workdir: Path, config: dict[str, Any] | None = None) -> float:
    """Wall time to create and run one task of n no-op steps (schema already migrated)."""
    app = Tasker(f"sqlite:///{workdir / f'engine_{kind}_{n}_{time.monotonic_ns()}.db'}", config=config or {})
    app.migrate()
    app.register_task_template(template(kind, n))
    request = TaskRequest(name=f"{kind}_{n}", version="1.0.0", context={"order_id": 1})
    app.run_until_done(app.create_task(request).task_id)  # warm caches (catalog ids, statements)
    start = time.perf_counter()
    task = app.create_task(request)
    status = app.run_until_done(task.task_id, timeout=600)
    elapsed = time.perf_counter() - start
    app.shutdown()
    assert status == "complete", status
    return elapsed


def baseline_seconds(n: int, workdir: Path, synchronous: str = "FULL") -> float:
    """Raw sqlite3: per step one insert and two committed transitions."""
    path = workdir / f"baseline_{n}_{time.monotonic_ns()}.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("CREATE TABLE steps (id INTEGER PRIMARY KEY, task_id INTEGER, name TEXT, status TEXT)")
    conn.execute(
        "CREATE TABLE transitions (id INTEGER PRIMARY KEY, step_id INTEGER, from_state TEXT, to_state TEXT,"
        " sort_key INTEGER, most_recent INTEGER)"
    )
    start = time.perf_counter()
    for i in range(n):
        conn.execute("BEGIN")
        step_id = conn.execute(
            "INSERT INTO steps (task_id, name, status) VALUES (1, ?, 'pending')", (f"s{i}",)
        ).lastrowid
        conn.execute("COMMIT")
        for sort_key, (src, dst) in enumerate((("pending", "in_progress"), ("in_progress", "complete")), 1):
            conn.execute("BEGIN")
            conn.execute(
                "INSERT INTO transitions (step_id, from_state, to_state, sort_key, most_recent)"
                " VALUES (?, ?, ?, ?, 1)",
                (step_id, src, dst, sort_key),
            )
            conn.execute("UPDATE steps SET status = ? WHERE id = ?", (dst, step_id))
            conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support.handlers:Noop
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        print(f"{'shape':<8} {'N':>5} {'engine steps/s':>15} {'baseline steps/s':>17} {'ratio':>6} {'ms/step':>8}")
        per_step: dict[tuple[str, int], float] = {}
        for kind in ("chain", "diamond"):
            for n in args.sizes:
                # best of three: fsync latency on shared disks is noisy
                engine = min(engine_seconds(kind, n, workdir) for _ in range(3))
                base = min(baseline_seconds(n, workdir) for _ in range(3))
                ratio = engine / base
                per_step[(kind, n)] = engine / n
                print(f"{kind:<8} {n:>5} {n / engine:>15.0f} {n / base:>17.0f} {ratio:>6.2f} {engine / n * 1000:>8.3f}")
                if n == 1000 and ratio > 8:
                    ok = False
        for kind in ("chain", "diamond"):
            if (kind, 100) in per_step and (kind, 1000) in per_step:
                growth = per_step[(kind, 1000)] / per_step[(kind, 100)]
                print(f"{kind}: per-step time at N=1000 / N=100 = {growth:.2f}")
                ok = ok and growth <= 1.5
    print("PASS" if ok else "FAIL: ratio > 8 at N=1000 or per-step growth > 1.5")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
