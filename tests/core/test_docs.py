"""The user docs stay true: their Python blocks run, their printed output matches, the data model is complete.

Conventions in the docs: a ```python or ```yaml block whose first line is ``# file: NAME`` is a file the
reader saves (it is written to the temporary working directory before the block runs); a ```text block
right after a ```python block is that block's output (each line must be printed, in order).
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import tasker.models
from tests.support.docs import DOCS, blocks

RUNNABLE_DOCS = ["getting-started.md", "data-model.md", "how-a-task-runs.md", "performance.md"]


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A temporary working directory on sys.path; modules imported from it are forgotten afterwards."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("TASKER_DATABASE_URL", raising=False)
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        module_file = getattr(sys.modules[name], "__file__", None) or ""
        if module_file.startswith(str(tmp_path)):
            del sys.modules[name]


def assert_printed(expected: str, printed: str, where: str) -> None:
    lines = [line.rstrip() for line in printed.splitlines()]
    position = 0
    for wanted in (w.rstrip() for w in expected.splitlines() if w.strip()):
        try:
            position = lines.index(wanted, position) + 1
        except ValueError:
            pytest.fail(f"{where}: expected output line {wanted!r} not printed (in order); got:\n{printed}")


@pytest.mark.parametrize("doc", RUNNABLE_DOCS)
def test_python_blocks_run(doc: str, sandbox: Path) -> None:
    found = blocks(doc)
    python = [b for b in found if b.language == "python"]
    if doc == "getting-started.md":
        assert len(python) >= 3
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for index, block in enumerate(found):
        if block.filename and block.language in ("python", "yaml"):
            (sandbox / block.filename).write_text(block.code, encoding="utf-8")
        if block.language != "python":
            continue
        where = f"{doc}:{block.line}"
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            exec(compile(block.code, where, "exec"), namespace)  # the docs' own examples
        following = found[index + 1] if index + 1 < len(found) else None
        if following is not None and following.language == "text":
            assert_printed(following.code, output.getvalue(), where)


def test_getting_started_files_are_complete() -> None:
    names = {b.filename for b in blocks("getting-started.md") if b.filename}
    assert {"greeting.yaml", "greeting_handlers.py", "run_greeting.py"} <= names


def test_data_model_documents_every_table_and_column() -> None:
    text = (DOCS / "data-model.md").read_text(encoding="utf-8")
    sections = re.split(r"^### ", text, flags=re.MULTILINE)
    by_table = {}
    for section in sections:
        match = re.match(r"`(tasker_\w+)`", section)
        if match:
            by_table[match.group(1)] = section
    missing = []
    for table in tasker.models.Base.metadata.sorted_tables:
        section = by_table.get(table.name)
        if section is None:
            missing.append(table.name)
            continue
        for column in table.columns:
            if not re.search(rf"^\|\s*`?{column.name}`?\s*\|", section, re.MULTILINE):
                missing.append(f"{table.name}.{column.name}")
    assert missing == [], f"undocumented in docs/data-model.md: {missing}"


@pytest.mark.parametrize("doc", RUNNABLE_DOCS)
def test_relative_links_resolve(doc: str) -> None:
    text = (DOCS / doc).read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", text):
        assert (DOCS / target).exists(), f"{doc} links to missing {target}"
