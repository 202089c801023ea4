"""Metrics overhead: the 1000-step diamond with engine metrics on vs off, and backend vs raw prometheus_client.

python bench/metrics.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.engine import engine_seconds
from tasker.metrics import MetricsBackend

N = 1000
INCREMENTS = 200_000


def counter_costs() -> tuple[float, float]:
    """Seconds per ``counter(...).inc()`` through the backend and through raw prometheus_client."""
    backend = MetricsBackend()
    start = time.perf_counter()
    for _ in range(INCREMENTS):
        backend.counter("bench_events_total", kind="x").inc()
    ours = (time.perf_counter() - start) / INCREMENTS
    raw = Counter("bench_events_total", "raw", ["kind"], registry=CollectorRegistry())
    start = time.perf_counter()
    for _ in range(INCREMENTS):
        raw.labels(kind="x").inc()
    return ours, (time.perf_counter() - start) / INCREMENTS


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        off = min(engine_seconds("diamond", N, workdir, {"metrics": {"enabled": False}}) for _ in range(3))
        on = min(engine_seconds("diamond", N, workdir, {"metrics": {"enabled": True}}) for _ in range(3))
    ours, raw = counter_costs()
    ratio = on / off
    print(
        f"diamond N={N}: metrics off {off:.3f}s ({off / N * 1e3:.3f} ms/step), "
        f"on {on:.3f}s ({on / N * 1e3:.3f} ms/step), on/off {ratio:.3f}"
    )
    print(
        f"counter().inc(): backend {ours * 1e6:.2f} µs, raw prometheus_client labels().inc() {raw * 1e6:.2f} µs, "
        f"ratio {ours / raw:.2f}"
    )
    ok = ratio <= 1.15
    print("PASS" if ok else "FAIL: metrics on/off > 1.15")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
