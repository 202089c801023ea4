"""Reading task templates from dicts and YAML files: environment overrides, validation, error messages."""

from __future__ import annotations

import copy
import os
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import pydantic
import yaml
from pydantic_core import ErrorDetails

from tasker.errors import TemplateError
from tasker.templates.imports import import_handler
from tasker.templates.model import TaskTemplate

__all__ = ["import_handler", "load_template_file", "load_templates", "parse_template"]

_YAML_SUFFIXES = (".yaml", ".yml")


class _StrictLoader(yaml.SafeLoader):
    """The safe loader, refusing a key given twice in one mapping (YAML says keys are unique)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _value in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                continue  # the base class refuses it with its own message
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_template(
    data: Mapping[str, Any],
    *,
    source: str = "<dict>",
    environment: str = "development",
    resolve_handlers: bool = True,
) -> TaskTemplate:
    """Build a validated ``TaskTemplate`` from a mapping (e.g. one parsed YAML document).

    ``environments[environment]`` overrides are merged in first. ``resolve_handlers=False`` skips
    importing ``handler_class`` (it is then imported on first use of ``step.handler``). Every problem
    raises ``TemplateError`` naming ``source`` and, where they apply, the step and the field.
    """
    if not isinstance(data, Mapping):
        raise TemplateError(f"a task template must be a mapping, got {_type_name(data)}", source=source)
    merged = _apply_environment(copy.deepcopy(dict(data)), environment, source)
    try:
        return TaskTemplate.model_validate(merged, context={"resolve_handlers": resolve_handlers})
    except pydantic.ValidationError as exc:
        raise _from_validation_error(exc, merged, source) from exc
    except TemplateError as exc:
        if exc.source is not None:
            raise
        raise TemplateError(exc.reason, source=source, step=exc.step, field=exc.field) from exc


def load_template_file(
    path: str | os.PathLike[str], *, environment: str = "development", resolve_handlers: bool = True
) -> TaskTemplate:
    """Parse one YAML file holding one task template."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"cannot read file: {exc}", source=source) from exc
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        raise TemplateError(_yaml_reason(exc), source=source) from exc
    if not isinstance(data, Mapping):
        raise TemplateError(
            f"the top level of a task template file must be a mapping, got {_type_name(data)}", source=source
        )
    return parse_template(data, source=source, environment=environment, resolve_handlers=resolve_handlers)


def load_templates(
    path: str | os.PathLike[str], *, environment: str = "development", resolve_handlers: bool = True
) -> list[TaskTemplate]:
    """Load a YAML file, or every ``*.yaml``/``*.yml`` file directly inside a directory (sorted by name)."""
    root = Path(path)
    if root.is_dir():
        files = sorted(p for p in root.iterdir() if p.suffix in _YAML_SUFFIXES and p.is_file())
    elif root.is_file():
        files = [root]
    else:
        raise TemplateError("no such file or directory", source=str(path))
    return [load_template_file(f, environment=environment, resolve_handlers=resolve_handlers) for f in files]


# -- environments ----------------------------------------------------------------------------


def _apply_environment(data: dict[str, Any], environment: str, source: str) -> dict[str, Any]:
    """Pop ``environments``, merge ``environments[environment]`` into ``data``, keep the table."""
    environments = data.pop("environments", None)
    if environments is None:
        return data
    if not isinstance(environments, Mapping):
        raise TemplateError(
            f"must map environment names to overrides, got {_type_name(environments)}",
            source=source,
            field="environments",
        )
    environments = {name: {} if value is None else value for name, value in environments.items()}
    override = environments.get(environment)
    if override is not None:
        if not isinstance(override, Mapping):
            raise TemplateError(
                f"must be a mapping of overrides, got {_type_name(override)}",
                source=source,
                field=f"environments.{environment}",
            )
        for key, value in override.items():
            if key == "step_templates":
                data[key] = _merge_steps(data.get(key), value, environment, source)
            elif key != "environments":
                data[key] = _deep_merge(data.get(key), value)
    data["environments"] = environments
    return data


def _deep_merge(base: Any, override: Any) -> Any:
    """Nested mappings merge key by key; any other override value replaces the base value."""
    if isinstance(base, dict) and isinstance(override, Mapping):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _deep_merge(base.get(key), value)
        return merged
    return copy.deepcopy(override)


def _merge_steps(base: Any, overrides: Any, environment: str, source: str) -> Any:
    """Merge step overrides into the base step list by step ``name``, keeping the base order."""
    field = f"environments.{environment}.step_templates"
    if not isinstance(overrides, list):
        raise TemplateError(
            f"must be a list of step overrides, got {_type_name(overrides)}", source=source, field=field
        )
    if not isinstance(base, list):
        return base  # the base is invalid; validation reports it
    merged = list(base)
    position = {
        step["name"]: i for i, step in enumerate(base) if isinstance(step, dict) and isinstance(step.get("name"), str)
    }
    for number, entry in enumerate(overrides, start=1):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            raise TemplateError(f"step override #{number} must be a mapping with a 'name'", source=source, field=field)
        name = entry["name"]
        if name not in position:
            raise TemplateError(
                f"environment '{environment}' overrides unknown step '{name}'",
                source=source,
                step=name,
                field=field,
            )
        merged[position[name]] = _deep_merge(merged[position[name]], entry)
    return merged


# -- error messages --------------------------------------------------------------------------


def _from_validation_error(exc: pydantic.ValidationError, data: Mapping[str, Any], source: str) -> TemplateError:
    """One ``TemplateError`` for pydantic's errors: the first one named in full, the rest summarised."""
    described = [_describe(error, data) for error in exc.errors(include_url=False)]
    step, field, reason = described[0]
    if len(described) > 1:
        others = "; ".join(_location(s, f) + r for s, f, r in described[1:4])
        more = len(described) - 4
        reason += f" (also: {others}{f'; and {more} more' if more > 0 else ''})"
    return TemplateError(reason, source=source, step=step, field=field)


def _describe(error: ErrorDetails, data: Mapping[str, Any]) -> tuple[str | None, str | None, str]:
    """``(step name, field path, reason)`` of one pydantic error."""
    loc = list(error["loc"])
    step: str | None = None
    if len(loc) >= 2 and loc[0] == "step_templates" and isinstance(loc[1], int):
        steps = data.get("step_templates")
        entry = steps[loc[1]] if isinstance(steps, list) and loc[1] < len(steps) else None
        name = entry.get("name") if isinstance(entry, dict) else None
        if isinstance(name, str) and name:
            step, loc = name, loc[2:]
    field = ".".join(str(part) for part in loc) or None
    return step, field, _reason(error)


def _reason(error: ErrorDetails) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    ctx = error.get("ctx") or {}
    if kind == "value_error" and "error" in ctx:
        return str(ctx["error"])
    return f"{error['msg']} (got {_short_repr(error.get('input'))})"


def _location(step: str | None, field: str | None) -> str:
    parts = ([f"step '{step}'"] if step else []) + ([f"field '{field}'"] if field else [])
    return ", ".join(parts) + ": " if parts else ""


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_name(value: Any) -> str:
    return "nothing (empty document)" if value is None else type(value).__name__


def _yaml_reason(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        detail = "; ".join(part for part in (exc.context, exc.problem) if part)
        return f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {detail}"
    return f"invalid YAML: {exc}"
