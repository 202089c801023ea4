"""``tasker run`` (create a task and run it here) and ``tasker demo``.

``tasker run`` turns Ctrl-C (SIGINT) and SIGTERM into an interruption of the running pass: the engine
records the attempt as interrupted and releases its claims, and the command prints one line saying what
was left and how to resume, exiting 130 or 143. ``--timeout`` interrupts the same way while a step runs.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import click

from tasker.app import Tasker, TaskTimeoutError
from tasker.cli.common import cli_app, database_flag, database_option, friendly_errors
from tasker.cli.tasks import read_context
from tasker.request import TaskRequest

#: Where ``tasker demo`` keeps its database unless told otherwise (in the current directory, so it persists).
DEMO_DATABASE = "tasker-demo.db"


class Interrupted(KeyboardInterrupt):
    """A signal (or the ``--timeout`` alarm) stopped ``tasker run``; ``exit_code`` is the shell convention."""

    def __init__(self, signum: int, reason: str) -> None:
        super().__init__(reason)
        self.exit_code = 128 + signum if signum != signal.SIGALRM else 1
        self.reason = reason


@contextmanager
def interruptible(timeout: float) -> Iterator[None]:
    """Raise :class:`Interrupted` in the main thread on SIGINT, SIGTERM or after ``timeout`` seconds."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        reason = f"timed out after {timeout:g}s" if signum == signal.SIGALRM else signal.Signals(signum).name
        raise Interrupted(signum, reason)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM)}
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, old in previous.items():
            signal.signal(sig, old)


def _left_behind(app: Tasker, task_id: int) -> str:
    """One line: the task's state after an interruption and how to resume it."""
    try:
        view = app.get_task(task_id)
    except Exception as exc:  # the database may be what hung
        return f"task {task_id}: state unknown ({exc}); see `tasker tasks show {task_id}`"
    running = [s.name for s in view.steps if s.status == "in_progress"]
    held = f", step(s) {', '.join(running)} still claimed until their lease expires" if running else ""
    return (
        f"task {task_id} left {view.status} with {view.steps_complete}/{view.steps_total} steps done{held}; "
        f"resume with `tasker worker` or `tasker tasks show {task_id}`"
    )


@click.command()
@click.argument("template", type=click.Path(exists=True, dir_okay=False))
@click.option("--context", "context_text", default="{}", help="Task context: a JSON object or @file.json.")
@click.option("--timeout", default=300.0, show_default=True, help="Seconds before the run is interrupted.")
@database_option
@friendly_errors
def run(template: str, context_text: str, timeout: float, database_url: str | None) -> None:
    """Register TEMPLATE, create a task with --context and run it to completion in this process.

    Handler classes are imported with the current directory on sys.path (as `python -m` would) and
    templates.import_paths of the configuration. Ctrl-C or SIGTERM interrupts the run (exit 130/143) and
    --timeout ends it (exit 1), even while a step runs: the interrupted attempt is recorded and its claim
    released, so `tasker worker` or another run can finish the task.

    \b
    Example:
      tasker run examples/order/order_process.yaml \\
        --context '{"order_id": 1, "items": [{"sku": "A", "price": 9.5, "quantity": 1}]}'
    """
    from tasker.cli.demo import print_task

    context = read_context(context_text)
    with cli_app(database_flag(database_url)) as app:
        app.migrate()
        (tmpl,) = app.load_task_templates(template, replace=True)[:1]
        task = app.create_task(
            TaskRequest(name=tmpl.name, namespace=tmpl.namespace_name, version=tmpl.version, context=context)
        )
        try:
            with interruptible(timeout):
                status = app.run_until_done(task.task_id, timeout=timeout)
        except (Interrupted, TaskTimeoutError) as exc:
            reason = exc.reason if isinstance(exc, Interrupted) else f"timed out after {timeout:g}s"
            click.echo(f"interrupted ({reason}): {_left_behind(app, task.task_id)}", err=True)
            sys.stderr.flush()
            sys.stdout.flush()
            # A step handler may still be running in a pool thread: do not wait for it.
            os._exit(exc.exit_code if isinstance(exc, Interrupted) else 1)
        print_task(app.get_task(task.task_id), click.echo)
    sys.exit(0 if status == "complete" else 1)


@click.command()
@click.option(
    "--database-url",
    default=None,
    help=f"Where to store the demo (default: database.url of the configuration, else ./{DEMO_DATABASE}).",
)
@friendly_errors
def demo(database_url: str | None) -> None:
    """Run the bundled order workflow (a diamond with one flaky step) and show what happened.

    The database persists (./tasker-demo.db unless configured), so the commands it suggests
    (`tasker tasks show`, `tasker trace`) work afterwards.

    \b
    Example:
      tasker demo
    """
    from tasker.cli.common import cli_config
    from tasker.cli.demo import run_demo

    if logging.getLogger().level >= logging.WARNING:  # the flaky step's failure is expected: no traceback
        logging.getLogger("tasker").setLevel(logging.CRITICAL)
    loaded = cli_config(database_flag(database_url))
    url = loaded.config.database.url or f"sqlite:///{Path(DEMO_DATABASE)}"
    sys.exit(run_demo(loaded, url, click.echo))
