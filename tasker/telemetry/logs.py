"""Trace ids in log records: ``record.trace_id`` (32 hex) and ``record.span_id`` (16 hex) of the current span.

:class:`TraceContextFilter` adds both attributes (``"0"`` outside a span) and lets every record through.
:func:`install_log_correlation` attaches one to tasker's own loggers (``tasker`` and every ``tasker.*``
logger), so the engine's records carry the ids of the step or task they were logged in, without touching
the root logger, handlers or the record factory. Applications put the ids in their format::

    handler = logging.StreamHandler()
    handler.addFilter(TraceContextFilter())      # also gives records of other libraries the fields
    handler.setFormatter(logging.Formatter("%(levelname)s [%(trace_id)s/%(span_id)s] %(name)s: %(message)s"))
"""

from __future__ import annotations

import logging

from opentelemetry import trace

#: Value of ``trace_id``/``span_id`` outside any span (as opentelemetry-instrumentation-logging uses).
NO_ID = "0"


class TraceContextFilter(logging.Filter):
    """Sets ``record.trace_id``/``record.span_id`` from the current span (keeps values already set)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add the ids; never drops a record."""
        if not hasattr(record, "trace_id"):
            context = trace.get_current_span().get_span_context()
            if context.is_valid:
                record.trace_id = f"{context.trace_id:032x}"
                record.span_id = f"{context.span_id:016x}"
            else:
                record.trace_id = NO_ID
                record.span_id = NO_ID
        return True


_FILTER = TraceContextFilter()


def install_log_correlation(prefix: str = "tasker") -> int:
    """Attach the filter to ``prefix`` and every existing ``prefix.*`` logger; returns how many got it.

    Logger filters apply only to records logged on that very logger, hence one per module logger.
    Idempotent; tasker's modules are all imported by then (``tasker`` imports them).
    """
    names = [prefix, *(n for n in list(logging.Logger.manager.loggerDict) if n.startswith(prefix + "."))]
    added = 0
    for name in names:
        log = logging.getLogger(name)
        if not any(isinstance(f, TraceContextFilter) for f in log.filters):
            log.addFilter(_FILTER)
            added += 1
    return added
