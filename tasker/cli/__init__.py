"""The ``tasker`` command line: thin click commands over the library.

User mistakes (a bad template, an unknown task or event, invalid JSON, a bad option) print one line and
exit non-zero; only the CLI configures logging. Commands live in one module each (``generate``,
``events``, ``graph``, ``trace``, ``metrics``); ``python -m tasker.cli.reference`` renders ``docs/cli.md``
from their help.
"""

from __future__ import annotations

import logging

import click
from sqlalchemy.engine import make_url

from tasker import __version__
from tasker.cli.common import CliState, TaskerGroup, cli_app, database_flag, database_option, friendly_errors
from tasker.cli.config import config
from tasker.cli.events import events
from tasker.cli.generate import generate
from tasker.cli.graph import graph
from tasker.cli.metrics import metrics
from tasker.cli.run import demo, run
from tasker.cli.serve import serve
from tasker.cli.tasks import steps, tasks
from tasker.cli.trace import trace
from tasker.cli.worker import worker

__all__ = ["database_option", "friendly_errors", "main"]


@click.group("tasker", cls=TaskerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tasker")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Configuration YAML (default: $TASKER_CONFIG); env TASKER_SECTION__KEY and flags override it.",
)
@click.option("-v", "--verbose", count=True, help="Log engine activity (-v info, -vv debug).")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, verbose: int) -> None:
    """tasker: DAG workflows with retries, events, traces and metrics.

    Every command reads the same configuration: the --config file (or $TASKER_CONFIG), then
    TASKER_SECTION__KEY environment variables, then the command's flags (see `tasker config show`).

    \b
    Example:
      tasker demo
      tasker --config tasker.yaml worker
      tasker tasks list --status error
      tasker tasks retry 42
    """
    ctx.obj = CliState(config_path)
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@main.group()
def db() -> None:
    """Database schema commands.

    \b
    Example:
      tasker db upgrade --database-url postgresql://postgres@127.0.0.1/tasker
    """


@db.command("upgrade")
@database_option
@friendly_errors
def db_upgrade(database_url: str | None) -> None:
    """Migrate the database to the latest schema (idempotent).

    \b
    Example:
      tasker db upgrade
    """
    with cli_app(database_flag(database_url)) as app:
        app.migrate()
        shown = make_url(app.db.url).render_as_string(hide_password=True)
        click.echo(f"database at revision {app.db.current_revision()} ({shown})")


for command in (config, demo, events, generate, graph, metrics, run, serve, steps, tasks, trace, worker):
    main.add_command(command)


if __name__ == "__main__":  # pragma: no cover
    main()
