"""``tasker metrics serve|export``: expose or dump this process's (or every worker's) Prometheus metrics."""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path

import click

from tasker.cli.common import F, cli_app, database_flag, database_option, friendly_errors
from tasker.metrics.backend import FORMATS
from tasker.metrics.http import DEFAULT_HOST, DEFAULT_PORT, MetricsAuth
from tasker.metrics.multiprocess import ENV_VAR, multiprocess_dir


@click.group()
def metrics() -> None:
    """Serve or export tasker's Prometheus metrics.

    Metrics live in the process that runs tasks. A separate `tasker metrics` process sees them only in
    prometheus_client's multiprocess mode: set PROMETHEUS_MULTIPROC_DIR to the same empty directory for
    the workers (Celery prefork, gunicorn, `tasker worker`) and for this command, before they start;
    it then aggregates every process's files. Without it, the metrics shown are this command's own
    app's: the metric families, with no samples yet.

    \b
    Example:
      export PROMETHEUS_MULTIPROC_DIR=/var/run/tasker-metrics
      tasker metrics serve --port 9464
      tasker metrics export --format json --output metrics.json
    """


def _multiprocess_note() -> None:
    if multiprocess_dir() is None:
        click.echo(
            f"note: {ENV_VAR} is not set: only this process's metrics are shown (set it to aggregate worker processes)",
            err=True,
        )


def auth_options(fn: F) -> F:
    """``--auth-token`` / ``--auth-user`` + ``--auth-password`` (also from the environment) for /metrics."""
    fn = click.option(
        "--auth-password",
        envvar="TASKER_METRICS_PASSWORD",
        default=None,
        help="Basic auth password (env TASKER_METRICS_PASSWORD).",
    )(fn)
    fn = click.option(
        "--auth-user", envvar="TASKER_METRICS_USER", default=None, help="Basic auth user (env TASKER_METRICS_USER)."
    )(fn)
    return click.option(
        "--auth-token",
        envvar="TASKER_METRICS_TOKEN",
        default=None,
        help="Require this bearer token (env TASKER_METRICS_TOKEN).",
    )(fn)


def metrics_auth(token: str | None, user: str | None, password: str | None) -> MetricsAuth | None:
    """The auth the options ask for (None: open)."""
    if token is None and user is None and password is None:
        return None
    return MetricsAuth(bearer_token=token, username=user, password=password)


@metrics.command("serve")
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Interface to listen on.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535), help="TCP port.")
@auth_options
@database_option
@friendly_errors
def serve(
    host: str, port: int, auth_token: str | None, auth_user: str | None, auth_password: str | None,
    database_url: str | None,
) -> None:  # fmt: skip
    """Serve GET /metrics (Prometheus text, or OpenMetrics when asked) until interrupted.

    --port 0 picks a free port; the address served is printed on stderr.

    The app is built from the configuration like any other command; its metrics registry is what is served,
    or, with PROMETHEUS_MULTIPROC_DIR set, the aggregate of every process writing to that directory
    (see `tasker metrics --help`), plus the gauges read from the database at each scrape (backlog, tasks
    in progress, active workers). Served by uvicorn (backlog 2048, idle connections closed after 5 s),
    gzip when accepted, `name[]` filtering; never cached; a failed scrape answers 503 with JSON.
    With --auth-token (or --auth-user and --auth-password) requests without it get 401.

    \b
    Example:
      PROMETHEUS_MULTIPROC_DIR=/var/run/tasker-metrics tasker metrics serve --host 0.0.0.0 --port 9464
      curl -s http://127.0.0.1:9464/metrics
    """
    from tasker.metrics.http import MetricsServer, make_metrics_app

    with cli_app(database_flag(database_url)) as app:
        server = MetricsServer(
            make_metrics_app(lambda: app.metrics, metrics_auth(auth_token, auth_user, auth_password)), host, port
        )
        click.echo(f"serving metrics on {server.url} (Ctrl-C to stop)", err=True)
        _multiprocess_note()
        signal.signal(signal.SIGTERM, signal.default_int_handler)  # a stop like Ctrl-C (uvicorn re-raises it)
        with contextlib.suppress(KeyboardInterrupt):
            server.run()  # until SIGINT or SIGTERM
        click.echo("stopped", err=True)


@metrics.command("export")
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="prometheus", show_default=True, help="Output format."
)
@click.option("--output", type=click.Path(dir_okay=False, writable=True), default=None, help="Write to FILE.")
@database_option
@friendly_errors
def export(fmt: str, output: str | None, database_url: str | None) -> None:
    """Print the metrics once as Prometheus text, OpenMetrics, JSON or CSV.

    JSON is `{timestamp, metrics: [{name, type, value | count, sum, buckets, labels, help}], total_metrics,
    metadata}`; CSV has `timestamp,name,type,value` plus one `label_<key>` column per label. Aggregates
    worker processes when PROMETHEUS_MULTIPROC_DIR is set (see `tasker metrics --help`).

    \b
    Example:
      tasker metrics export --format csv --output metrics.csv
      PROMETHEUS_MULTIPROC_DIR=/var/run/tasker-metrics tasker metrics export --format json
    """
    with cli_app(database_flag(database_url)) as app:
        text = app.metrics.render(fmt)
    if output is None:
        click.echo(text, nl=not text.endswith("\n"))
    else:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"wrote {fmt} metrics to {output}", err=True)
    _multiprocess_note()
