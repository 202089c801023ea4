"""Engine cost per step: chain and diamond of N no-op steps, and many small tasks, against the durable floor.

For each configuration - chain and diamond at N = 100, 1,000 and 10,000, and 1,000 tasks of 3 steps (a chain
a -> b -> c, created and run one after another) - a fresh subprocess creates the app, runs one warm-up task of the
measured template (what a template costs once - catalog rows, metric series - is not a per-step cost), then creates
and runs the measured work, and reports:

- wall ms per step and **CPU ms per step** (``time.process_time``: every thread of the process; robust to a
  loaded machine and to disk noise, so prefer it when the load average is high),
- SQL statements and transactions per step, counted with SQLAlchemy event listeners on the app's engine
  (``BEGIN``/``COMMIT`` are not statements; ``write tx`` are commits, ``read tx`` the other transactions),
- peak RSS of that subprocess (so it is the configuration's own),
- the ratio of wall time to the durable floor measured in the same run: raw stdlib ``sqlite3`` on a WAL file with
  ``synchronous=FULL`` doing per step one insert and two transitions, each transition an audit-row insert plus a
  status update, with 3 commits per step; on PostgreSQL the same rows with psycopg and one commit per step.

``--telemetry`` adds the same configurations with a TelemetrySubscriber (in-memory exporter behind a
BatchSpanProcessor) on top of the metrics, and prints the on/off ratio. ``--peers PYTHON`` runs the DBOS harness of
the peer benchmarks (``--peers-dir``, see its README for the venv) on the same shapes with the same durability and
prints DBOS / tasker. Run:

    python bench/engine.py                      # SQLite, everything
    python bench/engine.py --quick              # N = 100 and 1,000, 200 tasks
    python bench/engine.py --telemetry --peers ~/.cache/peers/dbos/bin/python
    python bench/engine.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench
    python bench/engine.py --sizes 1000 --tasks 0 --max-concurrent-steps 16   # a wider window per pass
    python bench/engine.py --sizes 1000 --tasks 0 --group-commit-seconds 0    # no group commit
    python bench/engine.py --quick --rounds 3   # best of 3 interleaved runs each, on a noisy machine
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.support.handlers:Noop

from tasker import Tasker, TaskRequest  # noqa: E402

NOOP = "tests.support.handlers:Noop"
SMALL_TASK_STEPS = 3


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
    """Wall time to create and run one task of n no-op steps in this process, after a warm-up task."""
    app = Tasker(f"sqlite:///{workdir / f'engine_{kind}_{n}_{time.monotonic_ns()}.db'}", config=config or {})
    app.migrate()
    app.register_task_template(template(kind, n))
    request = TaskRequest(name=f"{kind}_{n}", version="1.0.0", context={"order_id": 1})
    app.run_until_done(app.create_task(request).task_id, timeout=600)  # warm caches (catalog ids, statements)
    start = time.perf_counter()
    status = app.run_until_done(app.create_task(request).task_id, timeout=600)
    elapsed = time.perf_counter() - start
    app.shutdown()
    assert status == "complete", status
    return elapsed


# -- one configuration, in its own process -------------------------------------------------------------------


class SqlCounter:
    """Statements and transactions executed on an engine, from SQLAlchemy's event hooks."""

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self.statements = self.begins = self.commits = 0
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "begin", self._begin)
        event.listen(engine, "commit", self._commit)

    def _statement(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement[:32].lstrip()[:6].upper().startswith(("BEGIN", "COMMIT", "ROLLBA")):  # no copy of the SQL
            self.statements += 1

    def _begin(self, _conn: Any) -> None:
        self.begins += 1

    def _commit(self, _conn: Any) -> None:
        self.commits += 1

    def snapshot(self) -> tuple[int, int, int]:
        return self.statements, self.begins, self.commits


def _telemetry(app: Tasker) -> Any:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from tasker.telemetry import TelemetrySubscriber

    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(InMemorySpanExporter(), max_queue_size=100_000))
    app.subscribe(TelemetrySubscriber(tracer_provider=provider))
    return provider


def measure(kind: str, n: int, url: str, telemetry: bool, execution: dict[str, Any] | None = None) -> dict[str, Any]:
    """Create and run the work of one configuration on a migrated database; the figures as a dict.

    ``kind`` is ``chain`` or ``diamond`` (one task of n steps) or ``tasks`` (n tasks of 3 steps); ``execution``
    overrides the app's ``execution`` settings (None: the defaults).
    """
    app = Tasker(url, config={"execution": execution} if execution else {})
    app.migrate()
    provider = _telemetry(app) if telemetry else None
    measured = template("chain" if kind == "tasks" else kind, SMALL_TASK_STEPS if kind == "tasks" else n)
    app.register_task_template(measured)
    # Steady state: one task of the measured template first, so that what a template costs once (its catalog rows,
    # its metric series, compiled statements, the thread pool) is not counted per step.
    warm = app.create_task(TaskRequest(name=measured["name"], version="1.0.0", context={"order_id": 0}))
    app.run_until_done(warm.task_id, timeout=3600)
    request = TaskRequest(name=measured["name"], version="1.0.0", context={"order_id": 1})
    counter = SqlCounter(app.db.engine)
    tasks, steps = (n, n * SMALL_TASK_STEPS) if kind == "tasks" else (1, n)
    cpu, start = time.process_time(), time.perf_counter()
    for _ in range(tasks):
        status = app.run_until_done(app.create_task(request).task_id, timeout=3600)
        assert status == "complete", status
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    statements, begins, commits = counter.snapshot()
    if provider is not None:
        provider.force_flush()
        provider.shutdown()
    app.shutdown()
    return {
        "kind": kind, "n": n, "steps": steps, "tasks": tasks, "telemetry": telemetry,
        "wall": wall, "cpu": cpu, "statements": statements, "write_tx": commits, "read_tx": begins - commits,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }  # fmt: skip


# -- the durable floor ---------------------------------------------------------------------------------------


def sqlite_floor(steps: int, workdir: Path) -> tuple[float, float]:
    """Raw sqlite3, WAL + synchronous=FULL: per step an insert and two transitions, audit rows, 3 commits."""
    path = workdir / f"floor_{steps}_{time.monotonic_ns()}.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    for ddl in _FLOOR_SCHEMA:
        conn.execute(ddl)
    cpu, start = time.process_time(), time.perf_counter()
    for i in range(steps):
        conn.execute("BEGIN")
        step_id = conn.execute("INSERT INTO steps (task_id, name, status) VALUES (1, ?, 'pending')", (f"s{i}",))
        step = step_id.lastrowid
        conn.execute(_FLOOR_AUDIT.replace("%s", "?"), (step, None, "pending", 0))
        conn.execute("COMMIT")
        for sort_key, (src, dst) in enumerate((("pending", "in_progress"), ("in_progress", "complete")), 1):
            conn.execute("BEGIN")
            conn.execute(_FLOOR_AUDIT.replace("%s", "?"), (step, src, dst, sort_key))
            conn.execute("UPDATE steps SET status = ? WHERE id = ?", (dst, step))
            conn.execute("COMMIT")
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    conn.close()
    return elapsed, cpu


def postgres_floor(steps: int, url: str) -> tuple[float, float]:
    """psycopg, one commit per step: the step's insert, two status updates and three audit rows."""
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    schema = f"bench_floor_{os.getpid()}_{time.monotonic_ns()}"
    with psycopg.connect(dsn) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"SET search_path TO {schema}")
        for ddl in _FLOOR_SCHEMA:
            conn.execute(ddl.replace("INTEGER PRIMARY KEY", "BIGSERIAL PRIMARY KEY"))
        conn.commit()
        cpu, start = time.process_time(), time.perf_counter()
        for i in range(steps):
            row = conn.execute(
                "INSERT INTO steps (task_id, name, status) VALUES (1, %s, 'pending') RETURNING id", (f"s{i}",)
            ).fetchone()
            assert row is not None
            conn.execute(_FLOOR_AUDIT, (row[0], None, "pending", 0))
            for sort_key, (src, dst) in enumerate((("pending", "in_progress"), ("in_progress", "complete")), 1):
                conn.execute(_FLOOR_AUDIT, (row[0], src, dst, sort_key))
                conn.execute("UPDATE steps SET status = %s WHERE id = %s", (dst, row[0]))
            conn.commit()
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
        conn.commit()
    return elapsed, cpu


_FLOOR_SCHEMA = (
    "CREATE TABLE steps (id INTEGER PRIMARY KEY, task_id INTEGER, name TEXT, status TEXT)",
    "CREATE TABLE transitions (id INTEGER PRIMARY KEY, step_id INTEGER, from_state TEXT, to_state TEXT,"
    " sort_key INTEGER, most_recent INTEGER)",
)
_FLOOR_AUDIT = (
    "INSERT INTO transitions (step_id, from_state, to_state, sort_key, most_recent) VALUES (%s, %s, %s, %s, 1)"
)


# -- the driver ------------------------------------------------------------------------------------------------


@dataclass
class Config:
    kind: str
    n: int
    telemetry: bool = False

    @property
    def label(self) -> str:
        name = f"{self.n} tasks x {SMALL_TASK_STEPS}" if self.kind == "tasks" else f"{self.kind} N={self.n}"
        return name + (" +otel" if self.telemetry else "")


class Store:
    """A fresh database per configuration: a SQLite file, or a PostgreSQL schema dropped afterwards."""

    def __init__(self, url: str | None, workdir: Path) -> None:
        self.url, self.workdir = url, workdir

    @property
    def postgres(self) -> bool:
        return self.url is not None

    def fresh(self, name: str) -> tuple[str, str | None]:
        """A database URL for one configuration, and the PostgreSQL schema to drop afterwards."""
        if self.url is None:
            return f"sqlite:///{self.workdir / f'{name}_{time.monotonic_ns()}.db'}", None
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        schema = f"bench_{name}_{os.getpid()}_{time.monotonic_ns()}".lower()
        engine = create_engine(self.url)
        with engine.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        engine.dispose()
        url = make_url(self.url).update_query_dict({"options": f"-csearch_path={schema}"})
        return url.render_as_string(hide_password=False), schema

    def drop(self, schema: str | None) -> None:
        if schema is None or self.url is None:
            return
        from sqlalchemy import create_engine, text

        engine = create_engine(self.url)
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()

    def floor(self, steps: int) -> tuple[float, float]:
        """Wall and CPU seconds of the durable floor for ``steps`` steps."""
        return postgres_floor(steps, self.url) if self.url is not None else sqlite_floor(steps, self.workdir)


def run_config(config: Config, store: Store, execution: dict[str, Any]) -> dict[str, Any]:
    """Measure one configuration in a fresh subprocess (``execution``: the app's execution overrides)."""
    url, schema = store.fresh(config.kind)
    command = [sys.executable, __file__, "--measure", config.kind, str(config.n), "--url", url]
    command += ["--execution", json.dumps(execution)] if execution else []
    try:
        out = subprocess.run(
            command + (["--with-telemetry"] if config.telemetry else []),
            check=True, capture_output=True, text=True, cwd=ROOT,
        )  # fmt: skip
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"{config.label} failed:\n{exc.stderr}") from exc
    finally:
        store.drop(schema)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run_peer(python: str, peers_dir: Path, kind: str, n: int, database_url: str | None) -> dict[str, Any] | None:
    """The DBOS harness under cpu_wrap.py (WAL system database on SQLite), one timed run after a warm-up."""
    command = [python, "cpu_wrap.py", "dbos_bench.py", "--shape", kind, "--n", str(n), "--repeats", "1"]
    env = dict(os.environ, DBOS_SQLITE_WAL="1")
    if database_url is not None:
        command += ["--db-url", database_url.replace("postgresql+psycopg://", "postgresql://")]
    try:
        out = subprocess.run(command, check=True, capture_output=True, text=True, cwd=peers_dir, env=env, timeout=1800)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        print(f"  dbos {kind} N={n} failed: {exc}", file=sys.stderr)
        return None
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def print_row(result: dict[str, Any], label: str) -> None:
    steps = result["steps"]
    per = 1000 / steps
    extra = f"{result['tasks'] / result['wall']:>8.0f} tasks/s" if result["kind"] == "tasks" else ""
    print(
        f"{label:<24} {result['wall'] * per:>8.3f} {result['cpu'] * per:>8.3f} {result['statements'] / steps:>7.2f}"
        f" {result['write_tx'] / steps:>6.2f} {result['read_tx'] / steps:>6.2f} {result['rss_mb']:>7.0f}"
        f" {result['floor'] * per:>8.3f} {result['floor_cpu'] * per:>8.3f} {result['wall'] / result['floor']:>6.2f}{extra}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10_000])
    parser.add_argument("--tasks", type=int, default=1000, help="how many 3-step tasks (0: skip)")
    parser.add_argument("--quick", action="store_true", help="N = 100 and 1,000, 200 tasks")
    parser.add_argument("--database-url", help="PostgreSQL URL (a schema per configuration); default SQLite")
    parser.add_argument("--telemetry", action="store_true", help="also run with telemetry + metrics")
    parser.add_argument("--peers", metavar="PYTHON", help="the python of a venv with dbos installed")
    parser.add_argument("--peers-dir", type=Path, default=ROOT.parent / "shared" / "bench" / "peers")
    parser.add_argument("--peer-sizes", type=int, nargs="+", default=[1000])
    parser.add_argument(
        "--max-concurrent-steps", type=int, metavar="N", help="the app's execution.max_concurrent_steps (default 12)"
    )
    parser.add_argument(
        "--group-commit-seconds", type=float, metavar="S", help="the app's execution.group_commit_seconds (0.002)"
    )
    parser.add_argument(
        "--rounds", type=int, default=1, metavar="R",
        help="run every configuration R times, interleaved, and keep each one's run with the least CPU (and the"
        " least floor): for a noisy machine",
    )  # fmt: skip
    parser.add_argument("--measure", nargs=2, metavar=("KIND", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--with-telemetry", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--execution", type=json.loads, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        kind, n = args.measure[0], int(args.measure[1])
        print(json.dumps(measure(kind, n, args.url, args.with_telemetry, args.execution)))
        return 0
    overrides = {"max_concurrent_steps": args.max_concurrent_steps, "group_commit_seconds": args.group_commit_seconds}
    execution = {key: value for key, value in overrides.items() if value is not None}
    if args.quick:
        args.sizes, args.tasks = [s for s in args.sizes if s <= 1000], min(args.tasks, 200)
    configs = [Config(kind, n) for kind in ("chain", "diamond") for n in args.sizes]
    if args.tasks:
        configs.append(Config("tasks", args.tasks))
    if args.telemetry:
        configs += [Config(c.kind, c.n, telemetry=True) for c in configs if c.n == 1000 or c.kind == "tasks"]
    backend = (
        "PostgreSQL (psycopg, 1 commit per step)" if args.database_url else "SQLite WAL + FULL (3 commits per step)"
    )
    print(f"load average at start: {load_average()}  (CPU ms/step is robust to load; wall is not)")
    print(f"floor: raw {backend} + audit rows; execution settings: {execution or 'defaults'}")
    if args.rounds > 1:
        print(f"best of {args.rounds} interleaved rounds per configuration (least CPU; floor: least of each)")
    print(
        f"{'configuration':<24} {'wall ms':>8} {'cpu ms':>8} {'stmts':>7} {'wr tx':>6} {'rd tx':>6} {'RSS MB':>7}"
        f" {'floor ms':>8} {'fl cpu':>8} {'ratio':>6}   (per step; ratio = wall / floor wall)"
    )
    results: dict[tuple[str, int, bool], dict[str, Any]] = {}
    runs: dict[tuple[str, int, bool], list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(args.database_url, Path(tmp))
        for round_ in range(args.rounds):
            for config in configs:
                result = run_config(config, store, execution)
                result["floor"], result["floor_cpu"] = store.floor(result["steps"])  # right after, interleaved
                key = (config.kind, config.n, config.telemetry)
                runs.setdefault(key, []).append(result)
                if round_ == args.rounds - 1:  # the run with the least CPU, beside the least floor of all rounds
                    done = runs[key]
                    floor, floor_cpu = min(r["floor"] for r in done), min(r["floor_cpu"] for r in done)
                    results[key] = {**min(done, key=lambda r: r["cpu"]), "floor": floor, "floor_cpu": floor_cpu}
                    print_row(results[key], config.label)
    print(f"load average at end: {load_average()}")
    for kind in ("chain", "diamond"):
        small, large = results.get((kind, min(args.sizes), False)), results.get((kind, max(args.sizes), False))
        if small and large and small is not large:
            growth = (large["cpu"] / large["steps"]) / (small["cpu"] / small["steps"])
            print(f"{kind}: CPU per step at N={large['n']} / N={small['n']} = {growth:.2f}")
    for (kind, n, traced), result in results.items():
        plain = results.get((kind, n, False))
        if traced and plain:
            print(
                f"{Config(kind, n).label}: telemetry + metrics / metrics: wall {result['wall'] / plain['wall']:.2f},"
                f" CPU {result['cpu'] / plain['cpu']:.2f}"
            )
    if args.peers:
        print(f"DBOS side by side ({'PostgreSQL' if args.database_url else 'SQLite WAL system database'})")
        for kind in ("chain", "diamond"):
            for n in args.peer_sizes:
                peer = run_peer(args.peers, args.peers_dir, kind, n, args.database_url)
                ours = results.get((kind, n, False))
                if peer is None or ours is None:
                    continue
                wall, cpu = peer["runs"][0], peer["cpu_runs"][0]
                print(
                    f"  dbos {peer.get('version', '?')} {kind} N={n}: wall {wall / n * 1000:.3f} ms/step,"
                    f" CPU {cpu / n * 1000:.3f} ms/step; DBOS / tasker: wall {wall / ours['wall']:.2f},"
                    f" CPU {cpu / ours['cpu']:.2f}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
