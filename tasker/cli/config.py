"""``tasker config show``: the effective configuration, each value with its source, secrets masked."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import click

from tasker.cli.common import cli_config, friendly_errors, json_option
from tasker.config import LoadedConfig
from tasker.events import Masker
from tasker.telemetry.redaction import AttributeRedactor


@click.group()
def config() -> None:
    """Inspect the configuration every command uses.

    The configuration is a YAML file with the sections of TaskerConfig (database, execution, backoff,
    worker, templates, events, telemetry, metrics, celery, ...), given by `tasker --config PATH` or
    $TASKER_CONFIG. Any key can be overridden from the environment as TASKER_SECTION__KEY (for example
    TASKER_EXECUTION__STEP_LEASE_SECONDS=30); a command's flags override both. An unknown key or a bad
    value stops every command with one line naming the key and where it was set (exit status 2).

    \b
    Example:
      tasker --config tasker.yaml config show
    """


def _hide_password(value: str, mask: str) -> str:
    """A URL with its password (``scheme://user:PASSWORD@host``, user possibly empty) masked."""
    try:
        parts = urlsplit(value)
        password = parts.password
    except ValueError:
        return value
    if not password or "@" not in parts.netloc:
        return value
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:{mask}@{host}"))


def masked_settings(loaded: LoadedConfig) -> list[tuple[str, Any, str]]:
    """(key, value, source) of every setting, with secrets masked (sensitive keys, URL passwords, tokens)."""
    events = loaded.config.events
    redactor = AttributeRedactor(Masker(events.filter_parameters, events.filter_mask))
    out: list[tuple[str, Any, str]] = []
    for key, value, source in loaded.items():
        if value is not None and redactor.masker.is_sensitive(key.rsplit(".", 1)[-1]):
            value = events.filter_mask
        elif isinstance(value, str):
            value = redactor.scrub(_hide_password(value, events.filter_mask))
        out.append((key, value, source))
    return out


@config.command("show")
@json_option
@friendly_errors
def show(as_json: bool) -> None:
    """Print the effective configuration: every key, its value and where it came from.

    Sources are `default`, the config file's path, `env NAME` or `flag --name`. Passwords in URLs and
    values of sensitive keys (password, token, secret, ...) are masked.

    \b
    Example:
      tasker --config tasker.yaml config show
      TASKER_EXECUTION__STEP_LEASE_SECONDS=30 tasker config show --json
    """
    loaded = cli_config()
    settings = masked_settings(loaded)
    if as_json:
        payload = {
            "config_file": str(loaded.path) if loaded.path else None,
            "settings": {key: {"value": value, "source": source} for key, value, source in settings},
        }
        click.echo(json.dumps(payload, indent=2))
        return
    click.echo(f"# config file: {loaded.path or 'none'}")
    width = max(len(key) for key, _, _ in settings)
    for key, value, source in settings:
        click.echo(f"{key:<{width}} = {json.dumps(value)}  ({source})")
