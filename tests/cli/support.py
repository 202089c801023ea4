"""Helpers for the CLI tests: invoking commands, one-line errors, and checking generated projects."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import uuid
from pathlib import Path
from types import ModuleType

from click.testing import CliRunner, Result

from tasker.cli import main

REPO = Path(__file__).resolve().parents[2]
RUFF_CONFIG = REPO / "ruff.toml"
ORDER_TEMPLATE = REPO / "examples" / "order" / "order_process.yaml"
ORDER_CONTEXT = {"order_id": 7, "email": "ada@example.com", "items": [{"sku": "A", "price": 9.5, "quantity": 2}]}
#: Zero backoff: the example's flaky charge_payment step is retried at once.
FAST = {"backoff": {"max_backoff_seconds": 0, "buffer_seconds": 0}}


def invoke(*args: str) -> Result:
    """Run ``tasker ARGS`` in-process."""
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def assert_one_line_error(result: Result, *fragments: str, exit_code: int = 1) -> str:
    """The command failed with ``exit_code`` and exactly one line on stderr holding every fragment."""
    assert result.exit_code == exit_code, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=180, check=False)


def ruff_failures(project: Path) -> list[str]:
    """``ruff check`` the project with the repo's rules and with ruff's defaults, from the project and from
    the repo (so tasker counts as third- and as first-party for import sorting); the failures' output."""
    runs = [
        (["check", ".", "--no-cache", "--config", str(RUFF_CONFIG)], project),
        (["check", ".", "--no-cache", "--isolated"], project),
        (["check", str(project), "--no-cache", "--config", str(RUFF_CONFIG)], REPO),
        (["check", str(project), "--no-cache", "--isolated"], REPO),
    ]
    failures = []
    for args, cwd in runs:
        done = _run([sys.executable, "-m", "ruff", *args], cwd)
        if done.returncode != 0:
            failures.append(f"ruff {' '.join(args)} (from {cwd}):\n{done.stdout}{done.stderr}")
    return failures


def run_pytest(project: Path, *, safe_path: bool = False) -> subprocess.CompletedProcess[str]:
    """``python -m pytest -q`` in the project; ``safe_path`` (``-P``) keeps the cwd off ``sys.path``, as the
    ``pytest`` script does, so imports rely on the generated conftest.py."""
    flags = ["-P"] if safe_path else []
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PROMETHEUS_MULTIPROC"))}
    return _run([sys.executable, *flags, "-m", "pytest", "-q", "-p", "no:cacheprovider"], project, env)


def assert_pytest_passes(project: Path, expected: int, *, safe_path: bool = False) -> None:
    """The generated tests pass: ``expected`` of them."""
    done = run_pytest(project, safe_path=safe_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{expected} passed" in done.stdout, done.stdout


def load_module(path: Path) -> ModuleType:
    """Import a generated module from its file, under a unique name."""
    spec = importlib.util.spec_from_file_location(f"generated_{uuid.uuid4().hex}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
