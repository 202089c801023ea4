"""What the command modules share: the one-line error policy, the root group class, common options, and
the configuration every command builds its app from (``tasker --config PATH``, ``$TASKER_CONFIG``, env, flags).
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from tasker.config import ConfigFileError, LoadedConfig, load_config, resolve_database_url
from tasker.errors import TaskerError

if TYPE_CHECKING:
    from tasker.app import Tasker

F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(fn: F) -> F:
    """Turn tasker errors and file problems into one line on stderr and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ConfigFileError as exc:
            raise ConfigError(str(exc)) from exc
        except (TaskerError, json.JSONDecodeError) as exc:
            raise click.ClickException(str(exc)) from exc
        except BrokenPipeError:
            raise  # the reader went away: TaskerGroup exits quietly
        except OSError as exc:
            if exc.filename is not None and exc.strerror:
                raise click.ClickException(f"{exc.filename}: {exc.strerror}") from exc
            raise click.ClickException(str(exc)) from exc

    return wrapper  # type: ignore[return-value]


class ConfigError(click.ClickException):
    """Invalid configuration (file, environment or flag): one line, exit status 2."""

    exit_code = 2


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

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; a reader that went away (``tasker tasks list | head``) ends it quietly, status 0."""
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            _quiet_broken_pipe()


def _quiet_broken_pipe() -> NoReturn:
    """The reader went away (``tasker tasks list | head``): exit quietly, without flushing into the pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(0)


database_option = click.option(
    "--database-url",
    default=None,
    help="Database URL (overrides database.url of the configuration; default sqlite:///tasker.db).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
templates_option = click.option(
    "--templates",
    "-t",
    "template_paths",
    multiple=True,
    type=click.Path(),
    help="Task template YAML file or directory (repeatable; replaces templates.paths of the configuration).",
)
subscriptions_option = click.option(
    "--subscriptions",
    multiple=True,
    type=click.Path(),
    help="Subscriptions YAML (repeatable; replaces events.subscriptions).",
)


@dataclass(frozen=True)
class CliState:
    """What the root group parsed: the configuration file to use (``--config``; None: ``$TASKER_CONFIG``)."""

    config_path: str | None = None


Flags = Mapping[str, tuple[Any, str]]


def cli_config(flags: Flags | None = None) -> LoadedConfig:
    """The configuration of this invocation: ``--config``/``$TASKER_CONFIG`` file, env, then ``flags``.

    ``flags`` maps dotted keys to (value, ``flag --name``); None values are not set. Raises
    ConfigFileError (exit 2 under :func:`friendly_errors`).
    """
    ctx = click.get_current_context(silent=True)
    state = ctx.find_object(CliState) if ctx is not None else None
    return load_config(state.config_path if state is not None else None, overrides=flags)


def database_flag(url: str | None) -> Flags:
    """The ``--database-url`` flag as a configuration override."""
    return {"database.url": (url, "flag --database-url")}


@contextmanager
def cli_app(flags: Flags | None = None, *, existing_database: bool = False) -> Iterator[Tasker]:
    """A Tasker built from this invocation's configuration (see :func:`cli_config`), shut down afterwards.

    The current directory is importable (as with ``python -m``) besides ``templates.import_paths``.
    ``existing_database`` refuses a missing SQLite file or an unmigrated schema (read-only commands).
    """
    from tasker.app import Tasker

    loaded = cli_config(flags)
    if existing_database:
        check_database(resolve_database_url(loaded.config.database.url))
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    app = Tasker.from_config(loaded)
    try:
        yield app
    finally:
        app.shutdown()


def check_database(url: str) -> None:
    """Fail with one line unless ``url`` names an existing database with tasker's tables."""
    from tasker.db import Database

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(str(parsed.database)).expanduser()
        if not path.exists():
            fail(f"no database file at {path}")
    shown = parsed.render_as_string(hide_password=True)
    db = Database(url)
    try:
        tables = db.table_names()
    except SQLAlchemyError as exc:
        fail(f"cannot read the database at {shown}: {getattr(exc, 'orig', None) or exc}")
    finally:
        db.dispose()
    if "tasker_tasks" not in tables:
        fail(f"the database at {shown} has no tasker tables (run `tasker db upgrade`)")


def terminal_width() -> int | None:
    """Columns to fit output to: ``$COLUMNS`` or the terminal's; None when writing to a pipe or file."""
    if os.environ.get("COLUMNS", "").isdigit():
        return int(os.environ["COLUMNS"])
    if sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return None


_AGO = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str) -> datetime:
    """``90s``/``30m``/``1h``/``2d``/``1w`` ago, or an ISO-8601 time (naive means UTC)."""
    match = _AGO.match(text.strip())
    if match:
        return datetime.now(UTC) - timedelta(seconds=float(match[1]) * _UNIT_SECONDS[match[2]])
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(f"{text!r} is neither a duration like 1h/30m/2d nor an ISO-8601 time") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
