"""Handler names: Python import paths, and Ruby constant paths resolved through ``templates.handler_aliases``.

A Ruby Tasker template names its handlers with Ruby constants (``BlogExamples::Post01::ValidateCartHandler``).
Such a name is accepted as written when a template loads and is resolved only when a task needs the class,
by trying these candidates in order (``Mod::Sub::Klass`` below):

1. for each alias whose Ruby prefix matches (longest first): an alias naming the whole constant maps to
   its target (``pkg.mod:Class``); a module prefix ``Mod`` mapped to ``pkg`` gives
   ``pkg.sub.klass:Klass`` (one module per class, as Rails lays files out), ``pkg.sub:Klass`` and
   ``pkg:Klass``;
2. the default convention, every Ruby module underscored: ``mod.sub.klass:Klass`` then ``mod.sub:Klass``.

Underscoring follows Rails (``StepHandlers`` -> ``step_handlers``, ``Post01`` -> ``post01``,
``APIClient`` -> ``api_client``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import TypeVar

from tasker.errors import TemplateError
from tasker.templates.imports import check_import_path, import_class

__all__ = ["HandlerResolver", "check_handler_name", "is_ruby_constant", "underscore"]

T = TypeVar("T")

_RUBY_CONSTANT = re.compile(r"(?:::)?[A-Z][A-Za-z0-9_]*(?:::[A-Z][A-Za-z0-9_]*)*")
_ACRONYM = re.compile(r"([A-Z]+)([A-Z][a-z])")
_WORD = re.compile(r"([a-z\d])([A-Z])")


def is_ruby_constant(name: str) -> bool:
    """True for ``Mod::Klass`` or a lone ``Klass`` (a capitalised identifier without dots)."""
    return bool(_RUBY_CONSTANT.fullmatch(name))


def check_handler_name(name: str) -> None:
    """Raise ``ValueError`` unless ``name`` is a Python import path or a Ruby constant path."""
    if not is_ruby_constant(name):
        try:
            check_import_path(name)
        except ValueError as exc:
            raise ValueError(f"{exc}, or a Ruby constant such as 'Module::Class'") from exc


def underscore(word: str) -> str:
    """Rails' ``underscore`` of one constant name: ``ValidateCartHandler`` -> ``validate_cart_handler``."""
    return _WORD.sub(r"\1_\2", _ACRONYM.sub(r"\1_\2", word)).lower()


def qualify(name: str, module_namespace: str | None) -> str:
    """A Ruby constant as Ruby looks it up inside ``module_namespace`` (when it has no ``::`` itself)."""
    name = name.removeprefix("::")
    if module_namespace and "::" not in name and is_ruby_constant(name):
        return f"{module_namespace.removeprefix('::')}::{name}"
    return name


class HandlerResolver:
    """Resolves handler names to classes for one app; results are cached per (name, base class)."""

    def __init__(self, aliases: Mapping[str, str] | None = None) -> None:
        self.aliases = {ruby.removeprefix("::"): python for ruby, python in (aliases or {}).items()}
        self._cache: dict[tuple[str, type], type] = {}
        self._lock = threading.Lock()

    def candidates(self, ruby_name: str) -> list[str]:
        """The Python import paths tried for a Ruby constant, in order."""
        parts = ruby_name.removeprefix("::").split("::")
        klass = parts[-1]
        found: list[str] = []
        for size in range(len(parts), 0, -1):
            target = self.aliases.get("::".join(parts[:size]))
            if target is None:
                continue
            if size == len(parts):
                found.append(target if ":" in target else f"{target}:{klass}")
                continue
            modules = [target, *(underscore(p) for p in parts[size:-1])]
            found += [".".join([*modules, underscore(klass)]) + f":{klass}", ".".join(modules) + f":{klass}"]
            found.append(f"{target}:{klass}")
        modules = [underscore(p) for p in parts[:-1]]
        found.append(".".join([*modules, underscore(klass)]) + f":{klass}")
        if modules:
            found.append(".".join(modules) + f":{klass}")
        return list(dict.fromkeys(found))

    def resolve(self, name: str, base: type[T], field: str, *, source: str, step: str | None = None) -> type[T]:
        """The class ``name`` designates; ``TemplateError`` naming source, step and every candidate tried."""
        key = (name, base)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        if not is_ruby_constant(name):
            try:
                resolved = import_class(name, base, field)
            except TemplateError as exc:
                raise TemplateError(exc.reason, source=source, step=step, field=field) from exc
        else:
            resolved = self._resolve_ruby(name, base, field, source, step)
        with self._lock:
            self._cache[key] = resolved
        return resolved

    def _resolve_ruby(self, name: str, base: type[T], field: str, source: str, step: str | None) -> type[T]:
        tried: list[str] = []
        for candidate in self.candidates(name):
            try:
                return import_class(candidate, base, field)
            except TemplateError as exc:
                reason = exc.reason.split(": ", 1)[1] if exc.reason.startswith("cannot import") else exc.reason
                tried.append(f"{candidate} ({reason})")
        raise TemplateError(
            f"cannot resolve Ruby handler '{name}' (set templates.handler_aliases to map its module); "
            f"tried: {'; '.join(tried)}",
            source=source,
            step=step,
            field=field,
        )
