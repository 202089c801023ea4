"""``tasker metrics serve|export``: expose or dump this process's (or every worker's) Prometheus metrics."""

from __future__ import annotations

from pathlib import Path

import click

from tasker.cli.common import cli_app, database_flag, database_option, friendly_errors
from tasker.metrics.backend import FORMATS
from tasker.metrics.http import DEFAULT_HOST, DEFAULT_PORT, METRICS_PATH
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


@metrics.command("serve")
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Interface to listen on.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535), help="TCP port.")
@database_option
@friendly_errors
def serve(host: str, port: int, database_url: str | None) -> None:
    """Serve GET /metrics (Prometheus text, or OpenMetrics when asked) until interrupted.

    --port 0 picks a free port; the address served is printed on stderr.

    The app is built from the configuration like any other command; its metrics registry is what is served,
    or, with PROMETHEUS_MULTIPROC_DIR set, the aggregate of every process writing to that directory
    (see `tasker metrics --help`). Responses are never cached; a failed scrape answers 503 with JSON.

    \b
    Example:
      PROMETHEUS_MULTIPROC_DIR=/var/run/tasker-metrics tasker metrics serve --host 0.0.0.0 --port 9464
      curl -s http://127.0.0.1:9464/metrics
    """
    from tasker.metrics.http import serve_metrics

    with cli_app(database_flag(database_url)) as app:
        server, thread = serve_metrics(app.metrics, host, port)
        shown = f"[{host}]" if ":" in host else host
        click.echo(f"serving metrics on http://{shown}:{server.server_port}{METRICS_PATH} (Ctrl-C to stop)", err=True)
        _multiprocess_note()
        try:
            while thread.is_alive():
                thread.join(0.5)
        except KeyboardInterrupt:
            click.echo("stopped", err=True)
        finally:
            server.shutdown()
            server.server_close()


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
