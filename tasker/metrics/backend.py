"""MetricsBackend: one app's Prometheus metrics, the engine's recording methods, and rendering.

Each backend owns a ``prometheus_client.CollectorRegistry`` (never the global ``REGISTRY``), so several apps
in one process do not interfere. The engine calls the recording methods (``task_created``, ``step_executed``,
...) where things happen; anything else can use the generic ``counter``/``gauge``/``histogram`` get-or-create
API. The engine's metrics are compact series (:mod:`tasker.metrics.series`: a step name costs a few hundred
bytes, not kilobytes of child objects) except in multiprocess mode, where prometheus_client's own classes write
the shared files; metrics created through the generic API are prometheus_client metrics.
"""

from __future__ import annotations

import itertools
import logging
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, cast

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest as generate_text
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.openmetrics import exposition as openmetrics_exposition
from prometheus_client.registry import Collector

from tasker.config import JOB_BUCKETS, MetricsConfig
from tasker.errors import MetricsError
from tasker.metrics import export, multiprocess
from tasker.metrics.series import CompactCounter, CompactHistogram

if TYPE_CHECKING:
    from tasker.metrics.catalog import MetricKind, MultiprocessMode

logger = logging.getLogger(__name__)

# prometheus_client leaves this one unannotated.
_generate_openmetrics = cast(Callable[[CollectorRegistry], bytes], openmetrics_exposition.generate_latest)

#: The formats ``MetricsBackend.render`` accepts.
FORMATS = ("prometheus", "openmetrics", "json", "csv")

#: Statuses ``task_finished`` accepts (a task's terminal states).
TASK_FINISHED_STATUSES = frozenset({"complete", "error", "cancelled", "resolved_manually"})
#: Statuses ``step_executed`` accepts (the outcome of one attempt).
STEP_EXECUTED_STATUSES = frozenset({"complete", "error"})

_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

_TASKS_CREATED = "tasker_tasks_created_total"
_TASKS_FINISHED = "tasker_tasks_finished_total"
_TASK_DURATION = "tasker_task_duration_seconds"
_TASK_QUEUE_WAIT = "tasker_task_queue_wait_seconds"
_STEP_EXECUTIONS = "tasker_step_executions_total"
_STEP_DURATION = "tasker_step_duration_seconds"
_STEP_RETRIES = "tasker_step_retries_total"
_STEP_RETRIES_EXHAUSTED = "tasker_step_retries_exhausted_total"
_STEP_TIMEOUTS = "tasker_step_timeouts_total"
_SUBSCRIBER_ERRORS = "tasker_event_subscriber_errors_total"
_SUBSCRIBER_SLOW = "tasker_event_subscriber_slow_total"
_EVENTS_DROPPED = "tasker_events_dropped_total"


class CounterInstrument(Protocol):
    """What ``MetricsBackend.counter`` returns."""

    def inc(self, amount: float = 1) -> None:
        """Add ``amount`` (>= 0)."""


class GaugeInstrument(Protocol):
    """What ``MetricsBackend.gauge`` returns."""

    def inc(self, amount: float = 1) -> None:
        """Add ``amount``."""

    def dec(self, amount: float = 1) -> None:
        """Subtract ``amount``."""

    def set(self, value: float) -> None:
        """Set the value."""


class HistogramInstrument(Protocol):
    """What ``MetricsBackend.histogram`` returns."""

    def observe(self, amount: float) -> None:
        """Record one observation."""


class _NoopInstrument:
    """Accepts every instrument call and records nothing (metrics disabled)."""

    __slots__ = ()

    def inc(self, amount: float = 1) -> None:
        """Do nothing."""

    def dec(self, amount: float = 1) -> None:
        """Do nothing."""

    def set(self, value: float) -> None:
        """Do nothing."""

    def observe(self, amount: float) -> None:
        """Do nothing."""


_NOOP = _NoopInstrument()


class _CounterSeries(Protocol):
    """How the recording methods reach a counter's series by label values."""

    def inc(self, values: tuple[str, ...], amount: float = 1.0) -> None:
        """Add ``amount`` to the series."""

    def ensure(self, values: tuple[str, ...]) -> None:
        """Make the series exist (at 0 when new)."""


class _HistogramSeries(Protocol):
    """How the recording methods reach a histogram's series by label values."""

    def observe(self, values: tuple[str, ...], amount: float) -> None:
        """Record one observation in the series."""


class _ClientSeries:
    """A prometheus_client metric and its children cached by label values."""

    __slots__ = ("children", "metric")

    def __init__(self, metric: MetricWrapperBase) -> None:
        self.metric = metric
        self.children: dict[tuple[str, ...], Any] = {}

    def child(self, values: tuple[str, ...]) -> Any:
        """The child for these label values (the metric itself when it has no labels)."""
        child = self.children.get(values)
        if child is None:
            # labels() is itself a locked get-or-create, so two racing threads store the same object.
            child = self.children[values] = self.metric.labels(*values) if values else self.metric
        return child

    def inc(self, values: tuple[str, ...], amount: float = 1.0) -> None:
        """Increment the child."""
        self.child(values).inc(amount)

    def observe(self, values: tuple[str, ...], amount: float) -> None:
        """Observe ``amount`` in the child."""
        self.child(values).observe(amount)

    def ensure(self, values: tuple[str, ...]) -> None:
        """Create the child."""
        self.child(values)


@dataclass(slots=True)
class _Family:
    """A created metric: its kind, fixed label names, buckets, and where its series are."""

    kind: MetricKind
    labelnames: tuple[str, ...]
    series: _ClientSeries | CompactCounter | CompactHistogram
    buckets: tuple[float, ...] | None
    labelset: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        self.labelset = frozenset(self.labelnames)


def _validate_name(kind: MetricKind, name: str) -> None:
    if not _METRIC_NAME.match(name):
        raise MetricsError(f"invalid metric name {name!r}: must match {_METRIC_NAME.pattern}")
    if kind == "counter":
        if not name.endswith("_total") or name == "_total":
            raise MetricsError(f"invalid counter name {name!r}: counter names must end with '_total'")
    elif name.endswith("_total"):
        raise MetricsError(f"invalid {kind} name {name!r}: only counter names may end with '_total'")


def _normalize_buckets(buckets: Sequence[float]) -> tuple[float, ...]:
    bounds = tuple(float(bound) for bound in buckets if bound != float("inf"))
    if not bounds:
        raise MetricsError("histogram buckets must not be empty")
    if any(low >= high for low, high in itertools.pairwise(bounds)):
        raise MetricsError(f"histogram buckets must be strictly increasing, got {list(buckets)}")
    return bounds


class MetricsBackend:
    """One app's metrics: a private Prometheus registry, engine recording methods, and exports.

    With ``enabled=False`` every instrument is a no-op and rendering raises ``MetricsError``.
    """

    def __init__(
        self,
        enabled: bool = True,
        buckets: Sequence[float] = JOB_BUCKETS,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._enabled = enabled
        self._buckets = _normalize_buckets(buckets)
        self._registry = registry if registry is not None else CollectorRegistry()
        self._families: dict[str, _Family] = {}
        self._counters: dict[str, _CounterSeries] = {}
        self._histograms: dict[str, _HistogramSeries] = {}
        self._executed: set[tuple[str, ...]] = set()  # step_executed label values seen: their zero series exist
        self._collectors: list[Collector] = []
        self._lock = threading.Lock()
        self._series_lock = threading.Lock()  # shared by the compact series of all engine metrics
        if not enabled:
            return
        if multiprocess.multiprocess_dir() and not multiprocess.values_are_multiprocess():
            logger.warning(
                "%s is set but prometheus_client was imported before it was: this process's metrics are "
                "not written to the multiprocess directory",
                multiprocess.ENV_VAR,
            )
        # Imported here rather than at module level: ``import tasker`` must not load the catalog module, or
        # ``python -m tasker.metrics.catalog`` would find it already imported and warn.
        from tasker.metrics.catalog import ENGINE_METRICS

        compact = not multiprocess.values_are_multiprocess()
        for spec in ENGINE_METRICS.values():
            if spec.source == "process":
                self._create(
                    spec.kind,
                    spec.name,
                    spec.labels,
                    self._buckets,
                    spec.help,
                    spec.multiprocess_mode or "all",
                    compact=compact and bool(spec.labels),
                )

    @classmethod
    def from_config(cls, config: MetricsConfig) -> MetricsBackend:
        """A backend configured by the app's ``metrics`` config section."""
        return cls(enabled=config.enabled, buckets=config.buckets)

    @property
    def enabled(self) -> bool:
        """Whether metrics are recorded."""
        return self._enabled

    @property
    def registry(self) -> CollectorRegistry:
        """This backend's own Prometheus registry."""
        return self._registry

    # -- generic get-or-create API ------------------------------------------------------------------------

    def counter(self, name: str, **labels: str) -> CounterInstrument:
        """The counter child for these labels (created on first use; the same object afterwards)."""
        return cast(CounterInstrument, self._instrument("counter", name, labels, None))

    def gauge(self, name: str, **labels: str) -> GaugeInstrument:
        """The gauge child for these labels (created on first use; the same object afterwards)."""
        return cast(GaugeInstrument, self._instrument("gauge", name, labels, None))

    def histogram(self, name: str, buckets: Sequence[float] | None = None, **labels: str) -> HistogramInstrument:
        """The histogram child for these labels; ``buckets`` (default: the backend's) apply at creation."""
        return cast(HistogramInstrument, self._instrument("histogram", name, labels, buckets))

    def _instrument(
        self, kind: MetricKind, name: str, labels: Mapping[str, str], buckets: Sequence[float] | None
    ) -> Any:
        family = self._families.get(name)
        if family is None:
            _validate_name(kind, name)
            if not self._enabled:
                return _NOOP
            with self._lock:
                family = self._families.get(name) or self._create(
                    kind,
                    name,
                    tuple(labels),
                    self._buckets if buckets is None else _normalize_buckets(buckets),
                    f"Tasker {kind} metric: {name}",
                )
        if family.kind != kind:
            raise MetricsError(f"metric {name!r} is a {family.kind}, not a {kind}")
        if labels.keys() != family.labelset:
            raise MetricsError(f"metric {name!r} has label names {sorted(family.labelnames)}, got {sorted(labels)}")
        if buckets is not None and _normalize_buckets(buckets) != family.buckets:
            raise MetricsError(f"histogram {name!r} has buckets {list(family.buckets or ())}, got {list(buckets)}")
        return family.series.child(tuple(labels[label] for label in family.labelnames))

    def _create(
        self,
        kind: MetricKind,
        name: str,
        labelnames: tuple[str, ...],
        buckets: tuple[float, ...],
        documentation: str,
        multiprocess_mode: MultiprocessMode = "all",
        *,
        compact: bool = False,
    ) -> _Family:
        """Create and register a metric (``compact``: a labelled counter or histogram as compact series).

        Call with the lock held (or from ``__init__``).
        """
        for label in labelnames:
            if not _LABEL_NAME.match(label) or label.startswith("__"):
                raise MetricsError(f"metric {name!r}: invalid label name {label!r}")
        series: _ClientSeries | CompactCounter | CompactHistogram
        try:
            if kind == "counter":
                counter = (
                    CompactCounter(name, documentation, labelnames, self._series_lock)
                    if compact
                    else _ClientSeries(Counter(name, documentation, labelnames, registry=None))
                )
                self._register(counter)
                series = self._counters[name] = counter
            elif kind == "histogram":
                histogram = (
                    CompactHistogram(name, documentation, labelnames, buckets, self._series_lock)
                    if compact
                    else _ClientSeries(Histogram(name, documentation, labelnames, registry=None, buckets=buckets))
                )
                self._register(histogram)
                series = self._histograms[name] = histogram
            else:
                gauge = Gauge(name, documentation, labelnames, registry=None, multiprocess_mode=multiprocess_mode)
                series = _ClientSeries(gauge)
                self._register(series)
        except ValueError as exc:
            raise MetricsError(f"cannot create {kind} {name!r}: {exc}") from exc
        family = _Family(kind, labelnames, series, buckets if kind == "histogram" else None)
        self._families[name] = family
        return family

    def _register(self, series: _ClientSeries | CompactCounter | CompactHistogram) -> None:
        """Add a new metric's collector to the registry (a ``ValueError`` when its names are taken)."""
        self._registry.register(series.metric if isinstance(series, _ClientSeries) else series)

    # -- engine recording methods (no-ops when disabled) ------------------------------------------------

    def task_created(self, namespace: str, task: str, version: str) -> None:
        """Count a created task."""
        if self._enabled:
            self._counters[_TASKS_CREATED].inc((namespace, task, version))

    def task_started(self, namespace: str, task: str, version: str, queue_wait: float | None) -> None:
        """A worker picked the task up; ``queue_wait`` (s since due) if known.

        The task's ``tasker_tasks_created_total`` series is made to exist here too (at 0 when the task was
        created elsewhere), so the processes that are scraped list every template they run.
        """
        if self._enabled:
            values = (namespace, task, version)
            self._counters[_TASKS_CREATED].ensure(values)
            if queue_wait is not None:
                # Clock skew between hosts can make the wait negative.
                self._histograms[_TASK_QUEUE_WAIT].observe(values, max(queue_wait, 0.0))

    def task_finished(
        self,
        namespace: str,
        task: str,
        version: str,
        status: str,
        duration: float,
    ) -> None:
        """The task reached terminal ``status``; ``duration`` is seconds since creation."""
        if not self._enabled:
            return
        if status not in TASK_FINISHED_STATUSES:
            raise MetricsError(f"task_finished: status {status!r} is not one of {sorted(TASK_FINISHED_STATUSES)}")
        values = (namespace, task, version, status)
        self._counters[_TASKS_FINISHED].inc(values)
        self._histograms[_TASK_DURATION].observe(values, max(duration, 0.0))

    def step_executed(self, namespace: str, task: str, version: str, step: str, status: str, duration: float) -> None:
        """One step attempt ended with ``status`` (complete or error) after ``duration`` seconds."""
        if not self._enabled:
            return
        if status not in STEP_EXECUTED_STATUSES:
            raise MetricsError(f"step_executed: status {status!r} is not one of {sorted(STEP_EXECUTED_STATUSES)}")
        counters = self._counters
        values = (namespace, task, version, step, status)
        counters[_STEP_EXECUTIONS].inc(values)
        self._histograms[_STEP_DURATION].observe(values, 0.0 if duration < 0.0 else duration)
        if values not in self._executed:
            step_values = values[:4]  # these series exist (at 0) in every process that runs the step
            counters[_STEP_TIMEOUTS].ensure(step_values)
            counters[_STEP_RETRIES].ensure(step_values)
            counters[_STEP_RETRIES_EXHAUSTED].ensure(step_values)
            counters[_TASKS_CREATED].ensure(values[:3])  # and so does the template's (see task_started)
            self._executed.add(values)

    def step_retried(self, namespace: str, task: str, version: str, step: str) -> None:
        """A failed step was scheduled for another attempt."""
        if self._enabled:
            self._counters[_STEP_RETRIES].inc((namespace, task, version, step))

    def step_retries_exhausted(self, namespace: str, task: str, version: str, step: str) -> None:
        """A failed step has no attempts left."""
        if self._enabled:
            self._counters[_STEP_RETRIES_EXHAUSTED].inc((namespace, task, version, step))

    def step_timed_out(self, namespace: str, task: str, version: str, step: str) -> None:
        """A step attempt timed out: it ran past its timeout, or its lease expired (its worker died or hung)."""
        if self._enabled:
            self._counters[_STEP_TIMEOUTS].inc((namespace, task, version, step))

    def subscriber_slow(self, subscriber: str, event: str) -> None:
        """A synchronous subscriber took longer than the slow threshold."""
        if self._enabled:
            self._counters[_SUBSCRIBER_SLOW].inc((subscriber, event))

    def event_dropped(self, subscriber: str, event: str) -> None:
        """A background subscriber's queue was full: the event was dropped for it."""
        if self._enabled:
            self._counters[_EVENTS_DROPPED].inc((subscriber, event))

    def subscriber_error(self, subscriber: str, event: str) -> None:
        """An event subscriber raised while handling ``event``."""
        if self._enabled:
            self._counters[_SUBSCRIBER_ERRORS].inc((subscriber, event))

    # -- rendering --------------------------------------------------------------------------------------

    def register_collector(self, collector: Collector) -> None:
        """Expose ``collector`` (read at scrape time, e.g. the database gauges) with this backend's metrics."""
        if not self._enabled:
            return
        self._collectors.append(collector)
        self._registry.register(collector)

    def exposition_registry(self) -> CollectorRegistry:
        """The registry to expose: this backend's, or a fresh multiprocess one (plus collectors) when the env var is set."""
        if not self._enabled:
            raise MetricsError("metrics are disabled")
        if multiprocess.multiprocess_dir():
            registry = multiprocess.multiprocess_registry()
            for collector in self._collectors:
                registry.register(collector)
            return registry
        return self._registry

    def render(self, fmt: str = "prometheus") -> str:
        """The metrics as ``prometheus`` text (0.0.4), ``openmetrics``, ``json`` or ``csv``."""
        if fmt not in FORMATS:
            raise MetricsError(f"unknown metrics format {fmt!r}; expected one of: {', '.join(FORMATS)}")
        registry = self.exposition_registry()
        if fmt == "prometheus":
            return generate_text(registry).decode("utf-8")
        if fmt == "openmetrics":
            return _generate_openmetrics(registry).decode("utf-8")
        points = export.collect_points(registry)
        encode = export.to_json if fmt == "json" else export.to_csv
        return encode(points, export.export_timestamp())
