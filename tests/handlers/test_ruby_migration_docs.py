"""docs/ruby-migration.md stays true: every Python block runs as a script and prints the text block after it."""

from __future__ import annotations

import runpy
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tasker.config import TaskerConfig
from tests.support.docs import blocks

DOC = "ruby-migration.md"


def scripts() -> list[int]:
    return [i for i, b in enumerate(blocks(DOC)) if b.language == "python"]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TASKER_DATABASE_URL", raising=False)
    yield tmp_path


def test_the_page_has_its_examples() -> None:
    found = blocks(DOC)
    assert len(scripts()) == 3
    for index in scripts():
        assert found[index + 1].language == "text", f"{DOC}:{found[index].line}"


@pytest.mark.parametrize("index", scripts(), ids=lambda i: f"line{blocks(DOC)[i].line}")
def test_python_block_runs(index: int, workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    block = blocks(DOC)[index]
    script = workdir / "example.py"
    script.write_text(block.code, encoding="utf-8")
    capsys.readouterr()
    runpy.run_path(str(script), run_name="__main__")
    printed = capsys.readouterr().out
    assert printed.splitlines() == blocks(DOC)[index + 1].code.splitlines(), f"{DOC}:{block.line} printed:\n{printed}"


def test_the_config_snippet_is_valid() -> None:
    snippet = next(b.code for b in blocks(DOC) if b.language == "yaml" and "handler_aliases" in b.code)
    config = TaskerConfig.coerce(yaml.safe_load(snippet))
    assert config.templates.handler_aliases["BlogExamples::Post01"] == "myshop.checkout"
