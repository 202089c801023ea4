"""Real worker processes for the fault tests: start them, read what they log, wait on conditions."""

from __future__ import annotations

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
    *,
    log: Path,
    wait: bool = True,
) -> subprocess.Popen[str]:
    """``tasker --config FILE worker`` with ``config`` (templates as YAML files), its stderr going to ``log``.

    Its files go next to ``log`` (one worker per log file); with ``wait``, returns once the worker has
    installed its signal handlers and announced itself.
    """
    directory = write_templates(log.with_suffix(".templates"), *templates)
    execution = {"worker_poll_interval": 0.05, **config.get("execution", {})}
    settings = {
        **config,
        "database": {"url": url},
        "templates": {"paths": [str(directory)], "import_paths": [str(REPO)]},
        "execution": execution,
        "worker": {"concurrency": concurrency},
    }
    config_file = log.with_suffix(".yaml")
    config_file.write_text(yaml.safe_dump(settings))
    with log.open("a") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tasker", "--config", str(config_file), "worker"],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=err, text=True,
        )  # fmt: skip
    if wait:
        wait_for(lambda: announced(proc, log), timeout=60, what=f"worker {proc.pid} started")
    return proc


def announced(proc: subprocess.Popen[str], log: Path) -> bool:
    """Whether ``proc`` logged its start line (signal handlers installed, templates loaded) to ``log``."""
    assert proc.poll() is None, f"worker {proc.pid} exited with {proc.returncode}: {log.read_text()}"
    return any(f":{proc.pid}: " in line and "step lease" in line for line in log.read_text().splitlines())
