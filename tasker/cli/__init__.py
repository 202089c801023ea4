"""The ``tasker`` command line: thin click commands over the library.

User mistakes (a bad template, an unknown task or event, invalid JSON, a bad option) print one line and
exit non-zero; only the CLI configures logging. Commands live in one module each (``generate``,
``events``, ``graph``, ``trace``, ``metrics``); ``python -m tasker.cli.reference`` renders ``docs/cli.md``
from their help.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from pathlib import Path

import click

from tasker import __version__
from tasker.cli.common import TaskerGroup, database_option, friendly_errors
from tasker.cli.events import events
from tasker.cli.generate import generate
from tasker.cli.graph import graph
from tasker.cli.metrics import metrics
from tasker.cli.serve import serve
from tasker.cli.trace import trace
from tasker.cli.worker import worker

__all__ = ["database_option", "friendly_errors", "main"]


@click.group("tasker", cls=TaskerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tasker")
@click.option("-v", "--verbose", count=True, help="Log engine activity (-v info, -vv debug).")
def main(verbose: int) -> None:
    """tasker: DAG workflows with retries, events, traces and metrics.

    \b
    Example:
      tasker demo
      tasker generate task-handler order_process
      tasker graph config/tasks/order_process.yaml
      tasker trace 1
    """
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
    from tasker import Tasker

    app = Tasker(database_url)
    try:
        app.migrate()
        click.echo(f"database at revision {app.db.current_revision()} ({app.db.url})")
    finally:
        app.shutdown()


@main.command()
@click.option("--database-url", default=None, help="Where to store the demo (default: a fresh temporary SQLite file).")
@friendly_errors
def demo(database_url: str | None) -> None:
    """Run the bundled order workflow (a diamond with one flaky step) and show what happened.

    \b
    Example:
      tasker demo
    """
    from tasker.cli.demo import run_demo

    if logging.getLogger().level >= logging.WARNING:  # the flaky step's failure is expected: no traceback
        logging.getLogger("tasker").setLevel(logging.CRITICAL)
    if database_url is None:
        database_url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='tasker-demo-')) / 'tasker.db'}"
    sys.exit(run_demo(database_url, click.echo))


@main.command()
@click.argument("template", type=click.Path(exists=True, dir_okay=False))
@click.option("--context", "context_json", default="{}", help="Task context as a JSON object.")
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to wait for a terminal state.")
@database_option
@friendly_errors
def run(template: str, context_json: str, timeout: float, database_url: str | None) -> None:
    """Register TEMPLATE, create a task with --context and run it to completion.

    Handler classes are imported with the current directory on sys.path (as `python -m` would).

    \b
    Example:
      tasker run examples/order/order_process.yaml \\
        --context '{"order_id": 1, "items": [{"sku": "A", "price": 9.5, "quantity": 1}]}'
    """
    from tasker import Tasker, TaskRequest
    from tasker.cli.demo import print_task

    context = json.loads(context_json)
    if not isinstance(context, dict):
        raise click.ClickException("--context must be a JSON object")
    if os.getcwd() not in sys.path:  # handler_class paths name the project's modules, like `python -m`
        sys.path.insert(0, os.getcwd())
    app = Tasker(database_url)
    try:
        app.migrate()
        (tmpl,) = app.load_task_templates(template)[:1]
        task = app.create_task(
            TaskRequest(name=tmpl.name, namespace=tmpl.namespace_name, version=tmpl.version, context=context)
        )
        status = app.run_until_done(task.task_id, timeout=timeout)
        print_task(app.get_task(task.task_id), click.echo)
    finally:
        app.shutdown()
    sys.exit(0 if status == "complete" else 1)


for command in (generate, events, graph, trace, metrics, worker, serve):
    main.add_command(command)


if __name__ == "__main__":  # pragma: no cover
    main()
