"""Span ids chosen in advance: the SDK offers no public way to give a span a known id, so we wrap its generator.

The engine fixes a task's trace id, enqueue span id and task span id at ``create_task`` (see
:mod:`tasker.telemetry.propagation`), so that spans made later, in any process, can name them as parents.
:class:`PresetIdGenerator` wraps the SDK tracer's own generator and returns the ids set with
:func:`preset_ids` for the next span started in the current context, and delegates otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from opentelemetry import trace
from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.sdk.trace.id_generator import IdGenerator

logger = logging.getLogger(__name__)


class _Preset:
    __slots__ = ("span_id", "trace_id")

    def __init__(self, trace_id: int, span_id: int) -> None:
        self.trace_id = trace_id
        self.span_id = span_id


_preset: ContextVar[_Preset | None] = ContextVar("tasker_preset_span_ids", default=None)


class PresetIdGenerator(IdGenerator):
    """Returns the ids preset by :func:`preset_ids` once, else those of the wrapped generator."""

    def __init__(self, delegate: IdGenerator) -> None:
        self.delegate = delegate

    def generate_span_id(self) -> int:
        """The preset span id (consumed), or a new one."""
        preset = _preset.get()
        if preset is not None and preset.span_id:
            span_id, preset.span_id = preset.span_id, 0
            return span_id
        return self.delegate.generate_span_id()

    def generate_trace_id(self) -> int:
        """The preset trace id (consumed), or a new one; only asked for root spans."""
        preset = _preset.get()
        if preset is not None and preset.trace_id:
            trace_id, preset.trace_id = preset.trace_id, 0
            return trace_id
        return self.delegate.generate_trace_id()

    def is_trace_id_random(self) -> bool:
        """As the wrapped generator (preset trace ids are random too)."""
        return self.delegate.is_trace_id_random()


@contextmanager
def preset_ids(trace_id: int, span_id: int) -> Iterator[None]:
    """Make the next span started in this context use ``span_id`` (and ``trace_id`` if it is a root)."""
    token = _preset.set(_Preset(trace_id, span_id))
    try:
        yield
    finally:
        _preset.reset(token)


def install_preset_ids(tracer: trace.Tracer) -> bool:
    """Wrap an SDK tracer's id generator (idempotent); False for tracers of other implementations."""
    if not isinstance(tracer, SdkTracer):
        return False
    if not isinstance(tracer.id_generator, PresetIdGenerator):
        tracer.id_generator = PresetIdGenerator(tracer.id_generator)
    return True
