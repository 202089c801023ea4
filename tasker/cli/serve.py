"""``tasker serve``: the REST API (:mod:`tasker.web`) with uvicorn."""

from __future__ import annotations

import ipaddress
import signal
from types import FrameType

import click

from tasker.cli.common import cli_app, database_option, fail, friendly_errors, subscriptions_option, templates_option


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="TCP port.")
@templates_option
@subscriptions_option
@click.option(
    "--insecure-no-auth",
    is_flag=True,
    help="Serve a non-loopback address without authentication (never in production).",
)
@database_option
@friendly_errors
def serve(
    host: str,
    port: int,
    template_paths: tuple[str, ...],
    subscriptions: tuple[str, ...],
    insecure_no_auth: bool,
    database_url: str | None,
) -> None:
    """Serve the HTTP API: tasks, steps, templates, events, stats, health and /metrics (OpenAPI at /docs).

    Everything else comes from the configuration (`tasker --config tasker.yaml serve`): the database,
    templates.paths, events.subscriptions, the executor tasks are handed to (run `tasker worker` or
    Celery workers beside the server), and authentication (web.tokens or web.authenticator). Without
    authentication the server only listens on a loopback address: `--host 0.0.0.0` is refused unless
    --insecure-no-auth is given.

    \b
    Example:
      tasker --config tasker.yaml serve --port 8000
      tasker serve --templates config/tasks
      curl -s localhost:8000/health/ready
    """
    import uvicorn

    from tasker.web import auth_from_config, create_app

    flags = {
        "database.url": (database_url, "flag --database-url"),
        "templates.paths": (list(template_paths) or None, "flag --templates"),
        "events.subscriptions": (list(subscriptions) or None, "flag --subscriptions"),
    }
    with cli_app(flags) as app:
        auth = auth_from_config(app.config.web)
        if auth is None and not is_loopback(host) and not insecure_no_auth:
            fail(
                f"refusing to serve {host} without authentication: configure web.tokens or web.authenticator, "
                "or pass --insecure-no-auth"
            )
        click.echo(f"serving the tasker API on http://{host}:{port} ({len(app.templates)} template(s))", err=True)
        # uvicorn stops gracefully on SIGTERM, then raises it again with the previous handler: exit cleanly
        # through this one, so that the app is shut down on the way out (spans flushed, connections closed).
        signal.signal(signal.SIGTERM, _exit_cleanly)
        uvicorn.run(create_app(app, auth=auth), host=host, port=port, log_level="warning")


def _exit_cleanly(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)
