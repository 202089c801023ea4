"""Scale-out: throughput of IO-bound steps (each sleeps 50 ms) with 1, 2 and 4 worker processes, concurrency 2 each.

The workload is the same for every worker count: ``--tasks`` chains of ``--steps`` steps on PostgreSQL, created
once all workers are up. Throughput is steps / (last step end - first step start), read from the steps' own
timestamps in the database, so worker start-up and task creation are not counted. Exits 1 unless 2 workers reach
1.7x the throughput of one.

    python bench/scaleout.py                      # Celery workers (prefork -c 2) on Redis
    python bench/scaleout.py --executor db        # database workers (tasker.executors.Worker, 2 threads)
    python bench/scaleout.py --workers 1 2 4 --tasks 48 --steps 8

The database (default ``postgresql+psycopg://postgres@127.0.0.1:5432/tasker_bench``, created when missing) is
emptied before each run.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from tasker import StepHandler, StepSequence, StepView, Tasker, TaskRequest, TaskView
from tasker.models import WorkflowStep

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DB = "postgresql+psycopg://postgres@127.0.0.1:5432/tasker_bench"
DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
REQUIRED_SPEEDUP = 1.7
STEP_SECONDS = 0.05


class Sleep(StepHandler):
    """An IO-bound step: sleeps ``seconds`` (default 50 ms)."""

    def process(self, task: TaskView, sequence: StepSequence, step: StepView) -> Any:
        time.sleep(float(self.config.get("seconds", STEP_SECONDS)))
        return {"slept": True}


def chain_template(steps: int) -> dict[str, Any]:
    return {
        "name": "io_chain",
        "version": "1.0.0",
        "step_templates": [
            {"name": f"s{i}", "handler_class": "bench.scaleout:Sleep", "depends_on_steps": [f"s{i - 1}"] if i else []}
            for i in range(steps)
        ],
    }


#: Worker processes read their settings from the environment the benchmark gives them.
CONFIG: dict[str, Any] = {
    "backoff": {"max_backoff_seconds": 0},
    "execution": {"max_concurrent_steps": 1},
    "celery": {"sweep_interval_seconds": 5},
}


def make_worker_app() -> Tasker:
    """The app of a worker process (Celery's factory, or the database worker's)."""
    app = Tasker(os.environ["TASKER_BENCH_DATABASE_URL"], config=CONFIG)
    app.register_task_template(chain_template(int(os.environ["TASKER_BENCH_STEPS"])))
    return app


def _celery_app() -> Any:
    from tasker.executors.celery import create_celery_app

    return create_celery_app(
        make_worker_app,
        broker_url=os.environ.get("TASKER_BENCH_BROKER_URL", DEFAULT_BROKER),
        queue=os.environ.get("TASKER_BENCH_QUEUE", "tasker-bench"),
    )


def __getattr__(name: str) -> Any:  # ``celery -A bench.scaleout:celery_app`` (built on first access only)
    if name == "celery_app":
        value = globals()["celery_app"] = _celery_app()
        return value
    raise AttributeError(name)


def run_db_worker() -> None:
    """A database worker process: 2 threads claiming tasks until SIGTERM."""
    from tasker.executors import Worker

    app = make_worker_app()
    worker = Worker(app, concurrency=2, poll_interval=0.02, recovery_interval=1.0)
    worker.install_signal_handlers()
    print("ready", flush=True)
    worker.run()
    app.shutdown()


# -- the benchmark ---------------------------------------------------------------------------------


def ensure_database(url: str) -> None:
    """Create the benchmark database when missing, and migrate it."""
    parsed = make_url(url)
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": parsed.database}).first():
            conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()
    Tasker(url).migrate()


def truncate(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        names = conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'tasker_%'")
        ).scalars()
        conn.execute(text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))
    engine.dispose()


def start_workers(kind: str, count: int, env: dict[str, str], logdir: Path) -> list[subprocess.Popen[bytes]]:
    procs = []
    for index in range(count):
        log = logdir / f"{kind}-{count}-{index}.log"
        if kind == "celery":
            argv = [
                sys.executable, "-m", "celery", "-A", "bench.scaleout:celery_app", "worker", "--pool=prefork",
                "-c", "2", "-Q", env["TASKER_BENCH_QUEUE"], "--without-gossip", "--without-mingle",
                "--without-heartbeat", "-n", f"bench{index}-{uuid.uuid4().hex[:6]}@%h", "-l", "INFO",
            ]  # fmt: skip
        else:
            argv = [sys.executable, "-m", "bench.scaleout", "--db-worker"]
        with open(log, "wb") as out:
            procs.append(
                subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            )
    deadline = time.monotonic() + 60
    for index, proc in enumerate(procs):
        log = logdir / f"{kind}-{count}-{index}.log"
        while True:
            output = log.read_text(errors="replace")
            if (kind == "celery" and " ready." in output and output.count("tasker app built") >= 2) or (
                kind == "db" and output.startswith("ready")
            ):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"worker {index} did not start:\n{output}")
            time.sleep(0.05)
    return procs


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def producer(kind: str, url: str, steps: int, env: dict[str, str]) -> tuple[Tasker, Any]:
    if kind == "celery":
        from tasker.executors.celery import CeleryExecutor, create_celery_app

        celery_app = create_celery_app(
            lambda: app, broker_url=env["TASKER_BENCH_BROKER_URL"], queue=env["TASKER_BENCH_QUEUE"]
        )
        executor = CeleryExecutor(celery_app, queue=env["TASKER_BENCH_QUEUE"])
        app = Tasker(url, config=CONFIG, executor=executor)
        executor.bind(app)
    else:
        celery_app = None
        app = Tasker(url, config=CONFIG)
    app.register_task_template(chain_template(steps))
    return app, celery_app


def measure(kind: str, workers: int, args: argparse.Namespace, logdir: Path) -> float:
    """Steps per second with ``workers`` worker processes."""
    truncate(args.database_url)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "TASKER_BENCH_DATABASE_URL": args.database_url,
        "TASKER_BENCH_STEPS": str(args.steps),
        "TASKER_BENCH_BROKER_URL": args.broker_url,
        "TASKER_BENCH_QUEUE": f"tasker-bench-{uuid.uuid4().hex[:8]}",
    }
    procs = start_workers(kind, workers, env, logdir)
    app, celery_app = producer(kind, args.database_url, args.steps, env)
    try:
        ids = [
            app.create_task(TaskRequest(name="io_chain", version="1.0.0", context={"n": n})).task_id
            for n in range(args.tasks)
        ]
        deadline = time.monotonic() + args.timeout
        while not all(app.get_task(i).status == "complete" for i in ids):
            if time.monotonic() > deadline:
                raise SystemExit(f"{workers} worker(s): tasks not complete after {args.timeout}s (logs in {logdir})")
            time.sleep(0.2)
        with app.db.read() as session:
            count, first, last = session.execute(
                select(func.count(), func.min(WorkflowStep.started_at), func.max(WorkflowStep.processed_at))
            ).one()
        return float(count) / (last - first).total_seconds()
    finally:
        app.shutdown()
        if celery_app is not None:
            celery_app.close()
        stop_workers(procs)
        if kind == "celery":
            import redis

            client = redis.Redis.from_url(args.broker_url)
            for key in client.scan_iter(match=f"*{env['TASKER_BENCH_QUEUE']}*"):
                client.delete(key)
            client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--executor", choices=("celery", "db"), default="celery")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--tasks", type=int, default=48)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=180)
    parser.add_argument("--database-url", default=os.environ.get("TASKER_BENCH_DATABASE_URL", DEFAULT_DB))
    parser.add_argument("--broker-url", default=os.environ.get("TASKER_BENCH_BROKER_URL", DEFAULT_BROKER))
    parser.add_argument("--db-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if str(REPO) not in sys.path:  # ``python bench/scaleout.py``: the handler is bench.scaleout:Sleep
        sys.path.insert(0, str(REPO))
    if args.db_worker:
        run_db_worker()
        return 0
    ensure_database(args.database_url)
    logdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"tasker-scaleout-{os.getpid()}"
    logdir.mkdir(parents=True, exist_ok=True)
    total = args.tasks * args.steps
    print(f"{args.executor} workers, concurrency 2 each; {args.tasks} chains x {args.steps} steps of "
          f"{STEP_SECONDS * 1000:.0f} ms = {total} steps (logs: {logdir})")  # fmt: skip
    rates = {workers: measure(args.executor, workers, args, logdir) for workers in args.workers}
    base = rates[args.workers[0]]
    print(f"\n| workers | steps/s | speedup vs {args.workers[0]} |\n| ---: | ---: | ---: |")
    for workers, rate in rates.items():
        print(f"| {workers} | {rate:.1f} | {rate / base:.2f}x |")
    if 1 in rates and 2 in rates and rates[2] < REQUIRED_SPEEDUP * rates[1]:
        print(f"\nFAIL: 2 workers reached {rates[2] / rates[1]:.2f}x one worker (need {REQUIRED_SPEEDUP}x)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
