"""Forked workers record metrics; the parent scrapes them. Run by test_multiprocess.py in a subprocess.

PROMETHEUS_MULTIPROC_DIR must be set in the environment before this script starts (prometheus_client picks its
value class at import). Prints one JSON document describing what the parent saw at each stage.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
from typing import Any

from prometheus_client import Gauge
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from tasker.metrics import MetricsBackend, cleanup_dead_processes, mark_process_dead
from tasker.metrics.multiprocess import values_are_multiprocess

TASK = ("shop", "order", "1.0.0")
#: A livesum gauge of the application's own (tasker's in-progress figures come from the database).
BUSY = Gauge("myapp_busy_workers", "Busy worker processes.", registry=None, multiprocess_mode="livesum")
inherited: MetricsBackend | None = None  # created before the fork, as with gunicorn --preload


def record(backend: MetricsBackend, tasks: int) -> None:
    for _ in range(tasks):
        backend.task_created(*TASK)
        backend.step_executed(*TASK, "pay", "complete", 0.02)
    backend.task_started(*TASK, queue_wait=0.5)
    BUSY.inc()  # an application's live gauge: this process is busy until it dies


def child(index: int) -> None:
    if index == 2:
        assert inherited is not None
        record(inherited, index + 1)
    else:
        record(MetricsBackend(), index + 1)


def scrape(backend: MetricsBackend) -> list[list[Any]]:
    parse_openmetrics(backend.render("openmetrics"))  # strict: raises on malformed exposition
    return [
        [sample.name, sample.labels, sample.value]
        for family in parse_text(backend.render("prometheus"))
        for sample in family.samples
        if sample.name.startswith(("tasker_", "myapp_"))
    ]


def main() -> None:
    global inherited
    inherited = MetricsBackend()
    inherited.task_created(*TASK)  # the parent's own files hold 1 created task
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=child, args=(index,)) for index in range(3)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    pids = [process.pid for process in processes]
    result: dict[str, Any] = {
        "values_are_multiprocess": values_are_multiprocess(),
        "exit_codes": [process.exitcode for process in processes],
        "pids": pids,
        "files": sorted(os.listdir(os.environ["PROMETHEUS_MULTIPROC_DIR"])),
        "before": scrape(inherited),
    }
    assert pids[0] is not None
    mark_process_dead(pids[0])
    result["after_mark"] = scrape(inherited)
    result["cleaned"] = cleanup_dead_processes(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    result["after_cleanup"] = scrape(inherited)
    result["json"] = json.loads(inherited.render("json"))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
