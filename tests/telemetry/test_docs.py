"""docs/telemetry.md stays true: its Python blocks run, in order, in one namespace.

A block whose first line is ``# file: NAME`` is a file the reader saves: it is written to the working
directory (on ``sys.path``) instead of being run.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.docs import blocks


def test_python_blocks_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("TASKER_DATABASE_URL", raising=False)
    namespace: dict[str, Any] = {"__name__": "docs_telemetry"}
    handlers_before = list(logging.getLogger("tasker").handlers)
    modules_before = set(sys.modules)
    try:
        for block in (b for b in blocks("telemetry.md") if b.language == "python"):
            if block.filename:
                (tmp_path / block.filename).write_text(block.code, encoding="utf-8")
                continue
            exec(compile(block.code, f"docs/telemetry.md (line {block.line})", "exec"), namespace)
    finally:
        logging.getLogger("tasker").handlers[:] = handlers_before
        for name in set(sys.modules) - modules_before:
            if str(getattr(sys.modules[name], "__file__", "") or "").startswith(str(tmp_path)):
                del sys.modules[name]
        provider = namespace.get("provider")
        if provider is not None:
            provider.shutdown()
    out = capsys.readouterr().out
    assert "task pipeline" in out and "step load #1" in out
