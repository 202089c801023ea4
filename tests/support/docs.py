"""Code blocks of the user docs, for the tests that keep docs/ true.

Conventions: a block whose first line is ``# file: NAME`` is a file the reader saves; a ```text block right
after a ```python block is that block's output.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"

_FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)
_FILE = re.compile(r"#\s*file:\s*(\S+)")


@dataclass
class Block:
    """One fenced block: its language, code and first line number in the page."""

    language: str
    code: str
    line: int

    @property
    def filename(self) -> str | None:
        """``NAME`` when the block starts with ``# file: NAME`` (a file to save, not to run)."""
        first = self.code.splitlines()[0] if self.code.strip() else ""
        match = _FILE.fullmatch(first.strip())
        return match.group(1) if match else None


def blocks(doc: str) -> list[Block]:
    """Every fenced block of ``docs/<doc>``, in page order."""
    text = (DOCS / doc).read_text(encoding="utf-8")
    return [Block(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1) for m in _FENCE.finditer(text)]
