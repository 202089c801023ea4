"""Compact series: the engine's labelled counters and histograms as rows of one flat array per metric.

A prometheus_client child is an object per series, and a histogram child holds a value object with a lock per
bucket: 10,000 step names (5 series each) cost ~75 MB and ~180 µs per new step name that way. A
:class:`CompactCounter` or :class:`CompactHistogram` keeps each series as one row of an ``array('d')`` (a counter:
value, created; a histogram: one count per bucket, sum, created) found by its label values, under a lock that
all the families of a backend share. It is a prometheus_client ``Collector``: at scrape time it yields the same
``Metric`` family, with the same samples in the same order (series in creation order), as the prometheus_client
metric it stands for, and prometheus_client's exposition writes the text, so a scraper sees no difference.

Multiprocess mode does not use these: there values live in prometheus_client's shared files, through its classes.
"""

from __future__ import annotations

import math
import threading
import time
from abc import abstractmethod
from array import array
from bisect import bisect_left
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar, cast

from prometheus_client import metrics as prometheus_metrics
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

# prometheus_client leaves this one unannotated; it spells the ``le`` label values.
_float_to_go_string = cast(Callable[[float], str], floatToGoString)
_Child = TypeVar("_Child")


class _CompactFamily(Collector, Generic[_Child]):
    """Series of one labelled metric as rows of ``stride`` doubles; the last one of a row is its created time."""

    _type: str
    #: The handle :meth:`child` gives on one series (the generic API's).
    _child_type: Callable[[Any, tuple[str, ...]], _Child]

    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str], stride: int, lock: threading.Lock
    ) -> None:
        self._name = name
        self._documentation = documentation
        self._labelnames = tuple(labelnames)
        self._stride = stride
        self._blank = array("d", bytes(8 * stride))
        self._rows: dict[tuple[str, ...], int] = {}
        self._data = array("d")
        self._lock = lock
        self._children: dict[tuple[str, ...], _Child] = {}  # handles of the generic API only

    def _row(self, values: tuple[str, ...]) -> int:
        """Offset of the series' row, appended (zeros, created now) when new; call with the lock held."""
        row = self._rows.get(values)
        if row is None:
            row = len(self._data)
            self._data.extend(self._blank)
            self._data[row + self._stride - 1] = time.time()
            self._rows[values] = row
        return row

    def ensure(self, values: tuple[str, ...]) -> None:
        """Make the series exist (at 0 when new)."""
        if values not in self._rows:
            with self._lock:
                self._row(values)

    def child(self, values: tuple[str, ...]) -> _Child:
        """A handle on one series, the same one each time (the series exists from now on)."""
        child = self._children.get(values)
        if child is None:
            self.ensure(values)
            child = self._children.setdefault(values, self._child_type(self, values))
        return child

    def describe(self) -> list[Metric]:
        """The family, without samples (the registry checks names with it)."""
        return [Metric(self._name, self._documentation, self._type)]

    def collect(self) -> list[Metric]:
        """The family with every series' samples, as prometheus_client's own metric would yield them."""
        with self._lock:
            rows = list(self._rows.items())
            data = self._data[:]
        metric = Metric(self._name, self._documentation, self._type)
        created = self._name + "_created" if prometheus_metrics._use_created else None
        labelnames = self._labelnames
        for values, row in rows:
            labels = dict(zip(labelnames, values, strict=True))
            self._add_samples(metric, labels, data, row)
            if created is not None:
                metric.add_sample(created, labels, data[row + self._stride - 1])
        return [metric]

    @abstractmethod
    def _add_samples(self, metric: Metric, labels: dict[str, str], data: array[float], row: int) -> None:
        """Add the series' samples but ``_created`` (its row starts at ``row`` in ``data``)."""


class CounterChild:
    """One series of a :class:`CompactCounter`, like a prometheus_client counter child."""

    __slots__ = ("_family", "_values")

    def __init__(self, family: CompactCounter, values: tuple[str, ...]) -> None:
        self._family = family
        self._values = values

    def inc(self, amount: float = 1) -> None:
        """Add ``amount`` (>= 0)."""
        if amount < 0:
            raise ValueError("Counters can only be incremented by non-negative amounts.")
        self._family.inc(self._values, amount)


class HistogramChild:
    """One series of a :class:`CompactHistogram`, like a prometheus_client histogram child."""

    __slots__ = ("_family", "_values")

    def __init__(self, family: CompactHistogram, values: tuple[str, ...]) -> None:
        self._family = family
        self._values = values

    def observe(self, amount: float) -> None:
        """Record one observation."""
        self._family.observe(self._values, amount)


class CompactCounter(_CompactFamily[CounterChild]):
    """A labelled counter stored compactly (see the module docstring)."""

    _type = "counter"
    _child_type = CounterChild

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str], lock: threading.Lock) -> None:
        super().__init__(name.removesuffix("_total"), documentation, labelnames, 2, lock)
        self._total = self._name + "_total"

    def inc(self, values: tuple[str, ...], amount: float = 1.0) -> None:
        """Add ``amount`` to the series (created at 0 first when new)."""
        with self._lock:
            row = self._rows.get(values)
            self._data[self._row(values) if row is None else row] += amount

    def _add_samples(self, metric: Metric, labels: dict[str, str], data: array[float], row: int) -> None:
        metric.add_sample(self._total, labels, data[row])


class CompactHistogram(_CompactFamily[HistogramChild]):
    """A labelled histogram stored compactly (see the module docstring); ``buckets`` exclude ``+Inf``."""

    _type = "histogram"
    _child_type = HistogramChild

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        buckets: Sequence[float],
        lock: threading.Lock,
    ) -> None:
        self._bounds = (*buckets, math.inf)
        super().__init__(name, documentation, labelnames, len(self._bounds) + 2, lock)
        self._le = tuple(_float_to_go_string(bound) for bound in self._bounds)
        self._sum_offset = len(self._bounds)

    def observe(self, values: tuple[str, ...], amount: float) -> None:
        """Record one observation in the series (created empty first when new)."""
        with self._lock:
            row = self._rows.get(values)
            if row is None:
                row = self._row(values)
            data = self._data
            if amount == amount:  # NaN falls in no bucket, as with prometheus_client
                data[row + bisect_left(self._bounds, amount)] += 1
            data[row + self._sum_offset] += amount

    def _add_samples(self, metric: Metric, labels: dict[str, str], data: array[float], row: int) -> None:
        bucket = self._name + "_bucket"
        total = 0.0
        for offset, le in enumerate(self._le, row):
            total += data[offset]
            metric.add_sample(bucket, {**labels, "le": le}, total)
        metric.add_sample(self._name + "_count", labels, total)
        if self._bounds[0] >= 0:  # as prometheus_client: a sum of negative observations is no counter
            metric.add_sample(self._name + "_sum", labels, data[row + self._sum_offset])
