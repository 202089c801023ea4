"""Multiprocess mode: real forked workers aggregated by the parent, and dead-process cleanup.

prometheus_client chooses mmap-backed values when it is first imported, so the forking scenario runs in a
fresh interpreter with PROMETHEUS_MULTIPROC_DIR set (multiprocess_scenario.py); this process is unaffected.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tasker.errors import MetricsError
from tasker.metrics import MetricsBackend, cleanup_dead_processes, mark_process_dead
from tasker.metrics.multiprocess import clear_multiprocess_dir, multiprocess_registry, values_are_multiprocess

SCENARIO = Path(__file__).with_name("multiprocess_scenario.py")
TASK = {"namespace": "shop", "task": "order", "version": "1.0.0"}
STEP = {**TASK, "step": "pay", "status": "complete"}


def lookup(scrape: list[list[Any]], name: str, labels: dict[str, str]) -> float | None:
    matches = [value for sample_name, sample_labels, value in scrape if [sample_name, sample_labels] == [name, labels]]
    assert len(matches) <= 1, matches
    return matches[0] if matches else None


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory, subprocess_env: dict[str, str]) -> dict[str, Any]:
    env = {**subprocess_env, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path_factory.mktemp("multiproc"))}
    completed = subprocess.run(
        [sys.executable, str(SCENARIO)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert completed.returncode == 0, completed.stderr
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


def test_children_wrote_their_own_files(scenario: dict[str, Any]) -> None:
    assert scenario["values_are_multiprocess"] is True
    assert scenario["exit_codes"] == [0, 0, 0]
    for pid in scenario["pids"]:
        assert f"counter_{pid}.db" in scenario["files"]
        assert f"histogram_{pid}.db" in scenario["files"]
        assert f"gauge_livesum_{pid}.db" in scenario["files"]


def test_parent_aggregates_every_child(scenario: dict[str, Any]) -> None:
    before = scenario["before"]
    # 1 recorded by the parent before forking + 1 + 2 + 3 by the children (one on the inherited backend).
    assert lookup(before, "tasker_tasks_created_total", TASK) == 7
    assert lookup(before, "tasker_step_executions_total", STEP) == 6
    assert lookup(before, "tasker_step_duration_seconds_count", STEP) == 6
    assert lookup(before, "tasker_step_duration_seconds_sum", STEP) == pytest.approx(0.12)
    assert lookup(before, "tasker_step_duration_seconds_bucket", {**STEP, "le": "0.025"}) == 6
    assert lookup(before, "tasker_step_duration_seconds_bucket", {**STEP, "le": "0.01"}) == 0
    assert lookup(before, "tasker_task_queue_wait_seconds_count", TASK) == 3
    assert lookup(before, "myapp_busy_workers", {}) == 3  # livesum over the three children


def test_dead_child_gauge_is_dropped_but_totals_stay(scenario: dict[str, Any]) -> None:
    after_mark = scenario["after_mark"]
    assert lookup(after_mark, "myapp_busy_workers", {}) == 2
    assert lookup(after_mark, "tasker_tasks_created_total", TASK) == 7
    assert scenario["cleaned"] == sorted(scenario["pids"][1:])
    after_cleanup = scenario["after_cleanup"]
    assert not lookup(after_cleanup, "myapp_busy_workers", {})  # only the live parent (0) is left
    assert lookup(after_cleanup, "tasker_tasks_created_total", TASK) == 7
    assert lookup(after_cleanup, "tasker_step_executions_total", STEP) == 6


def test_json_export_reads_the_multiprocess_files(scenario: dict[str, Any]) -> None:
    metrics = scenario["json"]["metrics"]
    [created] = [m for m in metrics if m["name"] == "tasker_tasks_created_total"]
    assert created["value"] == 7 and created["labels"] == TASK
    [duration] = [m for m in metrics if m["name"] == "tasker_step_duration_seconds"]
    assert duration["count"] == 6 and duration["buckets"]["+Inf"] == 6


# -- helpers, in this process (no mmap values needed) --------------------------------------------------


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_cleanup_dead_processes_removes_only_dead_live_gauges(tmp_path: Path) -> None:
    dead, alive = dead_pid(), os.getpid()
    names = [
        f"gauge_livesum_{dead}.db",
        f"gauge_livemax_{dead}.db",
        f"gauge_livesum_{alive}.db",
        f"gauge_all_{dead}.db",
        f"counter_{dead}.db",
        f"histogram_{dead}.db",
    ]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    assert cleanup_dead_processes(str(tmp_path)) == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[2:])
    assert cleanup_dead_processes(str(tmp_path)) == []


def test_mark_process_dead_uses_the_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "gauge_livesum_4242.db").write_bytes(b"")
    (tmp_path / "counter_4242.db").write_bytes(b"")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    mark_process_dead(4242)
    assert [p.name for p in tmp_path.iterdir()] == ["counter_4242.db"]


def test_helpers_need_a_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    with pytest.raises(MetricsError, match="mark_process_dead needs a directory"):
        mark_process_dead(1)
    with pytest.raises(MetricsError, match="cleanup_dead_processes needs a directory"):
        cleanup_dead_processes()
    with pytest.raises(MetricsError, match="does not exist"):
        multiprocess_registry("/nonexistent/tasker-metrics")


def test_clear_multiprocess_dir(tmp_path: Path) -> None:
    for name in ("counter_1.db", "gauge_livesum_1.db", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert clear_multiprocess_dir(str(tmp_path)) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_env_var_set_too_late_is_warned_about(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert values_are_multiprocess() is False  # this test process imported prometheus_client without it
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    with caplog.at_level(logging.WARNING, logger="tasker.metrics.backend"):
        backend = MetricsBackend()
    assert "imported before it was" in caplog.text
    backend.task_created("shop", "order", "1.0.0")
    # Rendering reads the (empty) directory, not this process's in-memory values.
    assert "tasker_tasks_created_total{" not in backend.render("prometheus")
