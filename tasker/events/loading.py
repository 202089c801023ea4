"""Reading YAML declarations: custom event definitions (reference §6.7) and subscriptions (§6.9).

Both accept one file or a directory of ``*.yml``/``*.yaml`` files, read everything first and validate it, so a
bad file raises :class:`EventError` naming the file before anything is registered or subscribed.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from tasker.errors import EventError
from tasker.events.catalog import (
    CUSTOM_CATEGORY,
    DEFAULT_CUSTOM_DESCRIPTION,
    EventCatalog,
    EventSpec,
    FieldSpec,
)
from tasker.events.subscriber import BaseSubscriber

# Type names accepted in ``payload_schema`` (lower-cased), including the Ruby ones the generator writes.
_TYPE_ALIASES: dict[str, str] = {
    "string": "string",
    "str": "string",
    "text": "string",
    "symbol": "string",
    "time": "string",
    "datetime": "string",
    "date": "string",
    "integer": "integer",
    "int": "integer",
    "number": "number",
    "float": "number",
    "numeric": "number",
    "decimal": "number",
    "boolean": "boolean",
    "bool": "boolean",
    "object": "object",
    "hash": "object",
    "dict": "object",
    "array": "array",
    "list": "array",
    "any": "any",
    "string|null": "string|null",
    "number|null": "number|null",
}


def yaml_files(path: str | os.PathLike[str]) -> list[Path]:
    """``path`` itself if it is a file, else the ``*.yml``/``*.yaml`` files directly inside it, sorted."""
    root = Path(path)
    if root.is_file():
        return [root]
    if root.is_dir():
        return sorted(p for p in root.iterdir() if p.is_file() and p.suffix in (".yml", ".yaml"))
    raise EventError(f"{root}: no such file or directory")


def _read_yaml(file: Path) -> Mapping[str, Any]:
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise EventError(f"{file}: cannot read YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise EventError(f"{file}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def _mapping(value: Any, file: Path, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise EventError(f"{file}: {where} must be a mapping, got {type(value).__name__}")
    return value


def _string_list(value: Any, file: Path, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise EventError(f"{file}: {where} must be a string or a list of strings")


# -- custom events -------------------------------------------------------------------------------------------


def _field_specs(schema: Any, file: Path, event: str) -> tuple[FieldSpec, ...]:
    fields = []
    for field_name, raw in _mapping(schema, file, f"payload_schema of '{event}'").items():
        spec = raw if isinstance(raw, Mapping) else {"type": raw}
        type_name = str(spec.get("type", "any")).strip().lower()
        if type_name.startswith("array"):  # Array<String>
            type_name = "array"
        field_type = _TYPE_ALIASES.get(type_name)
        if field_type is None:
            raise EventError(f"{file}: event '{event}', field '{field_name}': unknown type '{spec.get('type')}'")
        fields.append(
            FieldSpec(
                str(field_name),
                field_type,
                bool(spec.get("required", False)),
                str(spec.get("description", "")),
            )
        )
    return tuple(fields)


def _custom_spec(name: Any, entry: Any, file: Path) -> EventSpec:
    try:
        EventCatalog.check_custom_name(name)
    except EventError as exc:
        raise EventError(f"{file}: {exc}") from exc
    body = _mapping(entry, file, f"event '{name}'")
    return EventSpec(
        name=name,
        category=CUSTOM_CATEGORY,
        description=str(body.get("description") or DEFAULT_CUSTOM_DESCRIPTION),
        fired_by=_string_list(body.get("fired_by"), file, f"fired_by of '{name}'"),
        fields=_field_specs(body.get("payload_schema"), file, name),
    )


def read_custom_event_file(file: Path) -> list[EventSpec]:
    """The custom events of one file, in either shape of reference §6.7.

    ``events: {category: {key: {constant, description, payload_schema, fired_by}}}`` (the generator's shape;
    the name is ``constant``, else ``<category>.<key>``) and ``event_metadata: {category: {key: {description,
    fired_by, payload_schema}}}`` (named ``<category>.<key>``).
    """
    data = _read_yaml(file)
    if data and "events" not in data and "event_metadata" not in data:
        raise EventError(f"{file}: expected an 'events:' or 'event_metadata:' section")
    specs: list[EventSpec] = []
    for section in ("events", "event_metadata"):
        for category, entries in _mapping(data.get(section), file, f"'{section}'").items():
            for key, entry in _mapping(entries, file, f"'{section}.{category}'").items():
                body = _mapping(entry, file, f"'{section}.{category}.{key}'")
                name = body.get("constant") if section == "events" else None
                specs.append(_custom_spec(name or f"{category}.{key}", body, file))
    return specs


def read_custom_events(path: str | os.PathLike[str]) -> list[EventSpec]:
    """The custom events declared in a YAML file or directory; any invalid entry raises before returning."""
    return [spec for file in yaml_files(path) for spec in read_custom_event_file(file)]


# -- subscriptions -------------------------------------------------------------------------------------------


def _resolve_class(path: str, context: Mapping[str, type[BaseSubscriber]] | None) -> Any:
    if context and path in context:
        return context[path]
    module_name, sep, attribute = path.partition(":")
    if not sep:
        module_name, _, attribute = path.rpartition(".")
    if not module_name or not attribute:
        raise ImportError(f"'{path}' is not of the form 'package.module:Class' or 'package.module.Class'")
    target: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    return target


def build_subscribers(
    path: str | os.PathLike[str],
    catalog: EventCatalog,
    context: Mapping[str, type[BaseSubscriber]] | None = None,
) -> list[BaseSubscriber]:
    """Instantiate the enabled subscribers of ``subscriptions:`` files and check them against ``catalog``.

    Each entry is ``name: {class: "pkg.mod:Class", enabled: true, events: [...], config: {...}}`` and becomes
    ``Class(name=name, events=events, config=config)``. Nothing is subscribed here.
    """
    subscribers: list[BaseSubscriber] = []
    seen: dict[str, Path] = {}
    for file in yaml_files(path):
        data = _read_yaml(file)
        if data and "subscriptions" not in data:
            raise EventError(f"{file}: expected a 'subscriptions:' section")
        for name, raw in _mapping(data.get("subscriptions"), file, "'subscriptions'").items():
            where = f"{file}: subscription '{name}'"
            entry = _mapping(raw, file, f"subscription '{name}'")
            if name in seen:
                raise EventError(f"{where} is already defined in {seen[name]}")
            seen[name] = file
            if not entry.get("enabled", True):
                continue
            class_path = entry.get("class")
            if not isinstance(class_path, str) or not class_path:
                raise EventError(f"{where}: 'class' is required")
            try:
                cls = _resolve_class(class_path, context)
            except (ImportError, AttributeError) as exc:
                raise EventError(f"{where}: cannot import class '{class_path}': {exc}") from exc
            if not (isinstance(cls, type) and issubclass(cls, BaseSubscriber)):
                raise EventError(f"{where}: class '{class_path}' is not a BaseSubscriber subclass")
            events = _string_list(entry.get("events"), file, f"events of subscription '{name}'")
            config = _mapping(entry.get("config"), file, f"config of subscription '{name}'")
            try:
                subscriber = cls(name=str(name), events=list(events), config=dict(config))
                for event_name in subscriber.events:
                    if subscriber.should_process_event(event_name):
                        catalog.spec(event_name)
                subscriber.event_handlers()
            except EventError as exc:
                raise EventError(f"{where}: {exc}") from exc
            except Exception as exc:
                raise EventError(f"{where}: cannot create '{class_path}': {exc}") from exc
            subscribers.append(subscriber)
    return subscribers
