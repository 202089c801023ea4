"""``tasker worker``: a database-polling worker process."""

from __future__ import annotations

import os
import sys

import click

from tasker.cli.common import database_option, fail, friendly_errors
from tasker.cli.metrics import auth_options, metrics_auth


@click.command()
@click.option(
    "--templates",
    "-t",
    "template_paths",
    multiple=True,
    required=True,
    type=click.Path(),
    help="Task template YAML file or directory to register (repeatable).",
)
@click.option("--subscriptions", multiple=True, type=click.Path(), help="Subscriptions YAML to load (repeatable).")
@click.option(
    "--concurrency", "-c", default=1, show_default=True, type=click.IntRange(1, 256), help="Passes run at once."
)
@click.option("--poll-interval", type=click.FloatRange(min=0.01), default=None, help="Seconds between polls when idle.")
@click.option(
    "--metrics-port", type=click.IntRange(0, 65535), default=None, help="Serve /metrics on this port (0: a free one)."
)
@click.option("--metrics-host", default="127.0.0.1", show_default=True, help="Interface /metrics listens on.")
@auth_options
@database_option
@friendly_errors
def worker(
    template_paths: tuple[str, ...],
    subscriptions: tuple[str, ...],
    concurrency: int,
    poll_interval: float | None,
    metrics_port: int | None,
    metrics_host: str,
    auth_token: str | None,
    auth_user: str | None,
    auth_password: str | None,
    database_url: str | None,
) -> None:
    """Poll the database for runnable tasks and run their passes until SIGTERM or Ctrl-C.

    Several workers may share one PostgreSQL database: tasks are claimed with SELECT ... FOR UPDATE
    SKIP LOCKED and steps with leases, so a step of a dead worker is run again by another one.
    On SIGTERM the worker finishes the steps it is running, hands its tasks back and exits.

    With --metrics-port the worker serves its Prometheus metrics (and the database gauges) on
    /metrics, with the same options as `tasker metrics serve`.

    \b
    Example:
      tasker worker --templates config/tasks --concurrency 4 \\
        --database-url postgresql://postgres@127.0.0.1/tasker --metrics-port 9464
    """
    from tasker import Tasker
    from tasker.executors import Worker
    from tasker.metrics.http import MetricsServer, make_metrics_app

    if os.getcwd() not in sys.path:  # handler_class paths name the project's modules
        sys.path.insert(0, os.getcwd())
    app = Tasker(database_url)
    server = None
    try:
        app.db.check_ready()  # one line and exit 1, not a traceback per poll, when it cannot work
        for path in template_paths:
            app.load_task_templates(path)
        for path in subscriptions:
            app.load_subscriptions(path)
        runner = Worker(app, concurrency=concurrency, poll_interval=poll_interval)
        runner.install_signal_handlers()
        if metrics_port is not None:
            auth = metrics_auth(auth_token, auth_user, auth_password)
            server = MetricsServer(make_metrics_app(lambda: app.metrics, auth), metrics_host, metrics_port).start()
            click.echo(f"worker {app.worker_id}: serving metrics on {server.url}", err=True)
        click.echo(f"worker {app.worker_id}: {len(app.templates)} template(s), concurrency {concurrency}", err=True)
        runner.run()
        if runner.failed:
            fail(f"worker {app.worker_id} could not continue after {runner.passes} pass(es) (see the log)")
        click.echo(f"worker {app.worker_id}: stopped after {runner.passes} pass(es)", err=True)
    finally:
        if server is not None:
            server.stop()
        app.shutdown()
