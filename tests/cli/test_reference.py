"""Every command documents itself (with an example), docs/cli.md is its help, and mistakes are one line."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest

import tasker
from tasker.cli import main
from tasker.cli.reference import render_reference
from tests.cli.support import REPO, assert_one_line_error, invoke


def command_paths(group: click.Group = main, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield prefix
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from command_paths(command, (*prefix, name))
        else:
            yield (*prefix, name)


def test_docs_cli_md_is_the_generated_reference() -> None:
    expected = render_reference(main)
    actual = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    assert actual == expected, "docs/cli.md is stale: run `python -m tasker.cli.reference > docs/cli.md`"


def test_the_reference_covers_every_command() -> None:
    text = render_reference(main)
    for path in command_paths():
        assert f"\n## {' '.join(('tasker', *path))}\n" in text


@pytest.mark.parametrize("path", list(command_paths()), ids=lambda p: " ".join(p) or "tasker")
def test_every_command_has_help_with_an_example(path: tuple[str, ...]) -> None:
    result = invoke(*path, "--help")
    assert result.exit_code == 0, result.output
    help_text = result.stdout
    assert "Example:\n" in help_text
    example = help_text.split("Example:\n", 1)[1].splitlines()
    assert example[0].strip().startswith(("tasker ", "python -m", "export ", "PROMETHEUS_MULTIPROC_DIR=")), example[0]
    assert invoke(*path, "-h").stdout == help_text


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"tasker, version {tasker.__version__}"


def test_usage_mistakes_are_one_line() -> None:
    line = assert_one_line_error(invoke("no-such-command"), "No such command 'no-such-command'", exit_code=2)
    assert "(see 'tasker --help')" in line
    assert_one_line_error(invoke("generate", "subscriber"), "Missing argument 'NAME'", exit_code=2)
    assert_one_line_error(invoke("trace", "1", "--bogus"), "--bogus", exit_code=2)
