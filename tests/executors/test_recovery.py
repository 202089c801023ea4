"""Fair recovery: a killed worker's task resumes about one lease later, whatever the backlog (PostgreSQL)."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tasker import Tasker, TaskRequest
from tests.support.faults import read_ledger
from tests.support.handlers import template
from tests.support.processes import configured_worker, wait_for

FAULT = "tests.support.faults:Fault"
LEASE, POLL, BACKOFF, BUFFER = 5.0, 0.05, 1.0, 1.0
CONFIG = {
    "backoff": {"default_backoff_seconds": [BACKOFF], "jitter_enabled": False, "buffer_seconds": BUFFER},
    "execution": {"step_lease_seconds": LEASE},
}

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_an_orphaned_task_resumes_within_its_lease_despite_a_backlog(
    pg_schema: str, tmp_path: Path, procs: list[subprocess.Popen[str]]
) -> None:
    from tests.conftest import truncate_all

    truncate_all(pg_schema)
    ledger = tmp_path / "ledger"
    orphan = template("orphan", {"a": []}, {"a": {"log": str(ledger), "sleep": 30}}, handler=FAULT)
    backlog = template("backlog", {"a": []}, {"a": {"sleep": 0.2}}, handler=FAULT)
    app = Tasker(pg_schema, config=CONFIG)
    app.register_task_template(orphan)
    app.register_task_template(backlog)
    orphan_id = app.create_task(TaskRequest(name="orphan", version="1.0.0", context={})).task_id
    victim = configured_worker(pg_schema, CONFIG, [orphan, backlog])
    procs.append(victim)
    wait_for(lambda: ledger.exists() and len(read_ledger(ledger)) == 1, timeout=30, what="the orphan's step started")
    for i in range(120):  # a backlog that one worker drains in about a minute
        app.create_task(TaskRequest(name="backlog", version="1.0.0", context={"i": i}))
    victim.send_signal(signal.SIGKILL)
    killed_at = time.time()
    victim.wait(timeout=30)
    procs.append(configured_worker(pg_schema, CONFIG, [orphan, backlog]))
    stop = threading.Event()

    def feed() -> None:  # 2 new tasks a second, for as long as the test runs
        n = 0
        while not stop.wait(0.5):
            n += 1
            app.create_task(TaskRequest(name="backlog", version="1.0.0", context={"new": n}))

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        wait_for(lambda: len(read_ledger(ledger)) == 2, timeout=40, what="the orphan's step restarted")
    finally:
        stop.set()
        feeder.join()
    restarted = read_ledger(ledger)[1]
    waited = restarted.at - killed_at
    print(f"orphan resumed {waited:.1f}s after its worker was killed (lease {LEASE:g}s)")
    assert restarted.attempt == 2 and restarted.pid != victim.pid
    assert waited <= LEASE + 2 * POLL + BACKOFF + BUFFER  # the retry backoff did not cost it its place either
    assert app.get_task(orphan_id).status == "in_progress"  # running again, on the surviving worker
    app.shutdown()
