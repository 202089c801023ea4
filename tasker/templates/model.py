"""Task template models: the typed, validated shape of a task template and its step templates."""

from __future__ import annotations

import copy
import re
from functools import cached_property
from typing import Any, Self

from jsonschema.exceptions import SchemaError  # type: ignore[import-untyped,unused-ignore]
from jsonschema.validators import validator_for  # type: ignore[import-untyped,unused-ignore]
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from tasker.errors import TemplateError
from tasker.handlers.base import StepHandler
from tasker.templates.graph import TemplateGraph
from tasker.templates.imports import import_handler
from tasker.templates.resolve import check_handler_name, is_ruby_constant, qualify

__all__ = ["DEFAULT_DEPENDENT_SYSTEM", "CustomEventSpec", "StepTemplate", "TaskTemplate"]

DEFAULT_DEPENDENT_SYSTEM = "unknown"
"""Dependent system of a step when neither the step nor the template names one."""

_SEMVER = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+")
_MODEL_CONFIG = ConfigDict(extra="forbid", frozen=True)


class CustomEventSpec(BaseModel):
    """A custom event a step publishes; registered when a template using the step is loaded.

    A name without a dot (Ruby templates write ``data_extraction_started``) is prefixed with the
    template's ``namespace_name``.
    """

    model_config = _MODEL_CONFIG

    name: str = Field(min_length=1)
    description: str = "Custom event"


class StepTemplate(BaseModel):
    """One step of a task template.

    ``handler_class`` is a Python import path, resolved during validation (unless validated with
    context ``{"resolve_handlers": False}``, in which case it is resolved on first access to
    ``handler``), or a Ruby constant path (``Mod::Klass``), which is never imported at load time: the
    app's ``TemplateRegistry.step_handler`` resolves it when a task runs the step.
    Semantic problems raise ``TemplateError`` (naming step and field) rather than pydantic's error.
    """

    model_config = _MODEL_CONFIG

    name: str = Field(min_length=1, max_length=128)
    description: str | None = None
    handler_class: str
    handler_config: dict[str, Any] = Field(default_factory=dict)
    depends_on_step: str | None = None
    depends_on_steps: list[str] = Field(default_factory=list)
    default_retryable: bool = True
    default_retry_limit: int = Field(default=3, ge=1)
    """Maximum total attempts (the first run included)."""
    skippable: bool = False
    dependent_system: str | None = Field(default=None, max_length=64)
    timeout_seconds: float | None = Field(default=None, gt=0)
    """Seconds an attempt may run before it fails with ``StepTimeoutError`` (None: the config default);
    an ``async def process`` is cancelled then."""
    custom_events: list[CustomEventSpec] = Field(default_factory=list)

    _handler: type[StepHandler] | None = PrivateAttr(default=None)

    @field_validator("handler_config", mode="before")
    @classmethod
    def _none_is_empty_config(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("handler_class")
    @classmethod
    def _check_handler_path(cls, value: str) -> str:
        check_handler_name(value)
        return value

    @model_validator(mode="after")
    def _resolve_handler(self, info: ValidationInfo) -> Self:
        if _resolve_handlers(info) and not self.is_ruby_handler:
            self._handler = self._import_handler()
        return self

    @property
    def is_ruby_handler(self) -> bool:
        """True when ``handler_class`` is a Ruby constant path (resolved by the app when the task runs)."""
        return is_ruby_constant(self.handler_class)

    def _import_handler(self) -> type[StepHandler]:
        if self.is_ruby_handler:
            raise TemplateError(
                f"'{self.handler_class}' is a Ruby constant: resolve it through the app's TemplateRegistry "
                "(templates.handler_aliases)",
                step=self.name,
                field="handler_class",
            )
        try:
            return import_handler(self.handler_class)
        except TemplateError as exc:
            raise TemplateError(exc.reason, step=self.name, field="handler_class") from exc

    @property
    def handler(self) -> type[StepHandler]:
        """The resolved ``handler_class`` (a ``StepHandler`` subclass)."""
        if self._handler is None:
            self._handler = self._import_handler()
        return self._handler

    def all_dependencies(self) -> list[str]:
        """``depends_on_step`` then ``depends_on_steps``: None dropped, duplicates removed, order kept."""
        names = [self.depends_on_step, *self.depends_on_steps]
        return list(dict.fromkeys(name for name in names if name is not None))

    def dependency_field(self, dependency: str) -> str:
        """The field (``depends_on_step`` or ``depends_on_steps``) that declares ``dependency``."""
        return "depends_on_step" if self.depends_on_step == dependency else "depends_on_steps"


class TaskTemplate(BaseModel):
    """A task template: identity, context schema and the DAG of step templates.

    Ruby Tasker keys are accepted: ``task_handler_class`` (looked up inside ``module_namespace`` when
    it is a lone Ruby constant), ``concurrent`` (stored; steps always run as soon as they are ready,
    as in Ruby), top-level ``handler_config`` (the default of every step's ``handler_config``, merged
    key by key, the step's values winning) and top-level ``custom_events``.
    Validation also checks the template as a whole (unique step names, ``named_steps``, known
    dependencies, no cycles, valid JSON Schema) and raises ``TemplateError`` naming step and field.
    The ``schema`` key is exposed as ``context_schema``.
    """

    model_config = _MODEL_CONFIG

    # Maximum lengths are the sizes of the catalog columns that store them (tasker.models.catalog).
    name: str = Field(min_length=1, max_length=64)
    namespace_name: str = Field(default="default", min_length=1, max_length=64)
    version: str = Field(default="0.1.0", max_length=16)
    description: str | None = None
    default_dependent_system: str | None = Field(default=None, max_length=64)
    named_steps: list[str] | None = None
    context_schema: dict[str, Any] | None = Field(default=None, alias="schema")
    step_templates: list[StepTemplate] = Field(min_length=1)
    environments: dict[str, dict[str, Any]] = Field(default_factory=dict)
    configuration: dict[str, Any] = Field(default_factory=dict)
    task_handler_class: str | None = None
    module_namespace: str | None = None
    concurrent: bool = True
    handler_config: dict[str, Any] = Field(default_factory=dict)
    custom_events: list[CustomEventSpec] = Field(default_factory=list)

    @cached_property
    def steps_by_name(self) -> dict[str, StepTemplate]:
        """The step templates by name (built once per template)."""
        return {step.name: step for step in self.step_templates}

    @cached_property
    def parents(self) -> dict[str, tuple[str, ...]]:
        """Each step's dependencies, as ``all_dependencies`` lists them (built once per template)."""
        return {step.name: tuple(step.all_dependencies()) for step in self.step_templates}

    @model_validator(mode="before")
    @classmethod
    def _apply_template_defaults(cls, data: Any) -> Any:
        """Merge top-level ``handler_config`` into each step; namespace dot-less custom event names."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        namespace = data.get("namespace_name", "default")
        defaults = data.get("handler_config")
        steps = data.get("step_templates")
        if isinstance(steps, list):
            data["step_templates"] = [
                _step_defaults(step, defaults, namespace) if isinstance(step, dict) else step for step in steps
            ]
        data["custom_events"] = _namespaced(data.get("custom_events"), namespace)
        return data

    @field_validator("task_handler_class")
    @classmethod
    def _check_task_handler(cls, value: str | None) -> str | None:
        if value is not None:
            check_handler_name(value)
        return value

    @field_validator("module_namespace")
    @classmethod
    def _check_module_namespace(cls, value: str | None) -> str | None:
        if value is not None and not is_ruby_constant(value):
            raise ValueError(f"must be a Ruby module name such as 'Billing::Refunds', got '{value}'")
        return value

    @field_validator("version")
    @classmethod
    def _check_version(cls, value: str) -> str:
        if not _SEMVER.fullmatch(value):
            raise ValueError(f"must be a semantic version MAJOR.MINOR.PATCH such as '0.1.0', got '{value}'")
        return value

    @model_validator(mode="after")
    def _check_template(self) -> Self:
        self._check_steps()
        self._check_schema()
        return self

    def _check_steps(self) -> None:
        seen: set[str] = set()
        for step in self.step_templates:
            if step.name in seen:
                raise TemplateError("duplicate step name", step=step.name, field="name")
            seen.add(step.name)
        allowed = set(self.named_steps) if self.named_steps is not None else None
        for step in self.step_templates:
            if allowed is not None and step.name not in allowed:
                raise TemplateError(
                    f"step name '{step.name}' is not in the named_steps list", step=step.name, field="name"
                )
            for dep in step.all_dependencies():
                field = step.dependency_field(dep)
                if dep == step.name:
                    raise TemplateError("step depends on itself", step=step.name, field=field)
                if allowed is not None and dep not in allowed:
                    raise TemplateError(
                        f"dependency '{dep}' is not in the named_steps list", step=step.name, field=field
                    )
                if dep not in seen:
                    raise TemplateError(f"depends on unknown step '{dep}'", step=step.name, field=field)
        cycle = self.graph().find_cycle()
        if cycle is not None:
            # cycle[-2] -> cycle[0]: the first step of the cycle depends on the one before it.
            first = self.step(cycle[0])
            raise TemplateError(
                f"dependency cycle: {' -> '.join(cycle)}",
                step=first.name,
                field=first.dependency_field(cycle[-2]),
            )

    def _check_schema(self) -> None:
        if self.context_schema is None:
            return
        try:
            validator_for(self.context_schema).check_schema(self.context_schema)
        except SchemaError as exc:
            field = ".".join(["schema", *(str(part) for part in exc.absolute_path)])
            raise TemplateError(f"not a valid JSON Schema: {exc.message}", field=field) from exc

    @property
    def task_handler_name(self) -> str | None:
        """``task_handler_class`` as resolved: a Ruby constant gets ``module_namespace`` prepended."""
        if self.task_handler_class is None:
            return None
        return qualify(self.task_handler_class, self.module_namespace)

    @property
    def key(self) -> tuple[str, str, str]:
        """``(namespace_name, name, version)``: the registry key."""
        return (self.namespace_name, self.name, self.version)

    @property
    def full_name(self) -> str:
        """``namespace.name@version``."""
        return f"{self.namespace_name}.{self.name}@{self.version}"

    @property
    def step_names(self) -> list[str]:
        """Step names in definition order."""
        return [step.name for step in self.step_templates]

    def step(self, name: str) -> StepTemplate:
        """The step template called ``name``; ``TemplateError`` if there is none."""
        for step in self.step_templates:
            if step.name == name:
                return step
        raise TemplateError("no such step in template", source=self.full_name, step=name)

    def dependent_system_for(self, step: StepTemplate | str) -> str:
        """The step's ``dependent_system``, else ``default_dependent_system``, else ``"unknown"``."""
        template = self.step(step) if isinstance(step, str) else step
        return template.dependent_system or self.default_dependent_system or DEFAULT_DEPENDENT_SYSTEM

    def graph(self) -> TemplateGraph:
        """The dependency graph of the steps."""
        return TemplateGraph.from_template(self)


def _step_defaults(step: dict[str, Any], defaults: Any, namespace: Any) -> dict[str, Any]:
    step = dict(step)
    if isinstance(defaults, dict) and defaults:
        own = step.get("handler_config")
        step["handler_config"] = _merged(defaults, own) if isinstance(own, dict) or own is None else own
    if "custom_events" in step:
        step["custom_events"] = _namespaced(step["custom_events"], namespace)
    return step


def _merged(base: dict[str, Any], override: dict[str, Any] | None) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _namespaced(events: Any, namespace: Any) -> Any:
    """Prefix ``namespace.`` to custom event names that have no dot; anything else is left to validation."""
    if not isinstance(events, list) or not isinstance(namespace, str):
        return [] if events is None else events
    return [
        {**event, "name": f"{namespace}.{event['name']}"}
        if isinstance(event, dict) and isinstance(event.get("name"), str) and event["name"] and "." not in event["name"]
        else event
        for event in events
    ]


def _resolve_handlers(info: ValidationInfo) -> bool:
    context = info.context
    return not isinstance(context, dict) or bool(context.get("resolve_handlers", True))
