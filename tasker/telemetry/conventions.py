"""Semantic-convention values tasker computes the same way for spans, metrics and events."""

from __future__ import annotations


def error_type(exception: BaseException | type[BaseException]) -> str:
    """``error.type``: the exception's fully qualified class name (builtins unqualified: ``ValueError``)."""
    cls = exception if isinstance(exception, type) else type(exception)
    module = cls.__module__
    return cls.__qualname__ if module in ("builtins", "__main__") else f"{module}.{cls.__qualname__}"
