"""The event docs cannot drift: events.md is the rendered catalog, and subscribers.md's examples run."""

from __future__ import annotations

import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

from tasker.events import EventCatalog
from tasker.events.catalog import render_catalog_markdown

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_events_md_is_the_rendered_catalog() -> None:
    expected = render_catalog_markdown(EventCatalog())
    assert (DOCS / "events.md").read_text(encoding="utf-8") == expected, (
        "docs/events.md is stale: run `python -m tasker.events > docs/events.md`"
    )


@pytest.mark.parametrize("module", ["tasker.events", "tasker.events.catalog"])
def test_entry_points_print_the_markdown(module: str) -> None:
    result = subprocess.run([sys.executable, "-m", module], capture_output=True, text=True, check=True, cwd=DOCS.parent)
    assert result.stdout == render_catalog_markdown(EventCatalog())
    if module == "tasker.events":
        assert result.stderr == ""


def test_events_md_mentions_every_event() -> None:
    text = (DOCS / "events.md").read_text(encoding="utf-8")
    for name in EventCatalog().names():
        assert f"### {name}\n" in text


def test_subscribers_md_examples_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    text = (DOCS / "subscribers.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```$", text, flags=re.S | re.M)
    assert len(blocks) >= 8
    monkeypatch.chdir(tmp_path)
    # The blocks share one namespace, as if they were one script, in a module of their own.
    module = types.ModuleType("subscribers_md")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    for number, block in enumerate(blocks, 1):
        code = compile(block, f"docs/subscribers.md (python block {number})", "exec")
        exec(code, module.__dict__)
