"""Resolving a template's ``handler_class`` (or ``task_handler_class``) import path to a class."""

from __future__ import annotations

import importlib
from typing import TypeVar

from tasker.errors import TemplateError
from tasker.handlers.base import StepHandler

__all__ = ["check_import_path", "import_class", "import_handler"]

T = TypeVar("T")


def check_import_path(path: str) -> None:
    """Raise ``ValueError`` unless ``path`` looks like ``pkg.mod:Class`` or ``pkg.mod.Class``."""
    if ":" in path:
        module_name, _, attr_path = path.partition(":")
        if not module_name or not attr_path:
            raise ValueError(f"'{path}' is not an import path: expected 'package.module:Class'")
        parts = [*module_name.split("."), *attr_path.split(".")]
    else:
        parts = path.split(".")
        if len(parts) < 2:
            raise ValueError(
                f"'{path}' is not an import path: expected 'package.module:Class' or 'package.module.Class'"
            )
    bad = [part for part in parts if not part.isidentifier()]
    if bad:
        raise ValueError(f"'{path}' is not an import path: '{bad[0]}' is not a Python identifier")


def _error(path: str, reason: str, field: str) -> TemplateError:
    return TemplateError(f"cannot import {field} '{path}': {reason}", field=field)


def _import_module(path: str, field: str) -> tuple[object, list[str], ModuleNotFoundError | None]:
    """Import the module part of ``path``.

    Returns the module, the attribute names still to resolve, and (dotted form) the error of the
    longest module prefix that did not exist, reported if the attributes then cannot be found.
    """
    if ":" in path:
        module_name, _, attr_path = path.partition(":")
        try:
            return importlib.import_module(module_name), attr_path.split("."), None
        except Exception as exc:
            raise _error(path, f"{type(exc).__name__}: {exc}", field) from exc
    # Dotted form: the longest importable prefix is the module, the rest are attributes
    # (so ``pkg.mod.Outer.Inner`` works). A prefix is skipped only if it does not exist;
    # an error raised while importing an existing module is reported as is.
    parts = path.split(".")
    first_error: ModuleNotFoundError | None = None
    for split in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:split])
        try:
            return importlib.import_module(module_name), parts[split:], first_error
        except ModuleNotFoundError as exc:
            first_error = first_error or exc
            if exc.name is None or not (module_name == exc.name or module_name.startswith(exc.name + ".")):
                raise _error(path, f"{type(exc).__name__}: {exc}", field) from exc
        except Exception as exc:
            raise _error(path, f"{type(exc).__name__}: {exc}", field) from exc
    assert first_error is not None
    raise _error(path, f"{type(first_error).__name__}: {first_error}", field) from first_error


def import_handler(path: str) -> type[StepHandler]:
    """Import ``pkg.mod:Class`` (or ``pkg.mod.Class``; nested ``Outer.Inner`` allowed) as a StepHandler class.

    Raises ``TemplateError`` (field ``handler_class``) if the path is malformed, the import fails
    (the message includes the import error) or the object is not a ``StepHandler`` subclass.
    """
    return import_class(path, StepHandler, "handler_class")


def import_class(path: str, base: type[T], field: str) -> type[T]:
    """Import the class at ``path`` and check it subclasses ``base``; errors name ``field``."""
    if not isinstance(path, str):
        raise TemplateError(f"{field} must be a string, got {type(path).__name__}", field=field)
    try:
        check_import_path(path)
    except ValueError as exc:
        raise TemplateError(str(exc), field=field) from exc
    obj, attributes, missing_module = _import_module(path, field)
    for position, attribute in enumerate(attributes):
        try:
            obj = getattr(obj, attribute)
        except AttributeError as exc:
            if missing_module is not None:
                raise _error(path, f"ModuleNotFoundError: {missing_module}", field) from missing_module
            owner = path.replace(":", ".").rsplit(".", len(attributes) - position)[0]
            raise _error(path, f"'{owner}' has no attribute '{attribute}'", field) from exc
    if not (isinstance(obj, type) and issubclass(obj, base)):
        kind = f"class {obj.__module__}.{obj.__qualname__}" if isinstance(obj, type) else type(obj).__name__
        raise TemplateError(
            f"{field} '{path}' is not a subclass of {base.__module__}.{base.__qualname__} (got {kind})",
            field=field,
        )
    return obj
