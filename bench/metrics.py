"""Metrics cost: per call, per new series, memory of 10,000 step names, and the engine with metrics on vs off.

Every figure is measured in the same run against bare prometheus_client doing the same work:

- **per call** (µs of the calling thread's CPU, best of several runs): ``MetricsBackend.step_executed`` on an existing series vs a bare ``Counter`` child's ``inc()``
  and vs bare children doing a step's work (the counter ``inc()`` and the histogram ``observe()``);
- **new series**: ``step_executed`` for a step name never seen before (5 series appear: executions, duration,
  retries, retries exhausted, timeouts) vs the same 5 bare ``labels()`` children created and recorded;
- **memory**: RSS and tracemalloc growth of recording 10,000 distinct step names, each side in a fresh
  subprocess (bare prometheus_client children are the layout the backend used to have);
- **engine**: the 1000-step diamond with metrics off and on (best of 3).

python bench/metrics.py                 # everything
python bench/metrics.py --no-engine     # the micro-benchmarks and memory only
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import per_call_us  # noqa: E402
from tasker.config import JOB_BUCKETS  # noqa: E402
from tasker.metrics import MetricsBackend  # noqa: E402

N = 1000
CALLS = 100_000
STEP_NAMES = 10_000
ENGINE_LIMIT = 1.15
TASK = ("shop", "order", "1.0.0")
_STEP_LABELS = ("namespace", "task", "version", "step", "status")


class BareStepMetrics:
    """What ``step_executed`` records, as bare prometheus_client metrics (the backend's former layout)."""

    def __init__(self) -> None:
        registry = CollectorRegistry()
        self.executions = Counter("tasker_step_executions_total", "x", _STEP_LABELS, registry=registry)
        self.duration = Histogram(
            "tasker_step_duration_seconds", "x", _STEP_LABELS, registry=registry, buckets=JOB_BUCKETS
        )
        self.zeroed = [
            Counter(name, "x", _STEP_LABELS[:4], registry=registry)
            for name in (
                "tasker_step_retries_total",
                "tasker_step_retries_exhausted_total",
                "tasker_step_timeouts_total",
            )
        ]

    def step_executed(self, step: str, duration: float) -> None:
        """A new step name: its 5 children created, then recorded."""
        values = (*TASK, step, "complete")
        self.executions.labels(*values).inc()
        self.duration.labels(*values).observe(duration)
        for counter in self.zeroed:
            counter.labels(*values[:4])


def new_series_us(record: Callable[[Any, str], None], factory: Callable[[], Any], repeats: int = 3) -> float:
    """Best-of-``repeats`` microseconds per first-time step name (a fresh recorder per repeat)."""
    names = [f"step_{i}" for i in range(STEP_NAMES)]
    best = float("inf")
    for _ in range(repeats):
        recorder = factory()
        gc.collect()
        start = time.thread_time()
        for name in names:
            record(recorder, name)
        best = min(best, time.thread_time() - start)
    return best / STEP_NAMES * 1e6


def _backend_step(backend: MetricsBackend, step: str) -> None:
    backend.step_executed(*TASK, step, "complete", 0.012)


def _bare_step(bare: BareStepMetrics, step: str) -> None:
    bare.step_executed(step, 0.012)


def micro() -> list[tuple[str, float, float]]:
    """(what, backend µs, bare prometheus_client µs) rows."""
    backend = MetricsBackend()
    bare = BareStepMetrics()
    counter = bare.executions.labels(*TASK, "warm", "complete")
    histogram = bare.duration.labels(*TASK, "warm", "complete")

    def bare_step() -> None:
        counter.inc()
        histogram.observe(0.012)

    warm = per_call_us(lambda: _backend_step(backend, "warm"), CALLS)
    return [
        ("existing series vs Counter child inc()", warm, per_call_us(counter.inc, CALLS)),
        ("existing series vs inc() + observe()", warm, per_call_us(bare_step, CALLS)),
        ("new step name vs 5 labels() children", new_series_us(_backend_step, MetricsBackend),
         new_series_us(_bare_step, BareStepMetrics)),
    ]  # fmt: skip


# -- memory, each side in a subprocess of its own -------------------------------------------------------------


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory_child(side: str, traced: bool) -> dict[str, float]:
    """Growth of recording STEP_NAMES distinct step names on one side (``backend`` or ``bare``)."""
    recorder: Any = MetricsBackend() if side == "backend" else BareStepMetrics()
    record = _backend_step if side == "backend" else _bare_step
    names = [f"step_{i}" for i in range(STEP_NAMES)]
    gc.collect()
    if traced:
        tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0] if traced else _rss_bytes()
    for name in names:
        record(recorder, name)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0] if traced else _rss_bytes()
    return {"mb": (after - before) / 2**20}


def memory() -> dict[str, dict[str, float]]:
    """RSS and tracemalloc growth (MB) per side, each measured in a fresh interpreter."""
    figures: dict[str, dict[str, float]] = {}
    for side in ("bare", "backend"):
        figures[side] = {}
        for probe in ("rss", "tracemalloc"):
            out = subprocess.run(
                [sys.executable, __file__, "--memory-child", side, probe],
                check=True, capture_output=True, text=True,
            ).stdout  # fmt: skip
            figures[side][probe] = json.loads(out)["mb"]
    return figures


# -- engine ---------------------------------------------------------------------------------------------------


def engine() -> tuple[float, float]:
    """Best-of-3 seconds for the N-step diamond with metrics off and on."""
    from bench.engine import engine_seconds

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        off = min(engine_seconds("diamond", N, workdir, {"metrics": {"enabled": False}}) for _ in range(3))
        on = min(engine_seconds("diamond", N, workdir, {"metrics": {"enabled": True}}) for _ in range(3))
    return off, on


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-engine", action="store_true", help="skip the engine on/off run")
    parser.add_argument("--memory-child", nargs=2, metavar=("SIDE", "PROBE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        side, probe = args.memory_child
        print(json.dumps(memory_child(side, probe == "tracemalloc")))
        return 0

    print(f"{'step_executed, µs per call':<38} {'backend':>8} {'bare':>8} {'ratio':>6}")
    for what, ours, bare in micro():
        print(f"{what:<38} {ours:>8.2f} {bare:>8.2f} {ours / bare:>6.2f}")
    mem = memory()
    print(f"\nmemory growth for {STEP_NAMES:,} step names (MB)  {'backend':>8} {'bare':>8}")
    for probe in ("rss", "tracemalloc"):
        print(f"{probe:<38} {mem['backend'][probe]:>8.1f} {mem['bare'][probe]:>8.1f}")
    if args.no_engine:
        return 0
    off, on = engine()
    ratio = on / off
    print(
        f"\ndiamond N={N}: metrics off {off:.3f}s ({off / N * 1e3:.3f} ms/step), "
        f"on {on:.3f}s ({on / N * 1e3:.3f} ms/step), on/off {ratio:.3f}"
    )
    ok = ratio <= ENGINE_LIMIT
    print("PASS" if ok else f"FAIL: metrics on/off > {ENGINE_LIMIT}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
