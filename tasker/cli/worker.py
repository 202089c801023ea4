"""``tasker worker``: a database-polling worker process."""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

import click

from tasker.cli.common import cli_app, database_option, fail, friendly_errors, subscriptions_option, templates_option
from tasker.cli.metrics import auth_options, metrics_auth


@click.command()
@templates_option
@subscriptions_option
@click.option(
    "--concurrency", "-c", type=click.IntRange(1, 256), default=None, help="Passes run at once (worker.concurrency)."
)
@click.option(
    "--poll-interval",
    type=click.FloatRange(min=0.01),
    default=None,
    help="Seconds between polls when idle (execution.worker_poll_interval).",
)
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
    concurrency: int | None,
    poll_interval: float | None,
    metrics_port: int | None,
    metrics_host: str,
    auth_token: str | None,
    auth_user: str | None,
    auth_password: str | None,
    database_url: str | None,
) -> None:
    """Poll the database for runnable tasks and run their passes until SIGTERM or Ctrl-C.

    Everything comes from the configuration (`tasker --config tasker.yaml worker`): templates.paths,
    templates.import_paths, worker.concurrency, execution.step_lease_seconds (how long a dead worker's
    step waits before another worker retries it), execution.worker_poll_interval, backoff, telemetry;
    the flags override it.

    Several workers may share one PostgreSQL database: tasks are claimed with SELECT ... FOR UPDATE
    SKIP LOCKED and steps with leases, so a step of a dead worker is run again by another one.
    On SIGTERM or Ctrl-C the worker finishes the steps it is running, hands its tasks back and exits;
    a second Ctrl-C exits at once (the running steps' leases then expire).

    With --metrics-port the worker serves its Prometheus metrics (and the database gauges) on
    /metrics, with the same options as `tasker metrics serve`.

    \b
    Example:
      tasker --config tasker.yaml worker --concurrency 4
      tasker worker --templates config/tasks --database-url postgresql://postgres@127.0.0.1/tasker
    """
    from tasker.executors import Worker
    from tasker.metrics.http import MetricsServer, make_metrics_app

    flags = {
        "database.url": (database_url, "flag --database-url"),
        "templates.paths": (list(template_paths) or None, "flag --templates"),
        "events.subscriptions": (list(subscriptions) or None, "flag --subscriptions"),
        "worker.concurrency": (concurrency, "flag --concurrency"),
        "execution.worker_poll_interval": (poll_interval, "flag --poll-interval"),
    }
    with cli_app(flags) as app:
        if not len(app.templates):
            fail("no task templates: set templates.paths in the configuration or pass --templates")
        app.db.check_ready()  # one line and exit 1, not a traceback per poll, when it cannot work
        runner = Worker(app, concurrency=app.config.worker.concurrency)

        def stop(signum: int, _frame: FrameType | None) -> None:
            if runner.stopping.is_set():
                click.echo(f"worker {app.worker_id}: forced exit", err=True)
                os._exit(128 + signum)
            click.echo(f"worker {app.worker_id}: stopping after the running steps (again to force)", err=True)
            runner.stop()

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, stop)
        server = None
        if metrics_port is not None:
            auth = metrics_auth(auth_token, auth_user, auth_password)
            server = MetricsServer(make_metrics_app(lambda: app.metrics, auth), metrics_host, metrics_port).start()
            click.echo(f"worker {app.worker_id}: serving metrics on {server.url}", err=True)
        lease = app.config.execution.step_lease_seconds
        click.echo(
            f"worker {app.worker_id}: {len(app.templates)} template(s), concurrency {runner.concurrency}, "
            f"step lease {lease:g}s",
            err=True,
        )
        try:
            runner.run()
        finally:
            if server is not None:
                server.stop()
        if runner.failed:
            fail(f"worker {app.worker_id} could not continue after {runner.passes} pass(es) (see the log)")
        click.echo(f"worker {app.worker_id}: stopped after {runner.passes} pass(es)", err=True)
    sys.exit(0)
