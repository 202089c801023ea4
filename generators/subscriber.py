"""``tasker generate subscriber``: a BaseSubscriber with one handler per event, and a test that runs it."""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tasker.events import EventCatalog, EventSpec
from tasker.events.subscriber import handler_name

from .core import (
    GeneratedFile,
    Generation,
    GeneratorError,
    absolute,
    camel_case,
    check_name,
    conftest_file,
    import_line,
    module_name,
    path_from_test,
    project_root,
    render,
    run_from,
    wrap,
)

#: Events a plain subscriber handles when ``--events`` is not given.
DEFAULT_EVENTS = ("task.completed", "task.failed")
#: Events a ``--metrics`` subscriber handles when ``--events`` is not given (reference §9.1).
DEFAULT_METRICS_EVENTS = ("task.completed", "task.failed", "step.completed", "step.failed")

# Payload fields a metrics subscriber reads a duration (seconds) from, first present wins.
_DURATION_FIELDS = ("execution_duration", "total_execution_duration", "current_execution_duration")


@dataclass(frozen=True)
class HandlerInfo:
    """What the templates need to know about one subscribed event."""

    name: str
    method: str
    summary: str
    field_lines: list[str]
    key_field: str | None
    kind: str  # completion, error or other (how a metrics subscriber records it)
    has_duration: bool


def resolve_events(names: Sequence[str], catalog: EventCatalog) -> list[EventSpec]:
    """The specs of ``names``; an unknown name is refused with the closest known names."""
    specs: list[EventSpec] = []
    for name in names:
        spec = catalog.get(name)
        if spec is None:
            matches = difflib.get_close_matches(name, catalog.names(), n=3, cutoff=0.6)
            hint = f"did you mean {', '.join(matches)}?" if matches else "see `tasker events list`"
            raise GeneratorError(f"unknown event {name!r} ({hint})")
        specs.append(spec)
    return specs


def _summary(spec: EventSpec) -> str:
    text = spec.description.rstrip(".")
    first = text.split(" ", 1)[0]
    if first[:1].isupper() and (len(first) == 1 or first[1:].islower()):  # "A step ..." but not "HTTP ..."
        text = text[0].lower() + text[1:]
    return f"Handle {spec.name}: {text}."


def handler_info(spec: EventSpec) -> HandlerInfo:
    """Docstring lines and recording kind of the handler for ``spec``."""
    required = [f.name for f in spec.fields if f.required]
    optional = [f.name for f in spec.fields if not f.required]
    text = "Payload fields: " + (", ".join(required) if required else "none always present")
    if optional:
        text += "; optional: " + ", ".join(optional)
    text += "."
    fields = spec.field_names
    key = "task_id" if "task_id" in fields else (required[0] if required else None)
    kind = "completion" if "completed" in spec.name else "error" if "failed" in spec.name else "other"
    return HandlerInfo(
        name=spec.name,
        method=handler_name(spec.name),
        summary=_summary(spec),
        field_lines=[*wrap(text, indent=8), f"Types and meanings: ``tasker events show {spec.name}``."],
        key_field=key,
        kind=kind,
        has_duration=any(f in fields for f in _DURATION_FIELDS),
    )


_METRIC_CONSTANT = {"completion": "COMPLETIONS_TOTAL", "error": "ERRORS_TOTAL", "other": "EVENTS_TOTAL"}


def _metric_constants(handlers: Sequence[HandlerInfo]) -> list[str]:
    """The metric-name constants a metrics subscriber's test uses (sorted, as isort wants them)."""
    names = {_METRIC_CONSTANT[h.kind] for h in handlers}
    if any(h.kind != "other" and h.has_duration for h in handlers):
        names.add("DURATION_SECONDS")
    return sorted(names)


def subscriber_files(
    name: str,
    events: Sequence[str] = (),
    *,
    metrics: bool = False,
    directory: str | os.PathLike[str] = "subscribers",
    tests_directory: str | os.PathLike[str] = "tests/subscribers",
    catalog: EventCatalog | None = None,
    events_file: Path | None = None,
) -> Generation:
    """The subscriber module ``<directory>/<name>_subscriber.py`` and its test.

    ``events`` default to :data:`DEFAULT_EVENTS` (:data:`DEFAULT_METRICS_EVENTS` with ``metrics``). Custom
    events must be registered on ``catalog``; ``events_file`` is the YAML the test loads them from.
    """
    snake = check_name(name, "subscriber", strip_suffix="subscriber")
    class_name = camel_case(snake) + "Subscriber"
    catalog = catalog if catalog is not None else EventCatalog()
    chosen = list(dict.fromkeys(events)) or list(DEFAULT_METRICS_EVENTS if metrics else DEFAULT_EVENTS)
    handlers = [handler_info(spec) for spec in resolve_events(chosen, catalog)]

    module_file = absolute(directory) / f"{snake}_subscriber.py"
    tests_dir = absolute(tests_directory)
    test_file = tests_dir / f"test_{snake}_subscriber.py"
    root = project_root(module_file, test_file)
    module = module_name(root, module_file, "--directory")
    constants = _metric_constants(handlers) if metrics else []
    context = {
        "class_name": class_name,
        "subscriber_import": import_line(module, [*constants, class_name]),
        "first_metric": _METRIC_CONSTANT[handlers[0].kind],
        "handlers": handlers,
        "metrics": metrics,
        "metric_prefix": snake,
        "events_file": path_from_test(tests_dir, events_file) if events_file is not None else None,
    }
    constructor = f"{class_name}(app.metrics)" if metrics else f"{class_name}()"
    mapping = ", ".join(f"{h.name} -> {h.method}" for h in handlers)
    notes = [
        f"{class_name} handles {mapping}",
        f"register it:  app.subscribe({constructor})",
        f"test it:      {run_from(root)}python -m pytest {test_file.relative_to(root).as_posix()}",
    ]
    return Generation(
        files=[
            GeneratedFile(module_file, render("subscriber.py.j2", **context)),
            GeneratedFile(test_file, render("test_subscriber.py.j2", **context)),
            conftest_file(root),
        ],
        notes=notes,
    )
