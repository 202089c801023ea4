"""Fixtures for the metrics tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import tasker
from tasker.metrics import MetricsBackend


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> MetricsBackend:
    """An enabled backend with its own registry, outside multiprocess mode."""
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    return MetricsBackend()


@pytest.fixture(scope="session")
def subprocess_env() -> dict[str, str]:
    """Environment for a child interpreter that imports the same tasker as this test run."""
    repo_root = Path(tasker.__file__).resolve().parents[1]
    env = {key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(repo_root), os.environ.get("PYTHONPATH")]))
    return env
