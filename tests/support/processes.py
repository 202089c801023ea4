"""Real worker processes for the fault tests: start them, read what they log, wait on conditions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]


def wait_for(predicate: Callable[[], bool], timeout: float = 60, what: str = "condition") -> None:
    """Poll ``predicate`` until it holds; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {timeout:g}s")
        time.sleep(0.02)


def write_templates(directory: Path, *templates: dict[str, Any]) -> Path:
    """Write templates as YAML files into ``directory`` (returned, for ``tasker worker -t``)."""
    directory.mkdir(parents=True, exist_ok=True)
    for tmpl in templates:
        (directory / f"{tmpl['name']}.yaml").write_text(yaml.safe_dump(tmpl))
    return directory


def tasker_worker(url: str, templates: Path, *args: str, log: Path) -> subprocess.Popen[str]:
    """``tasker worker`` (the real command, default configuration), its stderr going to ``log``."""
    with log.open("a") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "tasker", "-v", "worker", "-t", str(templates), "--poll-interval", "0.05",
             "--database-url", url, *args],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=err, text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )  # fmt: skip


def configured_worker(
    url: str,
    config: dict[str, Any],
    templates: list[dict[str, Any]],
    concurrency: int = 1,
    log: Path | None = None,
    *,
    wait: bool = True,
) -> subprocess.Popen[str]:
    """A worker process built with ``config`` (``tests.support.worker_proc``); with ``wait``, once it is ready."""
    err = log.open("a") if log is not None else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.worker_proc", url, json.dumps(config), json.dumps(templates),
             str(concurrency)],
            cwd=REPO, stdout=subprocess.PIPE, stderr=err, text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
        )  # fmt: skip
    finally:
        if log is not None and not isinstance(err, int):
            err.close()
    if wait:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc
