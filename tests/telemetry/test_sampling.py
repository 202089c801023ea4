"""The in-process tail sampler: errors and slow segments kept, fast OK ones dropped, memory bounded."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, Status, StatusCode, TraceFlags

from tasker import Tasker
from tasker.telemetry import TailSamplingProcessor, TelemetrySubscriber
from tests.support.handlers import template
from tests.telemetry.conftest import Traced

MS = 1_000_000


class Pipeline:
    """A provider whose spans go through a TailSamplingProcessor to an in-memory exporter."""

    def __init__(self, **options: float) -> None:
        self.exporter = InMemorySpanExporter()
        self.sampler = TailSamplingProcessor(SimpleSpanProcessor(self.exporter), **options)  # type: ignore[arg-type]
        self.provider = TracerProvider(shutdown_on_exit=False)
        self.provider.add_span_processor(self.sampler)
        self.tracer = self.provider.get_tracer("test")
        self.now = 0.0
        self.sampler._clock = lambda: self.now

    def names(self) -> list[str]:
        return sorted(s.name for s in self.exporter.get_finished_spans())

    def segment(
        self,
        name: str,
        duration_ms: int = 1,
        *,
        error: bool = False,
        children: int = 0,
        remote_parent: SpanContext | None = None,
    ) -> None:
        """One local root (optionally under a remote parent) with ``children`` child spans, ended at once."""
        context = trace.set_span_in_context(NonRecordingSpan(remote_parent)) if remote_parent is not None else None
        root = self.tracer.start_span(name, context=context, start_time=1_000 * MS)
        with trace.use_span(root, end_on_exit=False):
            for i in range(children):
                child = self.tracer.start_span(f"{name}.child{i}", start_time=1_000 * MS)
                if error and i == children - 1:
                    child.set_status(Status(StatusCode.ERROR, "boom"))
                child.end(end_time=1_000 * MS + MS)
        if error and not children:
            root.set_status(Status(StatusCode.ERROR, "boom"))
        root.end(end_time=1_000 * MS + duration_ms * MS)


@pytest.fixture
def pipeline() -> Iterator[Callable[..., Pipeline]]:
    made: list[Pipeline] = []

    def factory(**options: float) -> Pipeline:
        made.append(Pipeline(**options))
        return made[-1]

    yield factory
    for p in made:
        p.provider.shutdown()


def remote(trace_id: int, span_id: int = 0x2222) -> SpanContext:
    return SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))


def test_error_and_slow_segments_are_kept_fast_ok_ones_dropped(pipeline: Callable[..., Pipeline]) -> None:
    p = pipeline(keep_ratio=0.0, slow_threshold_seconds=0.05)
    p.segment("err", error=True, children=2)
    p.segment("slow", duration_ms=80)
    p.segment("fast", duration_ms=1, children=3)
    p.sampler.force_flush()
    assert p.names() == ["err", "err.child0", "err.child1", "slow"]
    assert p.sampler.buffered_segments == 0
    stats = p.sampler.stats()
    assert stats["kept_segments"] == 2 and stats["dropped_segments"] == 1


def test_keep_ratio_keeps_a_deterministic_fraction(pipeline: Callable[..., Pipeline]) -> None:
    everything = pipeline(keep_ratio=1.0, slow_threshold_seconds=10)
    everything.segment("fast", children=1)
    assert everything.names() == ["fast", "fast.child0"]  # decided when the segment completed, not at flush
    half = pipeline(keep_ratio=0.5, slow_threshold_seconds=10)
    low, high = 0x1 << 64 | 0x10, 0x1 << 64 | (2**64 - 1)  # low 64 bits below / above the 0.5 threshold
    half.segment("low", remote_parent=remote(low))
    half.segment("high", remote_parent=remote(high))
    half.sampler.force_flush()
    assert half.names() == ["low"]


def test_a_slow_task_span_releases_its_step_segments_held_until_then(pipeline: Callable[..., Pipeline]) -> None:
    p = pipeline(keep_ratio=0.0, slow_threshold_seconds=0.05)
    trace_id = 0xABC << 64 | 0xDEF
    for step in ("a", "b"):  # step spans: local roots under the stored (remote) task span context
        p.segment(f"step {step}", remote_parent=remote(trace_id), children=1)
    assert p.names() == [] and p.sampler.buffered_segments == 2
    p.segment("tasker.task.execution", duration_ms=90, remote_parent=remote(trace_id, 0x1111))
    assert p.names() == ["step a", "step a.child0", "step b", "step b.child0", "tasker.task.execution"]
    assert p.sampler.buffered_segments == 0


def test_a_fast_ok_task_span_drops_its_held_segments(pipeline: Callable[..., Pipeline]) -> None:
    p = pipeline(keep_ratio=0.0, slow_threshold_seconds=0.05)
    trace_id = 0xABC << 64 | 0xDEF
    p.segment("step a", remote_parent=remote(trace_id))
    p.segment("tasker.task.execution", duration_ms=2, remote_parent=remote(trace_id, 0x1111))
    assert p.names() == [] and p.sampler.buffered_segments == 0


def test_after_an_error_the_traces_other_segments_are_kept(pipeline: Callable[..., Pipeline]) -> None:
    p = pipeline(keep_ratio=0.0, slow_threshold_seconds=10)
    trace_id = 0xABC << 64 | 0xDEF
    p.segment("before", remote_parent=remote(trace_id))
    p.segment("failed attempt", error=True, remote_parent=remote(trace_id))
    p.segment("after", remote_parent=remote(trace_id))
    assert p.names() == ["after", "before", "failed attempt"]


def test_held_segments_are_dropped_after_the_decision_wait(pipeline: Callable[..., Pipeline]) -> None:
    p = pipeline(keep_ratio=0.0, slow_threshold_seconds=10, decision_wait_seconds=30)
    p.segment("web request", remote_parent=remote(0x5 << 64 | 0x5))
    assert p.sampler.buffered_segments == 1
    p.now = 31.0
    p.segment("unrelated", remote_parent=remote(0x6 << 64 | 0x6))  # an on_end sweeps expired holds
    assert p.sampler.buffered_segments == 1 and p.names() == []


def test_memory_stays_within_the_caps_and_evictions_are_counted(pipeline: Callable[..., Pipeline]) -> None:
    p = pipeline(keep_ratio=0.0, slow_threshold_seconds=10, max_traces=10, max_spans_per_trace=5)
    open_roots = []
    for i in range(60):
        open_roots.append(p.tracer.start_span(f"open {i}", start_time=1_000 * MS))  # never ended (yet)
        p.segment(f"held {i}", remote_parent=remote((i + 1) << 64 | (2**64 - 1)))
        assert p.sampler.buffered_segments <= 10
    assert p.sampler.evicted >= 110
    # spans of an evicted open segment that end later are judged on their own
    open_roots[0].set_status(Status(StatusCode.ERROR, "late failure"))
    open_roots[0].end(end_time=1_000 * MS + MS)
    assert p.names() == ["open 0"] and p.sampler.stats()["late_spans"] == 1
    # a big segment: only max_spans_per_trace spans are buffered; an error beyond the cap still counts
    p.segment("big", error=True, children=20)
    assert p.sampler.stats()["dropped_spans"] == 16
    assert len([n for n in p.names() if n.startswith("big")]) == 5
    for span in open_roots[1:]:
        span.end()
    p.sampler.force_flush()
    assert p.sampler.buffered_segments == 0 and p.sampler.buffered_spans == 0


def test_unsampled_spans_pass_through_untouched(pipeline: Callable[..., Pipeline]) -> None:
    p = pipeline(keep_ratio=0.0)
    parent = SpanContext(0x7 << 64, 0x7, is_remote=True, trace_flags=TraceFlags(TraceFlags.DEFAULT))
    p.segment("unsampled", remote_parent=parent)
    assert p.sampler.buffered_segments == 0 and p.names() == []


def test_tail_sampling_a_real_task(make_app: Callable[..., Tasker]) -> None:
    exporter = InMemorySpanExporter()
    sampler = TailSamplingProcessor(SimpleSpanProcessor(exporter), keep_ratio=0.0, slow_threshold_seconds=60)
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(sampler)
    app = make_app()
    subscriber = app.subscribe(TelemetrySubscriber(tracer_provider=provider))
    traced = Traced(app, provider, exporter, subscriber, "tail")  # type: ignore[arg-type]

    _, status = traced.run(template("fine", {"a": [], "b": ["a"]}))
    assert status == "complete"
    provider.force_flush()
    assert traced.spans() == []  # a fast, successful task: nothing kept

    _, status = traced.run(
        template("broken", {"a": [], "b": ["a"], "c": ["b"]}, {"b": {"fail_times": 9}}, retry_limit=1)
    )
    assert status == "error"
    provider.force_flush()
    # the failure keeps the whole task trace, including the enqueue span and the step that succeeded first
    assert sorted(s.name for s in traced.spans()) == [
        "tasker.step.execution", "tasker.step.execution", "tasker.task.enqueue", "tasker.task.execution",
    ]  # fmt: skip
    assert sampler.buffered_segments == 0
    provider.shutdown()
