"""Task template models: the typed, validated shape of a task template and its step templates."""

from __future__ import annotations

import re
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
from tasker.templates.imports import check_import_path, import_handler

__all__ = ["DEFAULT_DEPENDENT_SYSTEM", "CustomEventSpec", "StepTemplate", "TaskTemplate"]

DEFAULT_DEPENDENT_SYSTEM = "unknown"
"""Dependent system of a step when neither the step nor the template names one."""

_SEMVER = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+")
_MODEL_CONFIG = ConfigDict(extra="forbid", frozen=True)


class CustomEventSpec(BaseModel):
    """A custom event a step publishes; registered when a template using the step is loaded."""

    model_config = _MODEL_CONFIG

    name: str = Field(min_length=1)
    description: str = "Custom event"


class StepTemplate(BaseModel):
    """One step of a task template.

    ``handler_class`` is resolved during validation (unless validated with context
    ``{"resolve_handlers": False}``, in which case it is resolved on first access to ``handler``).
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
    """Seconds an attempt may run before it fails with ``StepTimeoutError`` (None: the config default)."""
    custom_events: list[CustomEventSpec] = Field(default_factory=list)

    _handler: type[StepHandler] | None = PrivateAttr(default=None)

    @field_validator("handler_config", mode="before")
    @classmethod
    def _none_is_empty_config(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("handler_class")
    @classmethod
    def _check_handler_path(cls, value: str) -> str:
        check_import_path(value)
        return value

    @model_validator(mode="after")
    def _resolve_handler(self, info: ValidationInfo) -> Self:
        if _resolve_handlers(info):
            self._handler = self._import_handler()
        return self

    def _import_handler(self) -> type[StepHandler]:
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


def _resolve_handlers(info: ValidationInfo) -> bool:
    context = info.context
    return not isinstance(context, dict) or bool(context.get("resolve_handlers", True))
