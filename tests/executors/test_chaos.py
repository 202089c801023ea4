"""Chaos: real worker processes on PostgreSQL, one SIGKILLed every 1-3 s, with poisoned and interrupting tasks.

Required: every task terminal, none lost, no step committed twice, the poisoned tasks in ``error`` with their
real cause, and no worker exiting except the killed ones. The figures are printed (``pytest -s`` shows them).
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tasker import Tasker, TaskRequest
from tasker.models import Task, WorkflowStep, WorkflowStepTransition
from tests.support.faults import read_ledger
from tests.support.handlers import chain, template
from tests.support.processes import configured_worker

FAULT = "tests.support.faults:Fault"
TERMINAL = {"complete", "error", "cancelled", "resolved_manually"}
LEASE = 2.0
CONFIG = {
    "backoff": {"max_backoff_seconds": 0.2, "buffer_seconds": 0.2},
    "execution": {"step_lease_seconds": LEASE},
}
WORKERS, CONCURRENCY, TASKS = 3, 2, 150

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _templates(ledger: Path, rng: random.Random) -> list[dict[str, Any]]:
    def configs(steps: dict[str, list[str]], **extra: Any) -> dict[str, dict[str, Any]]:
        return {s: {"log": str(ledger), "sleep": round(rng.uniform(0.01, 0.1), 3), **extra} for s in steps}

    diamond = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}
    return [
        template("chain", chain(3), configs(chain(3)), handler=FAULT, retry_limit=5),
        template("diamond", diamond, configs(diamond), handler=FAULT, retry_limit=5),
        template("poisoned", chain(2), {**configs(chain(2)), "s0": {"fault": "set"}}, handler=FAULT, retry_limit=5),
        template(
            "interrupted",
            chain(2),
            configs(chain(2), fault="keyboard_interrupt", times=1),
            handler=FAULT,
            retry_limit=5,
        ),
        template("exiting", chain(2), configs(chain(2), fault="system_exit", times=1), handler=FAULT, retry_limit=5),
    ]


def test_chaos(pg_schema: str, tmp_path: Path, procs: list[subprocess.Popen[str]]) -> None:
    from tests.conftest import truncate_all

    truncate_all(pg_schema)
    rng = random.Random(11)
    ledger = tmp_path / "ledger"
    templates = _templates(ledger, rng)
    app = Tasker(pg_schema, config=CONFIG)
    for tmpl in templates:
        app.register_task_template(tmpl)
    names = ["poisoned"] * 3 + ["interrupted", "exiting"] + [rng.choice(["chain", "diamond"]) for _ in range(TASKS - 5)]
    rng.shuffle(names)
    ids = {
        app.create_task(TaskRequest(name=n, version="1.0.0", context={"i": i})).task_id: n for i, n in enumerate(names)
    }

    def start(wait: bool = True) -> subprocess.Popen[str]:
        proc = configured_worker(pg_schema, CONFIG, templates, CONCURRENCY, log=tmp_path / "workers.log", wait=wait)
        procs.append(proc)
        return proc

    live = [start() for _ in range(WORKERS)]
    killed: list[tuple[float, int]] = []  # (when, pid)
    started = time.monotonic()
    next_kill = started + rng.uniform(1, 3)
    deadline = started + 120
    while time.monotonic() < deadline:
        with app.db.read() as session:
            statuses = set(session.scalars(select(Task.status).where(Task.task_id.in_(ids)).distinct()))
        if statuses <= TERMINAL:
            break
        assert all(proc.poll() is None for proc in live), "a worker exited without being killed"
        if time.monotonic() >= next_kill:
            victim = live.pop(rng.randrange(len(live)))
            victim.send_signal(signal.SIGKILL)
            killed.append((time.time(), victim.pid))
            victim.wait(timeout=30)
            live.append(start(wait=False))  # replaced at once; it joins in when it has started
            next_kill = time.monotonic() + rng.uniform(1, 3)
        time.sleep(0.1)
    elapsed = time.monotonic() - started
    for proc in live:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"  # signal handlers installed
        proc.send_signal(signal.SIGTERM)
    exits = [proc.wait(timeout=60) for proc in live]

    views = {t: app.get_task(t) for t in ids}
    lost = [t for t, view in views.items() if view.status not in TERMINAL]
    with app.db.read() as session:
        commits = Counter(
            session.scalars(
                select(WorkflowStepTransition.workflow_step_id).where(WorkflowStepTransition.to_state == "complete")
            )
        )
    double_committed = [step for step, n in commits.items() if n > 1]
    entries = read_ledger(ledger)
    ends = Counter((e.task_id, e.step) for e in entries if e.what == "end")
    completed_twice = [key for key, n in ends.items() if n > 1]
    with app.db.read() as session:  # attempts cut short by a kill: their lease expired
        expired = {
            (task_id, name, meta["attempt_number"])
            for task_id, name, meta in session.execute(
                select(WorkflowStep.task_id, WorkflowStep.name, WorkflowStepTransition.metadata_)
                .join(WorkflowStep, WorkflowStep.workflow_step_id == WorkflowStepTransition.workflow_step_id)
                .where(WorkflowStepTransition.to_state == "error")
            )
            if meta.get("reason") == "lease_expired"
        }
    killed_at = {pid: at for at, pid in killed}
    starts = [e for e in entries if e.what == "start"]
    recoveries = [
        min(e.at for e in starts if (e.task_id, e.step) == (cut.task_id, cut.step) and e.attempt > cut.attempt)
        - killed_at[cut.pid]
        for cut in starts
        if (cut.task_id, cut.step, cut.attempt) in expired and cut.pid in killed_at
    ]
    print(
        f"\nchaos: {len(ids)} tasks, {len(killed)} kills in {elapsed:.1f}s, lost {len(lost)}, "
        f"double-committed {len(double_committed)}, handler completed twice {len(completed_twice)}, "
        f"max recovery {max(recoveries, default=0.0):.1f}s (lease {LEASE:g}s), statuses {dict(Counter(v.status for v in views.values()))}"
    )
    assert lost == [] and double_committed == []
    assert killed, "no worker was killed"
    assert exits == [0] * len(live)
    for task_id, name in ids.items():
        view = views[task_id]
        if name == "poisoned":
            assert view.status == "error"
            assert view.step("s0").results["error"] == "step s0: results.tags: set is not JSON-serializable"
        else:
            assert view.status == "complete", (task_id, name, [(s.name, s.status, s.results) for s in view.steps])
    app.shutdown()
