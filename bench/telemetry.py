"""Tracing overhead: the 1000-step diamond (root -> 998 parallel no-op steps -> merge) with telemetry off and on.

"On" is a TelemetrySubscriber writing to an in-memory exporter through a BatchSpanProcessor (export cost left
out, the engine-side cost in). Each configuration runs best of 3, interleaved, in the same process, on a
fresh SQLite file per run after a warm-up task. Exits non-zero when on/off > 1.5. Run:

    python bench/telemetry.py              # N = 1000
    python bench/telemetry.py --steps 200 --rounds 5
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench.engine, tests.support.handlers:Noop

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bench.engine import template
from tasker import Tasker, TaskRequest
from tasker.telemetry import TelemetrySubscriber

LIMIT = 1.5


def run_seconds(n: int, workdir: Path, traced: bool) -> tuple[float, int]:
    """Wall time to create and run one n-step diamond, and the number of spans exported for it."""
    app = Tasker(f"sqlite:///{workdir / f'telemetry_{n}_{time.monotonic_ns()}.db'}")
    app.migrate()
    app.register_task_template(template("diamond", n))
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=4 * n + 64))
    if traced:
        app.subscribe(TelemetrySubscriber(tracer_provider=provider))
    request = TaskRequest(name=f"diamond_{n}", version="1.0.0", context={"order_id": 1})
    app.run_until_done(app.create_task(request).task_id, timeout=600)  # warm caches (catalog ids, statements)
    provider.force_flush()
    exporter.clear()
    start = time.perf_counter()
    task = app.create_task(request)
    status = app.run_until_done(task.task_id, timeout=600)
    elapsed = time.perf_counter() - start
    provider.force_flush()
    spans = len(exporter.get_finished_spans())
    app.shutdown()
    provider.shutdown()
    assert status == "complete", status
    return elapsed, spans


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    n = args.steps
    off: list[float] = []
    on: list[float] = []
    spans = 0
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for _ in range(args.rounds):  # interleaved, so drift (disk, CPU) hits both alike
            off.append(run_seconds(n, workdir, traced=False)[0])
            seconds, spans = run_seconds(n, workdir, traced=True)
            on.append(seconds)
    best_off, best_on = min(off), min(on)
    ratio = best_on / best_off
    print(f"{n}-step diamond, best of {args.rounds} (spans per traced task: {spans})")
    print(f"{'telemetry':<10} {'seconds':>8} {'ms/step':>8}")
    print(f"{'off':<10} {best_off:>8.3f} {best_off / n * 1000:>8.3f}")
    print(f"{'on':<10} {best_on:>8.3f} {best_on / n * 1000:>8.3f}")
    print(f"on/off = {ratio:.3f} (limit {LIMIT})")
    ok = ratio <= LIMIT and spans == n + 2
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
