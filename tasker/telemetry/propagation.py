"""The trace context of a task: decided once at creation, stored with the task, read by every process.

At ``create_task`` the engine fixes the ids of the task's trace: the trace id (the caller's, when a
valid parent context exists), the span id of the ``tasker.task.enqueue`` span and the span id the
``tasker.task.execution`` span will have, plus the head-sampling decision. Step spans in any process,
and the task span emitted when the task finishes, hang off these stored ids. Carriers are W3C
``traceparent``/``tracestate`` read and written with ``opentelemetry.propagate``.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Mapping
from typing import Any, Literal

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanContext, TraceFlags

logger = logging.getLogger(__name__)

_MAX_ID64 = 2**64 - 1
#: Longer ``traceparent`` values are refused (version 00 is 55 characters; later versions may append fields).
MAX_TRACEPARENT_LENGTH = 512


def normalize_carrier(carrier: Mapping[Any, Any] | None) -> dict[str, str]:
    """Lower-case string keys and string values only (bytes decoded); anything else is dropped."""
    normalized: dict[str, str] = {}
    for key, value in (carrier or {}).items():
        if isinstance(key, bytes):
            key = key.decode("latin-1")
        if not isinstance(key, str):
            continue
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if isinstance(value, str):
            normalized[key.lower()] = value
    return normalized


def extract_span_context(carrier: Mapping[Any, Any] | None) -> SpanContext | None:
    """The valid remote span context in ``carrier``, or None (malformed input never raises)."""
    normalized = normalize_carrier(carrier)
    if len(normalized.get("traceparent", "")) > MAX_TRACEPARENT_LENGTH:
        return None  # padded or garbage: W3C propagators accept surrounding whitespace of any length
    try:
        ctx = propagate.extract(normalized, context=otel_context.Context())
    except Exception:  # a propagator choking on garbage must not fail a task
        logger.warning("ignoring malformed trace context carrier", exc_info=True)
        return None
    span_context = trace.get_current_span(ctx).get_span_context()
    return span_context if span_context.is_valid else None


def head_sampled(trace_id: int, ratio: float) -> bool:
    """TraceIdRatioBased arithmetic, so every process agrees on the same trace."""
    return (trace_id & _MAX_ID64) < round(ratio * 2**64)


def new_task_trace_context(explicit: Mapping[str, Any] | None, sampling_ratio: float) -> dict[str, Any]:
    """Fix the trace ids and sampling decision of a new task.

    The parent is the explicit carrier when given (a malformed one is logged and starts a fresh
    trace), else the caller's current span.
    """
    parent: SpanContext | None
    if explicit is not None:
        parent = extract_span_context(explicit)
        if parent is None:
            # Only the traceparent: a carrier may be a whole set of request headers (cookies, Authorization).
            value = normalize_carrier(explicit).get("traceparent")
            logger.warning("malformed trace context (traceparent %.80r): starting a new trace", value)
    else:
        current = trace.get_current_span().get_span_context()
        parent = current if current.is_valid else None
    if parent is not None:
        trace_id = parent.trace_id
        sampled = parent.trace_flags.sampled
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(trace.NonRecordingSpan(parent)))
    else:
        trace_id = random.getrandbits(128) or 1
        sampled = head_sampled(trace_id, sampling_ratio)
        carrier = {}
    return {
        "trace_id": f"{trace_id:032x}",
        "enqueue_span_id": f"{random.getrandbits(64) or 1:016x}",
        "task_span_id": f"{random.getrandbits(64) or 1:016x}",
        "sampled": bool(sampled),
        "parent": carrier,
    }


def with_new_task_span(trace_context: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The same trace with a fresh task span id: a task revived after failing gets a new execution span."""
    if not trace_context:
        return None
    return {**trace_context, "task_span_id": f"{random.getrandbits(64) or 1:016x}"}


def task_span_context(trace_context: Mapping[str, Any]) -> SpanContext:
    """The (remote) span context of the task's execution span."""
    return _span_context(trace_context, "task_span_id")


def enqueue_span_context(trace_context: Mapping[str, Any]) -> SpanContext:
    """The (remote) span context of the task's enqueue span."""
    return _span_context(trace_context, "enqueue_span_id")


def _span_context(trace_context: Mapping[str, Any], key: str) -> SpanContext:
    flags = TraceFlags(TraceFlags.SAMPLED if trace_context.get("sampled") else TraceFlags.DEFAULT)
    return SpanContext(
        trace_id=int(trace_context["trace_id"], 16),
        span_id=int(trace_context[key], 16),
        is_remote=True,
        trace_flags=flags,
    )


def execution_trace_id(trace_context: Mapping[str, Any], propagation: Literal["parent", "link"]) -> int:
    """Trace id of the task and step spans: the stored one, or in link mode one derived from it.

    The derived id keeps the stored id's low 64 bits, so TraceIdRatio samplers decide it the same way.
    """
    trace_id = int(trace_context["trace_id"], 16)
    if propagation == "parent":
        return trace_id
    seed = bytes.fromhex(f"{trace_id:032x}{int(trace_context['task_span_id'], 16):016x}")
    high = int.from_bytes(hashlib.blake2b(seed, digest_size=8, person=b"tasker-link").digest(), "big")
    return (high << 64) | (trace_id & _MAX_ID64)


def execution_span_context(trace_context: Mapping[str, Any], propagation: Literal["parent", "link"]) -> SpanContext:
    """The task span's context in the execution trace (the parent of step spans; valid in any process)."""
    stored = task_span_context(trace_context)
    return SpanContext(
        trace_id=execution_trace_id(trace_context, propagation),
        span_id=stored.span_id,
        is_remote=True,
        trace_flags=stored.trace_flags,
    )


def traceparent(trace_context: Mapping[str, Any]) -> dict[str, str]:
    """A W3C carrier pointing at the task span (for message headers and logs)."""
    carrier: dict[str, str] = {}
    span = trace.NonRecordingSpan(task_span_context(trace_context))
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    return carrier
