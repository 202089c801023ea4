"""``tasker events list|show``: the event catalog, system events plus custom events from YAML."""

from __future__ import annotations

import difflib
import json

import click

from tasker.cli.common import fail, friendly_errors
from tasker.events import EventCatalog, EventSpec
from tasker.events.loading import read_custom_events

CATEGORIES = ("task", "step", "workflow", "observability", "custom")

events_file_option = click.option(
    "--events-file",
    "events_files",
    multiple=True,
    type=click.Path(exists=True),
    help="A custom events YAML file or directory to include (repeatable).",
)


def build_catalog(events_files: tuple[str, ...] = ()) -> EventCatalog:
    """The system catalog plus the custom events declared in ``events_files``."""
    catalog = EventCatalog()
    for path in events_files:
        for spec in read_custom_events(path):
            catalog.register_custom(spec.name, spec.description, spec.fired_by, spec.fields)
    return catalog


def unknown_event(name: str, catalog: EventCatalog) -> str:
    """The one-line message for an unknown event name, with the closest known names."""
    matches = difflib.get_close_matches(name, catalog.names(), n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(matches)}?" if matches else "see `tasker events list`"
    return f"unknown event {name!r} ({hint})"


@click.group()
def events() -> None:
    """Browse the event catalog: names, descriptions and payload schemas.

    \b
    Example:
      tasker events list --category step
      tasker events show step.failed
    """


@events.command("list")
@click.option("--category", type=click.Choice(CATEGORIES), default=None, help="Only events of this category.")
@events_file_option
@friendly_errors
def list_events(category: str | None, events_files: tuple[str, ...]) -> None:
    """List events, one per line: name and description.

    \b
    Example:
      tasker events list
      tasker events list --category custom --events-file config/events/custom_events.yaml
    """
    catalog = build_catalog(events_files)
    names = catalog.names(category)
    if not names:
        click.echo(f"no {category} events (declare custom events in YAML and pass --events-file)", err=True)
        return
    width = max(len(name) for name in names)
    for name in names:
        click.echo(f"{name:<{width}}  {catalog.spec(name).description}")


def render_event(spec: EventSpec) -> list[str]:
    """The lines of ``tasker events show``: description, fired by, payload table, example payload."""
    lines = [
        f"{spec.name} ({spec.category} event)",
        spec.description,
        "",
        "fired by: " + (", ".join(spec.fired_by) if spec.fired_by else "-"),
        "",
    ]
    if not spec.fields:
        return [*lines, "payload: no declared fields"]
    rows = [("field", "type", "required", "description")] + [
        (f.name, f.type, "yes" if f.required else "no", f.description) for f in spec.fields
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines.append("payload:")
    for row in rows:
        lines.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True)) + "  " + row[3])
    lines += ["", "example payload:", json.dumps(spec.example_payload(), indent=2)]
    return [line.rstrip() for line in lines]


@events.command("show")
@click.argument("name")
@events_file_option
@click.option("--json", "as_json", is_flag=True, help="Print the event as JSON (schema and example included).")
@friendly_errors
def show_event(name: str, events_files: tuple[str, ...], as_json: bool) -> None:
    """Describe event NAME: who fires it, its payload fields (type, required) and an example payload.

    \b
    Example:
      tasker events show task.completed
      tasker events show order.processed --events-file config/events/custom_events.yaml
    """
    catalog = build_catalog(events_files)
    spec = catalog.get(name)
    if spec is None:
        fail(unknown_event(name, catalog))
    if as_json:
        click.echo(json.dumps(spec.as_dict(), indent=2))
        return
    for line in render_event(spec):
        click.echo(line)
