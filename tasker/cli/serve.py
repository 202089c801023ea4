"""``tasker serve``: the REST API (:mod:`tasker.web`) with uvicorn."""

from __future__ import annotations

import ipaddress
import os
import signal
import sys
from types import FrameType

import click

from tasker.cli.common import database_option, fail, friendly_errors


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
@click.option(
    "--templates",
    "-t",
    "template_paths",
    multiple=True,
    type=click.Path(),
    help="Task template YAML file or directory to register (repeatable).",
)
@click.option("--subscriptions", multiple=True, type=click.Path(), help="Subscriptions YAML to load (repeatable).")
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

    Authentication comes from the configuration (web.tokens or web.authenticator). Without it the
    server only listens on a loopback address: `--host 0.0.0.0` is refused unless --insecure-no-auth
    is given. Tasks created over HTTP are handed to the configured executor; run `tasker worker`
    (or Celery workers) to execute them.

    \b
    Example:
      tasker serve --templates config/tasks --port 8000
      curl -s localhost:8000/health/ready
    """
    import uvicorn

    from tasker import Tasker
    from tasker.web import auth_from_config, create_app

    if os.getcwd() not in sys.path:  # handler_class paths name the project's modules
        sys.path.insert(0, os.getcwd())
    app = Tasker(database_url)
    try:
        auth = auth_from_config(app.config.web)
        if auth is None and not is_loopback(host) and not insecure_no_auth:
            fail(
                f"refusing to serve {host} without authentication: configure web.tokens or web.authenticator, "
                "or pass --insecure-no-auth"
            )
        for path in template_paths:
            app.load_task_templates(path)
        for path in subscriptions:
            app.load_subscriptions(path)
        click.echo(f"serving the tasker API on http://{host}:{port} ({len(app.templates)} template(s))", err=True)
        # uvicorn stops gracefully on SIGTERM, then raises it again with the previous handler: exit cleanly
        # through this one, so that the app below is shut down (spans flushed, connections closed).
        signal.signal(signal.SIGTERM, _exit_cleanly)
        uvicorn.run(create_app(app, auth=auth), host=host, port=port, log_level="warning")
    finally:
        app.shutdown()


def _exit_cleanly(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)
