"""What the command modules share: the one-line error policy, the root group class and common options."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeVar

import click

from tasker.errors import TaskerError

F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(fn: F) -> F:
    """Turn tasker errors and file problems into one line on stderr and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (TaskerError, json.JSONDecodeError) as exc:
            raise click.ClickException(str(exc)) from exc
        except OSError as exc:
            if exc.filename is not None and exc.strerror:
                raise click.ClickException(f"{exc.filename}: {exc.strerror}") from exc
            raise click.ClickException(str(exc)) from exc

    return wrapper  # type: ignore[return-value]


def fail(message: str) -> NoReturn:
    """Stop the command with ``Error: <message>`` on stderr and exit status 1."""
    raise click.ClickException(message)


class TaskerCommand(click.Command):
    """A tasker command: never traced as a whole.

    opentelemetry-instrumentation-click wraps plain ``click.Command`` instances only; under it a worker would be
    one span lasting the process's life, recording ``sys.argv`` (``--database-url`` with its password).
    """


class TaskerSubgroup(click.Group):
    """A group whose commands are :class:`TaskerCommand` (see :func:`untraced_command`)."""

    command_class = TaskerCommand

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        """Register ``cmd`` as an untraced command."""
        super().add_command(untraced_command(cmd), name)


def untraced_command(cmd: click.Command) -> click.Command:
    """``cmd`` (and its subcommands) as :class:`TaskerCommand`/:class:`TaskerSubgroup`: no span, no argv."""
    if type(cmd) is click.Command:
        cmd.__class__ = TaskerCommand
    elif type(cmd) is click.Group:
        cmd.__class__ = TaskerSubgroup
    if isinstance(cmd, click.Group):
        for sub in cmd.commands.values():
            untraced_command(sub)
    return cmd


class TaskerGroup(TaskerSubgroup):
    """The root group: usage mistakes print one line (``Error: ... (see 'tasker X --help')``), not the usage."""

    group_class = TaskerSubgroup

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the command line; in standalone mode exit with the command's status."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            click.echo(f"Error: {exc.format_message()}{hint}", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        # Without standalone mode click returns the exit code of --help/--version, else the command's value.
        sys.exit(rv if isinstance(rv, int) else 0)


database_option = click.option(
    "--database-url",
    envvar="TASKER_DATABASE_URL",
    default=None,
    help="Database URL (default: $TASKER_DATABASE_URL or sqlite:///tasker.db).",
)
