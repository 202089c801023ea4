"""TailSamplingProcessor: keep the task traces worth reading (errors, slow ones) and a fraction of the rest.

It wraps a downstream span processor (a ``BatchSpanProcessor`` usually) and decides per *local segment*: the
spans under a local root, a span with no parent or a remote parent (so a web request's segment and a task's
segments, which share a trace id, are decided separately). A segment is decided when its root and every span
of it have ended:

* keep it when a span has status ERROR or the root lasted ``slow_threshold_seconds`` or more; the trace id is
  then remembered as *kept* (bounded), so the trace's other segments in this process are kept too;
* keep it when the trace is already kept, or its id falls in ``keep_ratio`` (TraceIdRatio arithmetic, so every
  process agrees, and it agrees with head sampling at the same ratio);
* otherwise hold it: a later kept segment of the same trace releases it (a step span is exported when its
  task, decided later, turns out slow or failed); it is dropped when a segment rooted at a span named in
  ``final_span_names`` (the task span) ends unkept, or after ``decision_wait_seconds``.

Memory is bounded: at most ``max_traces`` segments are buffered (pending or held); beyond that the oldest is
decided with the data it has (``evicted`` counts them); at most ``max_spans_per_trace`` spans are buffered per
segment (``dropped_spans`` counts the rest; an ERROR among them still counts). ``force_flush``/``shutdown``
decide everything pending, then flush downstream. Unsampled (record-only) spans pass straight through.
Only spans that reach this processor can be kept: errors in a head-dropped trace are lost (use a head ratio of
1 with tail sampling, see docs/telemetry.md).
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import StatusCode

from tasker.telemetry.propagation import head_sampled

_SegmentKey = tuple[int, int]  # (trace id, local root span id)


@dataclass(eq=False)
class _Segment:
    key: _SegmentKey
    root_name: str
    created: float
    spans: list[ReadableSpan] = field(default_factory=list)
    open: int = 0
    root_ended: bool = False
    error: bool = False
    slow: bool = False
    held_since: float | None = None


class TailSamplingProcessor(SpanProcessor):
    """A SpanProcessor that buffers each local segment and forwards only the kept ones downstream."""

    def __init__(
        self,
        downstream: SpanProcessor,
        *,
        keep_ratio: float = 0.1,
        slow_threshold_seconds: float = 5.0,
        max_traces: int = 1000,
        max_spans_per_trace: int = 1000,
        decision_wait_seconds: float = 30.0,
        final_span_names: tuple[str, ...] = ("tasker.task.execution",),
        kept_trace_cache: int = 10_000,
    ) -> None:
        """Wrap ``downstream``; see the module docstring for the policy and bounds."""
        if not 0.0 <= keep_ratio <= 1.0:
            raise ValueError("keep_ratio must be within [0, 1]")
        if max_traces < 1 or max_spans_per_trace < 1:
            raise ValueError("max_traces and max_spans_per_trace must be at least 1")
        self.downstream = downstream
        self.keep_ratio = keep_ratio
        self.slow_ns = int(slow_threshold_seconds * 1e9)
        self.max_traces = max_traces
        self.max_spans_per_trace = max_spans_per_trace
        self.decision_wait = decision_wait_seconds
        self.final_span_names = frozenset(final_span_names)
        self._kept_cap = max(kept_trace_cache, 1)
        self._clock = time.monotonic
        self._reset()
        _live.add(self)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        # Buffered segments in creation order (pending and held): the oldest is evicted first.
        self._segments: OrderedDict[_SegmentKey, _Segment] = OrderedDict()
        self._span_segment: dict[tuple[int, int], _Segment] = {}  # (trace id, span id) of unended spans
        self._held: dict[int, list[_Segment]] = {}  # trace id -> undecided complete segments
        self._held_order: OrderedDict[_SegmentKey, _Segment] = OrderedDict()  # the same, oldest first
        self._kept: OrderedDict[int, None] = OrderedDict()  # trace ids kept for an error or slowness
        self.evicted = 0
        self.dropped_spans = 0
        self.late_spans = 0
        self.kept_segments = 0
        self.dropped_segments = 0

    # -- introspection ---------------------------------------------------------------------------------------

    @property
    def buffered_segments(self) -> int:
        """Segments held in memory (pending or waiting for their trace's decision)."""
        with self._lock:
            return len(self._segments)

    @property
    def buffered_spans(self) -> int:
        """Ended spans held in memory."""
        with self._lock:
            return sum(len(s.spans) for s in self._segments.values())

    def stats(self) -> dict[str, int]:
        """Counters: buffered, kept and dropped segments, evictions, spans over the per-segment cap, late spans."""
        with self._lock:
            return {
                "buffered_segments": len(self._segments),
                "kept_segments": self.kept_segments,
                "dropped_segments": self.dropped_segments,
                "evicted": self.evicted,
                "dropped_spans": self.dropped_spans,
                "late_spans": self.late_spans,
            }

    # -- SpanProcessor ---------------------------------------------------------------------------------------

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Register the span with its segment; forwarded at once (processors rarely act on start)."""
        context = span.get_span_context()
        if context.trace_flags.sampled:
            parent = span.parent
            with self._lock:
                segment = None
                if parent is not None and not parent.is_remote:
                    segment = self._span_segment.get((context.trace_id, parent.span_id))
                if segment is None and (parent is None or parent.is_remote):
                    key = (context.trace_id, context.span_id)
                    segment = _Segment(key, span.name, self._clock())
                    self._segments[key] = segment
                if segment is not None:  # else: a late child of a decided segment, judged on its own at end
                    segment.open += 1
                    self._span_segment[(context.trace_id, context.span_id)] = segment
                forward = self._enforce_cap()
            self._forward(forward)
        self.downstream.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        """Buffer the span; decide its segment when the segment is complete."""
        context = span.context
        if context is None or not context.trace_flags.sampled:
            self.downstream.on_end(span)
            return
        now = self._clock()
        with self._lock:
            segment = self._span_segment.pop((context.trace_id, context.span_id), None)
            error = span.status.status_code is StatusCode.ERROR
            if segment is None or segment.key not in self._segments:
                forward = self._late(span, error)
            else:
                forward = self._add(segment, span, error)
            forward += self._expire(now)
        self._forward(forward)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Decide every buffered segment with the data it has, then flush downstream."""
        self._forward(self._decide_all())
        return self.downstream.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Decide everything buffered, then shut downstream down."""
        self._forward(self._decide_all())
        self.downstream.shutdown()

    # -- decisions (called with the lock held; return the spans to forward) --------------------------------

    def _add(self, segment: _Segment, span: ReadableSpan, error: bool) -> list[ReadableSpan]:
        segment.open -= 1
        segment.error = segment.error or error
        if len(segment.spans) < self.max_spans_per_trace:
            segment.spans.append(span)
        else:
            self.dropped_spans += 1
        context = span.context
        if context is not None and (context.trace_id, context.span_id) == segment.key:
            segment.root_ended = True
            if span.start_time is not None and span.end_time is not None:
                segment.slow = span.end_time - span.start_time >= self.slow_ns
        if segment.root_ended and segment.open <= 0:
            return self._complete(segment)
        return []

    def _late(self, span: ReadableSpan, error: bool) -> list[ReadableSpan]:
        # A span whose segment was already decided or evicted: its own one-span segment.
        self.late_spans += 1
        trace_id = span.context.trace_id if span.context is not None else 0
        slow = (
            span.start_time is not None
            and span.end_time is not None
            and span.end_time - span.start_time >= self.slow_ns
        )
        if error or slow or trace_id in self._kept or self._ratio(trace_id):
            self.kept_segments += 1
            return [span]
        self.dropped_segments += 1
        return []

    def _ratio(self, trace_id: int) -> bool:
        return self.keep_ratio > 0 and head_sampled(trace_id, self.keep_ratio)

    def _judge(self, segment: _Segment) -> list[ReadableSpan] | None:
        """Keep ``segment`` if anything says so (error, slowness, a kept trace, the ratio); None otherwise."""
        trace_id = segment.key[0]
        if segment.error or segment.slow:
            self._remember_kept(trace_id)
            return self._keep(segment) + self._release(trace_id, keep=True)
        if trace_id in self._kept or self._ratio(trace_id):
            return self._keep(segment)
        return None

    def _complete(self, segment: _Segment) -> list[ReadableSpan]:
        kept = self._judge(segment)
        if kept is not None:
            return kept
        trace_id = segment.key[0]
        if segment.root_name in self.final_span_names:
            self._drop(segment)
            self._release(trace_id, keep=False)
            return []
        segment.held_since = self._clock()
        self._held.setdefault(trace_id, []).append(segment)
        self._held_order[segment.key] = segment
        return []

    def _remember_kept(self, trace_id: int) -> None:
        self._kept[trace_id] = None
        self._kept.move_to_end(trace_id)
        while len(self._kept) > self._kept_cap:
            self._kept.popitem(last=False)

    def _keep(self, segment: _Segment) -> list[ReadableSpan]:
        self._forget(segment)
        self.kept_segments += 1
        return segment.spans

    def _drop(self, segment: _Segment) -> None:
        self._forget(segment)
        self.dropped_segments += 1

    def _forget(self, segment: _Segment) -> None:
        self._segments.pop(segment.key, None)
        self._held_order.pop(segment.key, None)
        if segment.open > 0:  # decided early: its unended spans will arrive as late spans
            trace_id = segment.key[0]
            for key in [k for k, s in self._span_segment.items() if s is segment and k[0] == trace_id]:
                del self._span_segment[key]

    def _release(self, trace_id: int, *, keep: bool) -> list[ReadableSpan]:
        spans: list[ReadableSpan] = []
        for segment in self._held.pop(trace_id, []):
            if keep:
                spans += self._keep(segment)
            else:
                self._drop(segment)
        return spans

    def _decide_partial(self, segment: _Segment) -> list[ReadableSpan]:
        """Decide without waiting for more: held segments are dropped, pending ones judged on what they have."""
        trace_id = segment.key[0]
        if segment.held_since is not None:
            held = self._held.get(trace_id, [])
            if segment in held:
                held.remove(segment)
                if not held:
                    del self._held[trace_id]
            self._drop(segment)
            return []
        kept = self._judge(segment)
        if kept is None:
            self._drop(segment)
        return kept or []

    def _enforce_cap(self) -> list[ReadableSpan]:
        forward: list[ReadableSpan] = []
        while len(self._segments) > self.max_traces:
            _, oldest = next(iter(self._segments.items()))
            self.evicted += 1
            forward += self._decide_partial(oldest)
        return forward

    def _expire(self, now: float) -> list[ReadableSpan]:
        forward: list[ReadableSpan] = []
        while self._held_order:
            segment = next(iter(self._held_order.values()))
            if segment.held_since is None or now - segment.held_since < self.decision_wait:
                break
            forward += self._decide_partial(segment)
        return forward

    def _decide_all(self) -> list[ReadableSpan]:
        with self._lock:
            forward: list[ReadableSpan] = []
            for segment in list(self._segments.values()):
                if segment.key in self._segments:
                    forward += self._decide_partial(segment)
            self._span_segment.clear()
            return forward

    def _forward(self, spans: list[ReadableSpan]) -> None:
        # Outside the lock: downstream may export synchronously.
        for span in spans:
            self.downstream.on_end(span)


_live: weakref.WeakSet[TailSamplingProcessor] = weakref.WeakSet()


def _forget_in_child() -> None:
    # A forked child must not export (or hold) the parent's buffered spans.
    for processor in list(_live):
        processor._reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)
