"""tasker's log records: trace ids of their task, the app's masker, and an optional JSON format.

:class:`TraceContextFilter` sets on every record ``trace_id`` (32 hex) and ``span_id`` (16 hex) of the current
span (``"0"`` outside one), ``task_id``, ``step_name``, ``attempt`` and ``correlation_id`` (None when not about
a task), and scrubs the message and the formatted traceback with the maskers of the live apps
(:meth:`~tasker.events.Masker.scrub`). :func:`install_log_correlation` attaches it to ``tasker`` and every
``tasker.*`` logger; ``Tasker`` does so when it is built.

While a pass runs, :func:`task_log_context` makes the task's span context current (the ids stored at
creation), so every engine record about the task — created, started, complete, failed — carries the task's
trace id, and a step attempt's records carry its step span (current while ``process()`` runs).
The correlation id is the trace id fixed at creation: it is the same in every process and retry, also in
``link`` propagation where each execution has a trace of its own.

:class:`JsonFormatter` writes one JSON object per record (``logging.format: json``, see
:func:`apply_log_format`). Applications put the ids in their own text format::

    handler = logging.StreamHandler()
    handler.addFilter(TraceContextFilter())      # also gives records of other libraries the fields
    handler.setFormatter(logging.Formatter("%(levelname)s [%(trace_id)s/%(span_id)s] %(name)s: %(message)s"))
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from opentelemetry import context as otel_context
from opentelemetry import trace

from tasker.config import DEFAULT_FILTER_PARAMETERS
from tasker.events import Masker
from tasker.telemetry.propagation import execution_span_context

#: Value of ``trace_id``/``span_id`` outside any span (as opentelemetry-instrumentation-logging uses).
NO_ID = "0"

#: Record attributes the filter sets (and :class:`JsonFormatter` writes).
FIELDS = ("task_id", "step_name", "attempt", "trace_id", "span_id", "correlation_id")


@dataclass(frozen=True, slots=True)
class _LogContext:
    task_id: int | None = None
    correlation_id: str | None = None
    step_name: str | None = None
    attempt: int | None = None


_NONE = _LogContext()
_CURRENT: contextvars.ContextVar[_LogContext | None] = contextvars.ContextVar("tasker_log_context", default=None)

# The maskers of live apps (log records are process-wide; each app's secrets are scrubbed from them).
_MASKERS: weakref.WeakSet[Masker] = weakref.WeakSet()
_DEFAULT_MASKER = Masker(DEFAULT_FILTER_PARAMETERS)


def _maskers() -> list[Masker]:
    return list(_MASKERS) or [_DEFAULT_MASKER]


def scrub(text: str) -> str:
    """``text`` through the masker of every live app."""
    for masker in _maskers():
        text = masker.scrub(text)
    return text


class TraceContextFilter(logging.Filter):
    """Sets the trace and task fields on records (keeps values already set) and masks their text."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add the fields and scrub the message and traceback; never drops a record."""
        if getattr(record, "_tasker_done", False):
            return True
        record._tasker_done = True
        if not hasattr(record, "trace_id"):
            context = trace.get_current_span().get_span_context()
            valid = context.is_valid
            record.trace_id = f"{context.trace_id:032x}" if valid else NO_ID
            record.span_id = f"{context.span_id:016x}" if valid else NO_ID
        current = _CURRENT.get() or _NONE
        for name in ("task_id", "step_name", "attempt", "correlation_id"):
            if not hasattr(record, name):
                setattr(record, name, getattr(current, name))
        message = record.getMessage()
        masked = scrub(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
        return True


_FILTER = TraceContextFilter()


def install_log_correlation(prefix: str = "tasker", masker: Masker | None = None) -> int:
    """Attach the filter to ``prefix`` and every existing ``prefix.*`` logger; returns how many got it.

    ``masker`` (an app's) is used on every record from now on, as long as it lives. Logger filters apply
    only to records logged on that very logger, hence one per module logger. Idempotent.
    """
    if masker is not None:
        _MASKERS.add(masker)
    names = [prefix, *(n for n in list(logging.Logger.manager.loggerDict) if n.startswith(prefix + "."))]
    added = 0
    for name in names:
        log = logging.getLogger(name)
        if not any(isinstance(f, TraceContextFilter) for f in log.filters):
            log.addFilter(_FILTER)
            added += 1
    return added


@contextlib.contextmanager
def task_log_context(
    task_id: int, trace_context: Mapping[str, Any] | None, propagation: Literal["parent", "link"] = "parent"
) -> Iterator[None]:
    """Within: records carry ``task_id`` and its correlation id, and the task's span context is current."""
    try:
        span_context = execution_span_context(trace_context or {}, propagation)
    except (KeyError, TypeError, ValueError):  # no (or malformed) stored ids: records keep the current ids
        span_context = trace.INVALID_SPAN_CONTEXT
    correlation = str(trace_context.get("trace_id")) if trace_context and trace_context.get("trace_id") else None
    log_token = _CURRENT.set(_LogContext(task_id, correlation))
    otel_token = (
        otel_context.attach(trace.set_span_in_context(trace.NonRecordingSpan(span_context)))
        if span_context.is_valid
        else None
    )
    try:
        yield
    finally:
        if otel_token is not None:
            otel_context.detach(otel_token)
        _CURRENT.reset(log_token)


def bind_step(step_name: str, attempt: int) -> None:
    """From now on in this context, records carry ``step_name``/``attempt`` (run each step in its own context)."""
    current = _CURRENT.get() or _NONE
    _CURRENT.set(_LogContext(current.task_id, current.correlation_id, step_name, attempt))


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, the task fields, and the traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line."""
        _FILTER.filter(record)  # records of other loggers get the fields too
        document: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        document.update((name, getattr(record, name, None)) for name in FIELDS)
        if record.exc_info or record.exc_text:
            document["exception"] = record.exc_text or scrub(self.formatException(record.exc_info))  # type: ignore[arg-type]
        return json.dumps(document, default=str)


def apply_log_format(fmt: Literal["text", "json"]) -> None:
    """``json``: the root logger's handlers (a stderr one when it has none) write :class:`JsonFormatter` lines."""
    if fmt != "json":
        return
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    for handler in root.handlers:
        if not isinstance(handler.formatter, JsonFormatter):
            handler.setFormatter(JsonFormatter())
