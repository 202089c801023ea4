"""A task created in this process and run in another is one trace; head sampling holds in both."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.handlers import template
from tests.telemetry.conftest import Traced
from tests.telemetry.test_spans import VALID_PARENT, VALID_TRACEPARENT, sid, stored_trace_context, tid

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("child_run.py")
FAST = {"backoff": {"max_backoff_seconds": 0, "buffer_seconds": 0}}


def run_in_child(
    url: str, task_id: int, tmpl: dict[str, Any], tmp_path: Path, config: dict[str, Any], propagation: str = "parent"
) -> list[dict[str, Any]]:
    """Run the task to completion in a fresh interpreter; returns the spans it exported."""
    spans_file = tmp_path / f"spans-{task_id}.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(CHILD), url, str(task_id), str(spans_file), json.dumps(tmpl), json.dumps(config), propagation],
        capture_output=True, text=True, timeout=120, env=env, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] in ("complete", "error"), done.stdout
    if not spans_file.exists():
        return []
    return [json.loads(line) for line in spans_file.read_text().splitlines()]


def test_task_created_here_and_run_in_another_process_is_one_trace(
    make_traced: Callable[..., Traced], database_url: str, tmp_path: Path
) -> None:
    traced = make_traced()
    tmpl = template("diamond", configs={"b": {"fail_times": 1}})
    task_id = traced.create(tmpl, trace_context={"traceparent": VALID_TRACEPARENT})
    tc = stored_trace_context(traced.app, task_id)

    (enqueue,) = traced.spans()  # this process only enqueued
    assert enqueue.name == "tasker.task.enqueue" and sid(enqueue) == tc["enqueue_span_id"]

    child = run_in_child(database_url, task_id, tmpl, tmp_path, FAST)
    assert traced.spans() == [enqueue]  # nothing more here
    assert {s["trace_id"] for s in child} == {tid(enqueue)} == {tc["trace_id"]}
    steps = [s for s in child if s["name"] == "tasker.step.execution"]
    assert sorted((s["attributes"]["tasker.step.name"], s["attributes"]["tasker.step.attempt"]) for s in steps) == [
        ("a", 1), ("b", 1), ("b", 2), ("c", 1), ("d", 1),
    ]  # fmt: skip
    assert {(s["parent_id"], s["parent_is_remote"]) for s in steps} == {(tc["task_span_id"], True)}
    (task,) = [s for s in child if s["name"] == "tasker.task.execution"]
    assert task["span_id"] == tc["task_span_id"] and task["parent_id"] == sid(enqueue) == tc["enqueue_span_id"]
    assert task["kind"] == "CONSUMER" and task["status"] == "OK"
    assert enqueue.parent is not None and f"{enqueue.parent.span_id:016x}" == VALID_PARENT


def test_link_mode_across_processes(make_traced: Callable[..., Traced], database_url: str, tmp_path: Path) -> None:
    traced = make_traced(propagation="link")
    tmpl = template("pair", {"a": [], "b": ["a"]})
    task_id = traced.create(tmpl)
    tc = stored_trace_context(traced.app, task_id)
    child = run_in_child(database_url, task_id, tmpl, tmp_path, FAST, propagation="link")
    (task,) = [s for s in child if s["name"] == "tasker.task.execution"]
    assert task["parent_id"] is None and task["trace_id"] != tc["trace_id"] and task["span_id"] == tc["task_span_id"]
    assert task["links"] == [f"{tc['trace_id']}/{tc['enqueue_span_id']}"]
    steps = [s for s in child if s["name"] == "tasker.step.execution"]
    assert len(steps) == 2 and {(s["trace_id"], s["parent_id"]) for s in steps} == {(task["trace_id"], task["span_id"])}


@pytest.mark.parametrize(("ratio", "expect_spans"), [(0.0, False), (1.0, True)])
def test_head_sampling_is_decided_once_and_honoured_in_both_processes(
    make_traced: Callable[..., Traced], database_url: str, tmp_path: Path, ratio: float, expect_spans: bool
) -> None:
    traced = make_traced({"telemetry": {"sampling_ratio": ratio}})
    tmpl = template("diamond")
    task_id = traced.create(tmpl)
    assert stored_trace_context(traced.app, task_id)["sampled"] is expect_spans
    # the worker's own ratio is the opposite one: the decision stored with the task wins
    child_config = {**FAST, "telemetry": {"sampling_ratio": 1.0 - ratio}}
    child = run_in_child(database_url, task_id, tmpl, tmp_path, child_config)
    if expect_spans:
        assert len(traced.spans()) == 1 and len(child) == 5
    else:
        assert traced.spans() == [] and child == []
