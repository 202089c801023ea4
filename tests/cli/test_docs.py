"""docs/operations.md stays true: its files are saved, its ``console`` commands run in order in one directory
(their shown output must appear, in order, up to times, durations, trace ids and bars) and its Python runs."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.docs import Block, blocks

pytestmark = pytest.mark.slow

_VARIABLE = [
    (re.compile(r"\|[ #x>]*\|"), "|BAR|"),  # waterfall bars
    (re.compile(r"\b[0-9a-f]{32}\b"), "TRACE"),
    (re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?"), "TIME"),
    (re.compile(r"\+?\b\d+(\.\d+)?(ms|s)\b"), "DUR"),
    (re.compile(r"revision \w+"), "revision REV"),
]


def normalize(line: str) -> str:
    for pattern, replacement in _VARIABLE:
        line = pattern.sub(replacement, line)
    return " ".join(line.split())


def assert_shown(expected: list[str], actual: str, where: str) -> None:
    lines = [normalize(line) for line in actual.splitlines()]
    position = 0
    for wanted in (normalize(w) for w in expected if w.strip()):
        try:
            position = lines.index(wanted, position) + 1
        except ValueError:
            pytest.fail(f"{where}: expected {wanted!r} (in order) in:\n{actual}")


def commands(block: Block) -> Iterator[tuple[str, list[str]]]:
    """(command, expected output lines) of a console block."""
    command: str | None = None
    output: list[str] = []
    for line in block.code.splitlines():
        if line.startswith("$ "):
            if command is not None:
                yield command, output
            command, output = line[2:], []
        else:
            output.append(line)
    if command is not None:
        yield command, output


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    path, before = list(sys.path), set(sys.modules)
    yield tmp_path
    sys.path[:] = path
    for name in set(sys.modules) - before:
        if (getattr(sys.modules[name], "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]


def test_operations_examples_run(sandbox: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKER_", "COLUMNS", "PYTEST_"))}
    # `tasker` as the user has it, whatever this interpreter's scripts directory is
    prelude = f'tasker() {{ "{sys.executable}" -m tasker "$@"; }}; '
    found = blocks("operations.md")
    assert sum(b.language == "console" for b in found) >= 8
    for index, block in enumerate(found):
        where = f"operations.md:{block.line}"
        if block.filename:
            target = sandbox / block.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.code, encoding="utf-8")
            if target.suffix == ".py":
                (target.parent / "__init__.py").touch()
        elif block.language == "console":
            for command, expected in commands(block):
                if command.startswith("export "):
                    name, _, value = command[len("export ") :].partition("=")
                    env[name] = value
                    continue
                done = subprocess.run(
                    ["bash", "-c", prelude + command], cwd=sandbox, env=env,
                    capture_output=True, text=True, timeout=120, check=False,
                )  # fmt: skip
                # a refused command, or a task run here that ended in error, exits non-zero
                fails = any(line.startswith("Error:") or re.fullmatch(r"task \d+: error", line) for line in expected)
                assert (done.returncode != 0) == fails, f"{where}: {command}\n{done.stdout}{done.stderr}"
                assert_shown(expected, done.stdout + done.stderr, f"{where}: {command}")
        elif block.language == "python":
            printed = io.StringIO()
            os.environ.pop("TASKER_CONFIG", None)
            with contextlib.redirect_stdout(printed):
                exec(compile(block.code, where, "exec"), {"__name__": "__docs__"})
            following = found[index + 1] if index + 1 < len(found) else None
            if following is not None and following.language == "text":
                assert_shown(following.code.splitlines(), printed.getvalue(), where)
