"""TemplateRegistry: an app's task templates by (namespace, name, version), and their handler classes."""

from __future__ import annotations

import builtins
import threading
from collections.abc import Callable, Iterator, Mapping

from tasker.errors import TemplateError, TemplateNotFoundError
from tasker.handlers.base import StepHandler
from tasker.handlers.task import TaskHandler
from tasker.templates.model import StepTemplate, TaskTemplate
from tasker.templates.resolve import HandlerResolver

__all__ = ["TemplateRegistry"]

TemplateKey = tuple[str, str, str]


def _sort_key(key: TemplateKey) -> tuple[str, str, tuple[int, ...]]:
    namespace, name, version = key
    return (namespace, name, tuple(int(part) for part in version.split(".")))


class TemplateRegistry:
    """Thread-safe store of ``TaskTemplate`` objects; each app owns one (there is no global registry).

    ``get`` never falls back to another version or namespace. Iteration is sorted by namespace,
    name, then numeric version. Handler classes named by Ruby constants are resolved here, through
    ``handler_aliases`` (see :mod:`tasker.templates.resolve`), when a task first needs them.
    """

    def __init__(
        self,
        handler_aliases: Mapping[str, str] | None = None,
        on_resolved: Callable[[StepTemplate, type[StepHandler]], None] | None = None,
    ) -> None:
        """``on_resolved(step, handler_class)`` is called once per step whose Ruby handler name is resolved."""
        self._templates: dict[TemplateKey, TaskTemplate] = {}
        self._lock = threading.Lock()
        self.resolver = HandlerResolver(handler_aliases)
        self._on_resolved = on_resolved
        self._resolved: dict[tuple[TemplateKey, str], tuple[StepTemplate, type[StepHandler]]] = {}

    def _forget_resolved(self, key: TemplateKey) -> None:
        for resolved in [k for k in self._resolved if k[0] == key]:
            del self._resolved[resolved]

    def step_handler(self, template: TaskTemplate, step: StepTemplate) -> type[StepHandler]:
        """The handler class of ``step``; ``TemplateError`` naming template, step and candidates if unresolvable."""
        key = (template.key, step.name)
        found = self._resolved.get(key)
        if found is not None and found[0] is step:  # cached for this very step (not one a replacement dropped)
            return found[1]
        if not step.is_ruby_handler:
            resolved = step.handler
        else:
            resolved = self.resolver.resolve(
                step.handler_class, StepHandler, "handler_class", source=template.full_name, step=step.name
            )
            if self._on_resolved is not None:
                self._on_resolved(step, resolved)
        self._resolved[key] = (step, resolved)
        return resolved

    def task_handler(self, template: TaskTemplate) -> type[TaskHandler] | None:
        """The class named by ``task_handler_class`` (None when the template names none)."""
        name = template.task_handler_name
        if name is None:
            return None
        return self.resolver.resolve(name, TaskHandler, "task_handler_class", source=template.full_name)

    def register(self, template: TaskTemplate, *, replace: bool = False) -> TaskTemplate:
        """Add ``template``; a second template with the same key needs ``replace=True``."""
        if not isinstance(template, TaskTemplate):
            raise TemplateError(f"expected a TaskTemplate, got {type(template).__name__}")
        namespace, name, version = key = template.key
        with self._lock:
            if key in self._templates and not replace:
                raise TemplateError(
                    f"a task template is already registered for namespace '{namespace}', name '{name}', "
                    f"version '{version}'; pass replace=True to replace it"
                )
            self._templates[key] = template
            self._forget_resolved(key)
        return template

    def get(self, namespace: str, name: str, version: str) -> TaskTemplate:
        """The template registered under exactly this key; ``TemplateNotFoundError`` otherwise."""
        with self._lock:
            template = self._templates.get((namespace, name, version))
        if template is None:
            raise TemplateNotFoundError(namespace, name, version)
        return template

    def unregister(self, namespace: str, name: str, version: str) -> TaskTemplate:
        """Remove and return a template; ``TemplateNotFoundError`` if it is not registered."""
        with self._lock:
            template = self._templates.pop((namespace, name, version), None)
            self._forget_resolved((namespace, name, version))
        if template is None:
            raise TemplateNotFoundError(namespace, name, version)
        return template

    def versions(self, namespace: str, name: str) -> builtins.list[str]:
        """Registered versions of one template, in ascending numeric order."""
        return [t.version for t in self.list() if t.namespace_name == namespace and t.name == name]

    def list(self) -> builtins.list[TaskTemplate]:
        """Every registered template, sorted by (namespace, name, version)."""
        with self._lock:
            items = builtins.list(self._templates.items())
        return [template for _, template in sorted(items, key=lambda item: _sort_key(item[0]))]

    def __contains__(self, item: object) -> bool:
        """``(namespace, name, version) in registry`` or ``template in registry`` (by key)."""
        key = item.key if isinstance(item, TaskTemplate) else item
        if not isinstance(key, tuple):
            return False
        with self._lock:
            return key in self._templates

    def __iter__(self) -> Iterator[TaskTemplate]:
        return iter(self.list())

    def __len__(self) -> int:
        with self._lock:
            return len(self._templates)
