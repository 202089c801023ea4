"""CLI test fixtures: undo what the CLI does to the process (logging, sys.path, the current directory)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _restore_process_state() -> Iterator[None]:
    """The CLI configures logging and may put the cwd on sys.path (it owns the process when run for real)."""
    loggers = [logging.getLogger(), logging.getLogger("tasker")]
    saved = [(lg, lg.level, list(lg.handlers)) for lg in loggers]
    path = list(sys.path)
    yield
    for lg, level, handlers in saved:
        lg.setLevel(level)
        lg.handlers[:] = handlers
    sys.path[:] = path


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project directory, made the current directory (generators write relative to it)."""
    root = tmp_path / "project"
    root.mkdir()
    monkeypatch.chdir(root)
    return root
