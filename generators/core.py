"""What every generator shares: name checks, template rendering, import paths and writing files.

A generator validates its input and returns a :class:`Generation` (files plus next-step notes) without
touching the disk; :func:`write_files` then writes them, refusing to overwrite unless forced.
"""

from __future__ import annotations

import json
import keyword
import os
import re
import sys
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import jinja2

from tasker.errors import GeneratorError as GeneratorError  # re-exported: part of the tasker.errors tree

TEMPLATES = Path(__file__).resolve().parent / "templates"

#: Width generated docstrings and comments are wrapped to (the repo's ruff line length is 120).
WRAP_WIDTH = 100

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_CAMEL_BOUNDARIES = (re.compile(r"([A-Z]+)([A-Z][a-z])"), re.compile(r"([a-z0-9])([A-Z])"))


@dataclass(frozen=True)
class GeneratedFile:
    """A file to write; ``keep_existing`` files (a shared ``conftest.py``) are never overwritten."""

    path: Path
    content: str
    keep_existing: bool = False


@dataclass(frozen=True)
class Generation:
    """What a generator produced: the files and a few lines telling the user what to do next."""

    files: list[GeneratedFile]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class WrittenFile:
    """The outcome for one file: ``created``, ``overwritten`` or ``kept`` (it existed and was left alone)."""

    path: Path
    action: Literal["created", "overwritten", "kept"]


# -- names -----------------------------------------------------------------------------------------------------


def snake_case(name: str) -> str:
    """``OrderAlerts`` / ``orderAlerts`` / ``order_alerts`` -> ``order_alerts``; ``HTTPClient`` -> ``http_client``."""
    for boundary in _CAMEL_BOUNDARIES:
        name = boundary.sub(r"\1_\2", name)
    return re.sub(r"_+", "_", name).strip("_").lower()


def camel_case(snake: str) -> str:
    """``order_alerts`` -> ``OrderAlerts``."""
    return "".join(part[:1].upper() + part[1:] for part in snake.split("_") if part)


def check_name(name: str, what: str, *, strip_suffix: str | None = None) -> str:
    """The snake_case form of a user-given NAME; refuses anything that is not a snake or CamelCase identifier."""
    if not _NAME.match(name):
        raise GeneratorError(
            f"invalid {what} name {name!r}: use letters, digits and underscores, starting with a letter "
            "(e.g. order_alerts or OrderAlerts)"
        )
    snake = snake_case(name)
    if strip_suffix and snake.endswith("_" + strip_suffix):
        snake = snake[: -len(strip_suffix) - 1]
    if not snake or snake == strip_suffix:
        raise GeneratorError(f"invalid {what} name {name!r}: it needs more than the '{strip_suffix}' suffix")
    if keyword.iskeyword(snake):
        raise GeneratorError(f"invalid {what} name {name!r}: '{snake}' is a Python keyword")
    return snake


def check_package_name(snake: str, what: str) -> str:
    """Refuse a package name that would shadow the standard library, tasker or pytest's own modules."""
    reserved = {"tasker", "tests", "conftest", "pytest", "test"}
    if snake in sys.stdlib_module_names or snake in reserved:
        raise GeneratorError(
            f"invalid {what} name {snake!r}: the generated package would shadow the '{snake}' module; "
            "pick a more specific name"
        )
    return snake


def split_list(values: Iterable[str]) -> list[str]:
    """Comma-separated option values, flattened and stripped (empty items dropped, order kept)."""
    items = (item.strip() for value in values for item in value.split(","))
    return [item for item in items if item]


# -- paths -----------------------------------------------------------------------------------------------------


def absolute(path: str | os.PathLike[str]) -> Path:
    """``path`` made absolute against the current directory, without resolving symlinks."""
    return Path(os.path.normpath(Path.cwd() / path))


def display(path: Path) -> str:
    """``path`` relative to the current directory when it is inside it, else absolute."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def run_from(root: Path) -> str:
    """``cd <root> && `` when ``root`` is not the current directory, else nothing (for shell hints)."""
    return "" if root == Path.cwd() else f"cd {display(root)} && "


def project_root(*paths: Path) -> Path:
    """The directory generated code imports from: the current directory if it holds all ``paths``, else
    their deepest common directory.
    """
    cwd = Path.cwd()
    if all(path.is_relative_to(cwd) for path in paths):
        return cwd
    return Path(os.path.commonpath([str(p) for p in paths]))


def module_name(root: Path, file: Path, option: str) -> str:
    """The dotted module name of ``file`` when ``root`` is on ``sys.path``; refuses non-importable paths."""
    parts = file.relative_to(root).with_suffix("").parts
    for part in parts:
        if not part.isidentifier() or keyword.iskeyword(part):
            raise GeneratorError(
                f"{option}: {display(file)} would not be importable: {part!r} is not a valid Python module name"
            )
    return ".".join(parts)


def path_from_test(tests_dir: Path, target: Path) -> str:
    """A Python expression for ``target`` built from a test file's ``__file__`` (works from any cwd)."""
    parts = Path(os.path.relpath(target, tests_dir)).parts
    ups = 0
    while ups < len(parts) and parts[ups] == "..":
        ups += 1
    base = "Path(__file__).resolve().parent" if ups == 0 else f"Path(__file__).resolve().parents[{ups}]"
    return f"{base} / {json.dumps('/'.join(parts[ups:]))}"


def import_line(module: str, names: Sequence[str]) -> str:
    """``from module import names`` as isort writes it at ruff's default line length (88): one line if it fits,
    else one name per line with a trailing comma (which isort keeps at any line length)."""
    line = f"from {module} import {', '.join(names)}"
    if len(line) <= 88:
        return line
    return f"from {module} import (\n" + "".join(f"    {name},\n" for name in names) + ")"


def conftest_file(root: Path) -> GeneratedFile:
    """A root ``conftest.py`` (kept if one exists): pytest then puts ``root`` on ``sys.path``."""
    return GeneratedFile(root / "conftest.py", render("conftest.py.j2"), keep_existing=True)


# -- rendering -------------------------------------------------------------------------------------------------


def py_string(value: str) -> str:
    """A double-quoted Python (and YAML) string literal."""
    return json.dumps(value, ensure_ascii=False)


def docstring_text(value: str) -> str:
    """Text safe inside a triple-quoted docstring."""
    return value.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


def wrap(text: str, indent: int, width: int = WRAP_WIDTH) -> list[str]:
    """``text`` wrapped into lines that fit ``width`` columns once indented by ``indent`` spaces."""
    return textwrap.wrap(text, width=width - indent, break_long_words=False, break_on_hyphens=False)


_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
    autoescape=False,  # the output is Python and YAML, not HTML
)
_environment.filters["py"] = py_string
_environment.filters["doc"] = docstring_text
# A docstring's text wrapped after its opening quotes, continuation lines at the quotes' indent.
_environment.filters["wrap"] = lambda text, indent=0: ("\n" + " " * indent).join(wrap(text, indent + 3))


def render(template: str, **context: Any) -> str:
    """Render ``templates/<template>``; generated Python is compiled to catch template mistakes early."""
    text = _environment.get_template(template).render(**context)
    if template.endswith(".py.j2"):
        compile(text, template, "exec")
    return text


# -- writing ---------------------------------------------------------------------------------------------------


def write_files(files: Sequence[GeneratedFile], *, force: bool = False) -> list[WrittenFile]:
    """Write ``files``; if any would overwrite an existing file and ``force`` is false, write nothing."""
    clashes = [f.path for f in files if not f.keep_existing and f.path.exists()]
    if clashes and not force:
        names = ", ".join(display(path) for path in clashes)
        raise GeneratorError(f"refusing to overwrite {names} (use --force to replace)")
    for f in files:
        if f.path.exists() and f.path.is_dir():
            raise GeneratorError(f"{display(f.path)} is a directory")
    written: list[WrittenFile] = []
    for f in files:
        existed = f.path.exists()
        if existed and f.keep_existing:
            written.append(WrittenFile(f.path, "kept"))
            continue
        f.path.parent.mkdir(parents=True, exist_ok=True)
        f.path.write_text(f.content, encoding="utf-8")
        written.append(WrittenFile(f.path, "overwritten" if existed else "created"))
    return written
