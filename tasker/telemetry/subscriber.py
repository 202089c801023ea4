"""TelemetrySubscriber: the task's lifecycle events as OpenTelemetry spans, one trace per task.

The ids of a task's trace are fixed and stored at ``create_task`` (:mod:`tasker.telemetry.propagation`), so
every span can be made in whatever process sees the event, without holding anything open across passes::

    tasker.task.enqueue    PRODUCER  on observability.task.enqueue; id = stored enqueue_span_id, ended at once
    tasker.task.execution  CONSUMER  on task.completed / task.failed / task.cancelled; id = stored task_span_id,
                                     from the task's first run to now, child of the enqueue span
    tasker.step.execution  INTERNAL  per attempt, step.before_handle -> step.completed / step.failed, child of
                                     the task span; the current span while ``process()`` runs

``propagation="link"`` makes the task execution its own trace (root = the task span, linked to the enqueue
span); its trace id is derived from the stored ids, so step spans from every process and retry still nest under
the one task span. Head sampling is decided once per task (``trace_context["sampled"]``): for an unsampled task
no span is made and a non-sampled parent context is made current around ``process()``, so ``ParentBased``
samplers drop the handler's own spans too. Attribute values go through the app's Masker and a free-text
scrubber (:mod:`tasker.telemetry.redaction`).

Span ids are chosen with :class:`~tasker.telemetry.ids.PresetIdGenerator`, installed on the SDK tracer this
subscriber obtains. A tracer from another API implementation cannot take preset ids: spans still nest through
the stored remote parent contexts and share the trace id, but the enqueue and task spans get ids of their own
(a step span's parent then is the stored task span id, which no exported span carries).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode

from tasker.config import DEFAULT_FILTER_PARAMETERS
from tasker.errors import ConfigurationError
from tasker.events import BaseSubscriber, Event, EventBus, Masker
from tasker.telemetry.ids import install_preset_ids, preset_ids
from tasker.telemetry.logs import install_log_correlation
from tasker.telemetry.propagation import (
    enqueue_span_context,
    execution_span_context,
    extract_span_context,
    task_span_context,
)
from tasker.telemetry.redaction import AttributeRedactor, AttributeValue

logger = logging.getLogger(__name__)

ENQUEUE_SPAN = "tasker.task.enqueue"
TASK_SPAN = "tasker.task.execution"
STEP_SPAN = "tasker.step.execution"

#: The instrumentation scope of tasker's tracer (its version is tasker's, see :func:`scope_version`).
SCOPE_NAME = "tasker"


def scope_version() -> str:
    """tasker's version, for the instrumentation scope."""
    from tasker import __version__

    return __version__


Propagation = Literal["parent", "link"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_OK = Status(StatusCode.OK)


@dataclass(slots=True)
class _OpenStep:
    """One step attempt between step.before_handle and its outcome event."""

    task_id: int
    span: trace.Span | None  # None for an unsampled task: only a context was made current
    current: trace.Span  # the span made current around process()
    token: object | None  # the attach token, None once detached
    probe: contextvars.Token[bool] | None  # set with the attach, in the same context (see _detach)
    end_ns: int | None = None  # set when the attempt failed and the span waits for its backoff event


@dataclass(frozen=True, slots=True)
class _TaskTrace:
    """What a task's stored trace context gives its step spans, derived once per task and cached."""

    sampled: bool
    parent: trace.NonRecordingSpan  # the task span, a remote parent valid in any process
    context: otel_context.Context  # a context holding only ``parent``


#: Derived values cached per subscriber (task traces, task attributes) before the cache is emptied.
_CACHE_LIMIT = 1024
_MISSING: Any = object()
_EMPTY = otel_context.Context()
# Set in the context where a step span is attached (see TelemetrySubscriber._detach).
_ATTACHED: contextvars.ContextVar[bool] = contextvars.ContextVar("tasker_step_span_attached", default=False)


def _recorded_end(event: Mapping[str, Any], span: trace.Span) -> int | None:
    """When the attempt ended as recorded (``completed_at``), if known and within the span; None means now.

    The engine publishes an outcome after the transaction that records it, which may also claim the steps
    depending on it: their spans start at their claim, so this span ends when the outcome was taken.
    """
    end = _ns(event.get("completed_at"))
    start = getattr(span, "start_time", None)
    if end is None or end > time.time_ns() or (isinstance(start, int) and end < start):
        return None
    return end


def _ns(value: Any) -> int | None:
    """Epoch nanoseconds of an ISO-8601 timestamp (naive means UTC), or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MICROSECOND * 1_000


def _valid_trace_context(event: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The event's stored trace context when it has well-formed ids, else None."""
    tc = event.get("trace_context")
    if not isinstance(tc, Mapping):
        return None
    try:
        if task_span_context(tc).is_valid and enqueue_span_context(tc).is_valid:
            return tc
    except (KeyError, TypeError, ValueError):
        pass
    return None


class TelemetrySubscriber(BaseSubscriber):
    """Turns task and step lifecycle events into OpenTelemetry spans (one trace per task)."""

    subscribe_to = (
        "observability.task.enqueue",
        "step.retry_requested",
        "step.before_handle",
        "step.completed",
        "step.failed",
        "observability.step.backoff",
        "workflow.steps_execution_completed",
        "task.completed",
        "task.failed",
        "task.cancelled",
    )

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None = None,
        *,
        propagation: Propagation | None = None,
        masker: Masker | None = None,
        name: str | None = None,
        events: Sequence[str] | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        """Create the subscriber; without ``tracer_provider`` the global one is used (looked up lazily).

        The tracer's instrumentation scope is ``tasker`` with tasker's version (``service.name`` and
        ``service.version`` belong to the provider's resource, see :func:`~tasker.telemetry.build_tracer_provider`).
        ``masker`` defaults to the Masker of the event bus the subscriber is subscribed to. ``name``,
        ``events`` and ``config`` (``propagation``) let a subscriptions YAML file declare it like any other
        subscriber; explicit arguments win over ``config``.
        """
        super().__init__(name=name or "TelemetrySubscriber", events=events, config=config)
        propagation = propagation or self.config.get("propagation", "parent")
        if propagation not in ("parent", "link"):
            raise ConfigurationError(f"telemetry propagation must be 'parent' or 'link', not {propagation!r}")
        self.propagation: Propagation = propagation
        self._provider = tracer_provider
        self._tracer: trace.Tracer | None = None
        self._redactor = AttributeRedactor(masker) if masker is not None else None
        self._lock = threading.Lock()
        self._steps: dict[tuple[int, int], _OpenStep] = {}
        self._retries: dict[int, tuple[int, dict[str, Any]]] = {}
        # Step events of one task repeat its trace context and its attributes: derive and clean them once.
        self._task_traces: dict[tuple[Any, ...], _TaskTrace | None] = {}
        self._task_attributes_cache: dict[tuple[Any, ...], dict[str, AttributeValue]] = {}
        self._warned_ids = False
        install_log_correlation()
        _live.add(self)

    # -- wiring ----------------------------------------------------------------------------------------------

    @property
    def tracer_provider(self) -> trace.TracerProvider:
        """The provider spans go to (the global one when none was given)."""
        return self._provider if self._provider is not None else trace.get_tracer_provider()

    def subscribe(self, bus: EventBus) -> None:
        """Subscribe to ``bus``, adopting its Masker when none was given."""
        if self._redactor is None:
            self._redactor = AttributeRedactor(bus.masker)
        super().subscribe(bus)

    def tracer(self) -> trace.Tracer | None:
        """The tracer in use; None while the global provider is still the API's unset placeholder."""
        tracer = self._tracer
        if tracer is not None:
            return tracer
        provider = self.tracer_provider
        if isinstance(provider, trace.ProxyTracerProvider):
            return None  # no global provider yet: look again at the next event
        tracer = provider.get_tracer(SCOPE_NAME, scope_version())
        if not install_preset_ids(tracer):
            logger.info("tracer %r takes no preset span ids: task and enqueue spans get ids of their own", tracer)
        self._tracer = tracer
        return tracer

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Flush the provider's span processors (when the provider supports it)."""
        flush = getattr(self.tracer_provider, "force_flush", None)
        return bool(flush(timeout_millis)) if callable(flush) else True

    def close(self) -> None:
        """End every step span still open (their outcome never arrived) and forget them."""
        with self._lock:
            entries = list(self._steps.values())
            self._steps.clear()
            self._retries.clear()
        for entry in entries:
            self._abandon(entry)

    def open_span_count(self) -> int:
        """Step attempts currently holding a span or an attached context (0 when idle: nothing leaks)."""
        with self._lock:
            return len(self._steps) + len(self._retries)

    def _after_fork(self) -> None:
        # Spans and attach tokens of the parent's steps belong to the parent.
        self._lock = threading.Lock()
        self._steps = {}
        self._retries = {}

    # -- attributes ------------------------------------------------------------------------------------------

    def _redaction(self) -> AttributeRedactor:
        redactor = self._redactor
        if redactor is None:  # used without being subscribed to a bus: the default sensitive keys
            redactor = self._redactor = AttributeRedactor(Masker(DEFAULT_FILTER_PARAMETERS))
        return redactor

    def _clean(self, attributes: Mapping[str, Any]) -> dict[str, AttributeValue]:
        return self._redaction().attributes(attributes)

    def _text(self, text: Any) -> str:
        return self._redaction().scrub(str(text))

    @staticmethod
    def _task_attributes(event: Mapping[str, Any], operation_type: str, operation_name: str) -> dict[str, Any]:
        namespace, name = event.get("namespace"), event.get("task_name")
        task_id = event.get("task_id")
        return {
            "tasker.task.id": task_id,
            "tasker.task.name": name,
            "tasker.task.namespace": namespace,
            "tasker.task.version": event.get("version"),
            "messaging.system": "tasker",
            "messaging.operation.type": operation_type,
            "messaging.operation.name": operation_name,
            "messaging.destination.name": f"{namespace}.{name}",
            "messaging.message.id": str(task_id),
        }

    def _step_attributes(self, event: Mapping[str, Any], attempt: int) -> dict[str, AttributeValue]:
        """The step span's attributes, cleaned; the task's part is cleaned once per task."""
        key = (event.get("task_id"), event.get("namespace"), event.get("task_name"), event.get("version"))
        cache = self._task_attributes_cache
        task = _cached(cache, key)
        if task is _MISSING:
            task = self._clean(self._task_attributes(event, "process", "process"))
            _store(cache, key, task)
        step = {
            "tasker.step.id": event.get("step_id"),
            "tasker.step.name": event.get("step_name"),
            "tasker.step.attempt": attempt,
            "tasker.step.retry_limit": event.get("retry_limit"),
        }
        return {**task, **self._clean(step)}

    # -- contexts --------------------------------------------------------------------------------------------

    def _task_trace(self, event: Mapping[str, Any]) -> _TaskTrace | None:
        """The task's trace as its step spans need it, or None when the event has no well-formed context."""
        tc = event.get("trace_context")
        if not isinstance(tc, Mapping):
            return None
        key = (tc.get("trace_id"), tc.get("task_span_id"), tc.get("enqueue_span_id"), tc.get("sampled"))
        cache = self._task_traces
        task_trace: _TaskTrace | None = _cached(cache, key)
        if task_trace is not _MISSING:
            return task_trace
        task_trace = None
        if _valid_trace_context(event) is not None:
            parent = trace.NonRecordingSpan(self._task_span_context(tc))
            task_trace = _TaskTrace(bool(tc.get("sampled")), parent, trace.set_span_in_context(parent, _EMPTY))
        _store(cache, key, task_trace)
        return task_trace

    def _task_span_context(self, tc: Mapping[str, Any]) -> SpanContext:
        """The task span's context, the parent of step spans (as a remote context, valid in any process)."""
        return execution_span_context(tc, self.propagation)

    # -- enqueue ---------------------------------------------------------------------------------------------

    def handle_observability_task_enqueue(self, event: Event) -> None:
        """The PRODUCER span of the task's creation, with the stored ids, child of the caller's context."""
        tc = _valid_trace_context(event)
        if tc is None or not tc.get("sampled"):
            return
        tracer = self.tracer()
        if tracer is None:
            return
        caller = extract_span_context(tc.get("parent") if isinstance(tc.get("parent"), Mapping) else None)
        parent = (
            trace.set_span_in_context(trace.NonRecordingSpan(caller), otel_context.Context())
            if caller is not None
            else otel_context.Context()
        )
        attributes = self._task_attributes(event, "send", "enqueue")
        if event.get("queue"):
            attributes["tasker.queue"] = event.get("queue")
        expected = enqueue_span_context(tc)
        with preset_ids(expected.trace_id, expected.span_id):
            span = tracer.start_span(
                ENQUEUE_SPAN, context=parent, kind=SpanKind.PRODUCER, attributes=self._clean(attributes)
            )
        span.end()
        self._check_ids(span, expected)

    def _check_ids(self, span: trace.Span, expected: SpanContext) -> None:
        actual = span.get_span_context()
        if span.is_recording() and not self._warned_ids and actual.span_id != expected.span_id:
            self._warned_ids = True
            logger.warning(
                "the tracer ignored tasker's preset span ids: spans still nest through stored contexts, "
                "but the enqueue and task spans are not the parents step spans name"
            )

    # -- steps -----------------------------------------------------------------------------------------------

    def handle_step_retry_requested(self, event: Event) -> None:
        """Remember why the step runs again; marked on the next attempt's span when it starts."""
        step_id = event.get("step_id")
        if not isinstance(step_id, int):
            return
        details = {
            "tasker.step.previous_attempts": event.get("previous_attempts"),
            "tasker.step.retry_reason": event.get("retry_reason"),
        }
        with self._lock:
            self._retries[step_id] = (int(event.get("task_id") or 0), details)

    def handle_step_before_handle(self, event: Event) -> None:
        """Start the attempt's span under the task span and make it current for ``process()``."""
        data = event.payload  # a read-only view whose lookups are plain dict lookups
        step_id = data.get("step_id")
        with self._lock:
            retry = self._retries.pop(step_id, None) if isinstance(step_id, int) else None
        task_trace = self._task_trace(data)
        if task_trace is None or not isinstance(step_id, int):
            return
        attempt = int(data.get("attempt_number") or 0) + 1
        tracer = self.tracer() if task_trace.sampled else None
        span = self._start_step_span(tracer, data, task_trace, attempt) if tracer is not None else None
        if span is not None and retry is not None:
            span.add_event("tasker.step.retry", self._clean(retry[1]))
        current = span if span is not None else task_trace.parent
        entry = _OpenStep(int(data.get("task_id") or 0), span, current, None, None)
        with self._lock:
            stale = self._steps.pop((step_id, attempt), None)
            self._steps[(step_id, attempt)] = entry
        if stale is not None:
            self._abandon(stale)
        entry.token = otel_context.attach(trace.set_span_in_context(current))
        entry.probe = _ATTACHED.set(True)

    def _pop_step(self, event: Mapping[str, Any]) -> _OpenStep | None:
        step_id, attempt = event.get("step_id"), event.get("attempt_number")
        with self._lock:
            self._retries.pop(step_id, None)  # type: ignore[arg-type]
            return self._steps.pop((step_id, attempt), None)  # type: ignore[arg-type]

    def _detach(self, entry: _OpenStep) -> None:
        # Only the context that attached can detach: the outcome may come in a copy of it (the engine publishes
        # in a copy of the attempt's context) or in another thread, whose contexts die with them. A context
        # variable's token tells, by failing to reset anywhere else, without OpenTelemetry logging an error.
        token, probe = entry.token, entry.probe
        entry.token = entry.probe = None
        if token is None or probe is None:
            return
        try:
            _ATTACHED.reset(probe)
        except ValueError:
            return
        otel_context.detach(token)  # type: ignore[arg-type]

    def _start_step_span(
        self, tracer: trace.Tracer, event: Mapping[str, Any], task_trace: _TaskTrace, attempt: int
    ) -> trace.Span:
        """A step span under the task span, from the attempt's claim time (never in the future)."""
        now = time.time_ns()
        start = _ns(event.get("started_at"))
        return tracer.start_span(
            STEP_SPAN,
            context=task_trace.context,
            kind=SpanKind.INTERNAL,
            attributes=self._step_attributes(event, attempt),
            start_time=start if start is not None and start <= now else now,
        )

    def _retro_span(self, event: Mapping[str, Any]) -> trace.Span | None:
        """A span for an attempt whose start this subscriber did not see (e.g. a dead worker's, recovered)."""
        task_trace = self._task_trace(event)
        if task_trace is None or not task_trace.sampled or not isinstance(event.get("step_id"), int):
            return None
        tracer = self.tracer()
        if tracer is None:
            return None
        return self._start_step_span(tracer, event, task_trace, int(event.get("attempt_number") or 1))

    def handle_step_completed(self, event: Event) -> None:
        """End the attempt's span with status OK."""
        data = event.payload
        entry = self._pop_step(data)
        if entry is not None:
            self._detach(entry)
            span = entry.span
        else:
            span = self._retro_span(data)
        if span is not None:
            span.set_status(_OK)
            span.end(end_time=_recorded_end(data, span))

    def handle_step_failed(self, event: Event) -> None:
        """Mark the attempt's span ERROR with the exception; it ends now, or after its backoff event."""
        end = time.time_ns()
        entry = self._pop_step(event)
        if entry is not None:
            self._detach(entry)
            span = entry.span
        else:
            span = self._retro_span(event)
        if span is None:
            return
        exception_class = str(event.get("exception_class") or "_OTHER")
        message = self._text(event.get("error_message") or exception_class)
        span.set_attributes(
            self._clean({"error.type": exception_class, "tasker.step.retryable": event.get("retryable")})
        )
        if event.get("error_code"):
            span.set_attributes(self._clean({"tasker.step.error_code": event.get("error_code")}))
        span.add_event(
            "exception",
            self._clean(
                {
                    "exception.type": exception_class,
                    "exception.message": message,
                    "exception.stacktrace": event.get("backtrace") or "",
                }
            ),
            timestamp=end,
        )
        attempt, limit = event.get("attempt_number"), event.get("retry_limit")
        if event.get("retryable") and isinstance(attempt, int) and isinstance(limit, int) and attempt >= limit:
            span.add_event(
                "tasker.step.retries_exhausted", self._clean({"tasker.step.attempt": attempt}), timestamp=end
            )
        span.set_status(Status(StatusCode.ERROR, message))
        if entry is not None and event.get("next_retry_at"):
            # observability.step.backoff follows in this thread: it ends the span with the failure's end time.
            entry.end_ns = end
            with self._lock:
                self._steps[(event["step_id"], attempt)] = entry
            return
        span.end(end_time=end)

    def handle_observability_step_backoff(self, event: Event) -> None:
        """Record the wait before the next attempt on the failed attempt's span, and end it."""
        entry = self._pop_step(event)
        if entry is None or entry.span is None:
            return
        details = {
            "tasker.step.backoff.seconds": event.get("backoff_seconds"),
            "tasker.step.backoff.type": event.get("backoff_type"),
            "tasker.step.backoff.retry_after": event.get("retry_after"),
        }
        entry.span.add_event("tasker.step.backoff", self._clean(details), timestamp=entry.end_ns)
        entry.span.end(end_time=entry.end_ns)

    def handle_workflow_steps_execution_completed(self, event: Event) -> None:
        """End what a batch left open (a step whose claim was lost publishes no outcome)."""
        self._abandon_task(event.get("task_id"))

    def _abandon_task(self, task_id: Any) -> None:
        with self._lock:
            keys = [key for key, entry in self._steps.items() if entry.task_id == task_id]
            entries = [self._steps.pop(key) for key in keys]
            for step_id in [s for s, (t, _) in self._retries.items() if t == task_id]:
                del self._retries[step_id]
        for entry in entries:
            self._abandon(entry)

    def _abandon(self, entry: _OpenStep) -> None:
        self._detach(entry)
        span = entry.span
        if span is None:
            return
        if entry.end_ns is not None:  # failed, its backoff event never came
            span.end(end_time=entry.end_ns)
            return
        span.set_attribute("tasker.step.outcome", "unknown")
        span.add_event("tasker.step.abandoned")
        span.end()

    # -- the task --------------------------------------------------------------------------------------------

    def handle_task_completed(self, event: Event) -> None:
        """Emit the task span, status OK."""
        self._emit_task_span(event, _OK)

    def handle_task_failed(self, event: Event) -> None:
        """Emit the task span, status ERROR."""
        steps = event.get("error_steps") or []
        reason = str(event.get("error_message") or "task_failed")
        description = f"{reason}: {', '.join(map(str, steps))}" if steps else reason
        self._emit_task_span(
            event,
            Status(StatusCode.ERROR, self._text(description)),
            {"error.type": reason, "tasker.task.error_steps": [str(s) for s in steps]},
        )

    def handle_task_cancelled(self, event: Event) -> None:
        """Emit the task span (status unset) unless it was already emitted when the task failed."""
        if event.get("from_state") != "error":
            self._emit_task_span(event, Status(StatusCode.UNSET))

    def _emit_task_span(self, event: Event, status: Status, extra: Mapping[str, Any] | None = None) -> None:
        if event.name != "task.cancelled":  # a cancel may race a running step: its outcome event still comes
            self._abandon_task(event.get("task_id"))
        tc = _valid_trace_context(event)
        if tc is None or not tc.get("sampled"):
            return
        tracer = self.tracer()
        if tracer is None:
            return
        end = time.time_ns()
        start = _ns(event.get("started_at"))
        enqueue = enqueue_span_context(tc)
        attributes = {
            **self._task_attributes(event, "process", "process"),
            "tasker.task.status": event.get("status"),
            "tasker.task.total_steps": event.get("total_steps"),
            "tasker.task.completed_steps": event.get("completed_steps"),
            "tasker.task.failed_steps": event.get("failed_steps"),
            **(extra or {}),
        }
        if self.propagation == "link":
            parent = otel_context.Context()
            links = [Link(enqueue, {"tasker.link": "enqueue"})]
        else:
            parent = trace.set_span_in_context(trace.NonRecordingSpan(enqueue), otel_context.Context())
            links = []
        expected = self._task_span_context(tc)
        with preset_ids(expected.trace_id, expected.span_id):
            span = tracer.start_span(
                TASK_SPAN,
                context=parent,
                kind=SpanKind.CONSUMER,
                attributes=self._clean(attributes),
                links=links,
                start_time=start if start is not None and start <= end else end,
            )
        span.set_status(status)
        span.end(end_time=end)
        self._check_ids(span, expected)


def _cached(cache: Mapping[tuple[Any, ...], Any], key: tuple[Any, ...]) -> Any:
    """``cache[key]``, or ``_MISSING`` when absent or when ``key`` holds unhashable values (never cached)."""
    try:
        return cache.get(key, _MISSING)
    except TypeError:
        return _MISSING


def _store(cache: dict[tuple[Any, ...], Any], key: tuple[Any, ...], value: Any) -> None:
    """Remember ``value`` under ``key`` (emptying a full cache first; unhashable keys are not remembered)."""
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    with contextlib.suppress(TypeError):
        cache[key] = value


_live: weakref.WeakSet[TelemetrySubscriber] = weakref.WeakSet()


def _forget_in_child() -> None:
    for subscriber in list(_live):
        subscriber._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)
