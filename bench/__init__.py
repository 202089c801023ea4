"""Benchmarks of tasker (run each as ``python bench/<name>.py``); helpers they share."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable


def per_call_us(
    fn: Callable[[], object], calls: int, repeats: int = 7, clock: Callable[[], float] = time.thread_time
) -> float:
    """Best-of-``repeats`` microseconds per call of ``fn`` by ``clock`` (by default this thread's CPU time, so other
    processes stay out)."""
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        start = clock()
        for _ in range(calls):
            fn()
        best = min(best, clock() - start)
    return best / calls * 1e6
