"""Series storage for :mod:`fillguard.metrics`: plain cells under one lock, exported as a
``prometheus_client`` collector.

``prometheus_client``'s own metric objects take a lock per sample (a histogram observation
takes two), which made one broker request report cost three lock round trips. Here a report
takes the store's single lock once; :meth:`SeriesStore.collect` copies the values under the
same lock and hands ``prometheus_client`` ready families, so the text format is still
``prometheus_client``'s.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

__all__ = [
    "Cell",
    "Family",
    "FamilySpec",
    "HistogramCell",
    "SeriesStore",
    "exported_names",
]

Kind = Literal["counter", "gauge", "histogram"]


@dataclass(frozen=True, slots=True)
class FamilySpec:
    """One metric family: ``name`` without ``_total`` for a counter; ``buckets`` for a histogram."""

    name: str
    kind: Kind
    doc: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()
    initial: float = 0.0  # a gauge's value before the first report (NaN: not known yet)


class Cell:
    """A counter's or gauge's value. Change it only while holding the store's lock."""

    __slots__ = ("value",)

    def __init__(self, value: float = 0.0) -> None:
        self.value = value


class HistogramCell:
    """A histogram's bucket counts (not cumulative; the last one is ``+Inf``) and sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Count ``value`` (``le`` is inclusive). Call while holding the store's lock."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value


class Family:
    """The series of one family, keyed by label values."""

    def __init__(self, spec: FamilySpec, lock: threading.Lock) -> None:
        if spec.kind == "histogram" and list(spec.buckets) != sorted(set(spec.buckets)):
            raise ValueError(f"{spec.name}: buckets must be strictly increasing")
        self.spec = spec
        self._lock = lock
        self.series: dict[tuple[str, ...], Cell | HistogramCell] = {}
        if not spec.labels:
            self.series[()] = self._new()

    def _new(self) -> Cell | HistogramCell:
        if self.spec.kind == "histogram":
            return HistogramCell(self.spec.buckets)
        return Cell(self.spec.initial if self.spec.kind == "gauge" else 0.0)

    def cell(self, *label_values: str) -> Cell | HistogramCell:
        """The series of ``label_values``, created (at 0) if new. Takes the lock: never call it
        while holding it."""
        if len(label_values) != len(self.spec.labels):
            raise ValueError(f"{self.spec.name} takes labels {self.spec.labels}")
        with self._lock:
            found = self.series.get(label_values)
            if found is None:
                found = self.series[label_values] = self._new()
            return found

    def value_cell(self, *label_values: str) -> Cell:
        """:meth:`cell` for a counter or gauge."""
        found = self.cell(*label_values)
        assert isinstance(found, Cell)
        return found

    def histogram_cell(self, *label_values: str) -> HistogramCell:
        """:meth:`cell` for a histogram."""
        found = self.cell(*label_values)
        assert isinstance(found, HistogramCell)
        return found

    def to_metric(self) -> Metric:
        """The family with its current values (call while holding the lock)."""
        spec = self.spec
        labels = list(spec.labels)
        if spec.kind == "histogram":
            histogram = HistogramMetricFamily(spec.name, spec.doc, labels=labels)
            edges = [*(floatToGoString(b) for b in spec.buckets), "+Inf"]  # type: ignore[no-untyped-call]
            for label_values, cell in self.series.items():
                assert isinstance(cell, HistogramCell)
                cumulative: list[tuple[str, float]] = []
                running = 0
                for edge, count in zip(edges, cell.counts, strict=True):
                    running += count
                    cumulative.append((edge, float(running)))
                histogram.add_metric(list(label_values), cumulative, sum_value=cell.sum)
                if spec.buckets and spec.buckets[0] < 0:
                    # prometheus_client leaves out _count and _sum when a bucket is negative
                    # (a sum that can fall is not a counter); the count is still worth having,
                    # and the signed sum gives the mean.
                    names = dict(zip(spec.labels, label_values, strict=True))
                    histogram.samples.append(Sample(f"{spec.name}_count", names, float(running)))
                    histogram.samples.append(Sample(f"{spec.name}_sum", names, cell.sum))
            return histogram
        family_class = CounterMetricFamily if spec.kind == "counter" else GaugeMetricFamily
        metric = family_class(spec.name, spec.doc, labels=labels)
        for label_values, cell in self.series.items():
            assert isinstance(cell, Cell)
            metric.add_metric(list(label_values), cell.value)
        return metric


class SeriesStore:
    """Every family of one :class:`~fillguard.metrics.PrometheusMetrics`; a registry collector."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.families: list[Family] = []

    def family(self, spec: FamilySpec) -> Family:
        """Add a family (before registering the store)."""
        made = Family(spec, self.lock)
        self.families.append(made)
        return made

    def describe(self) -> Iterator[Metric]:
        """The families without samples: lets a registry check names at registration."""
        for family in self.families:
            yield Family(family.spec, threading.Lock()).to_metric()

    def collect(self) -> Iterator[Metric]:
        """The families with a consistent copy of every value (built under the lock)."""
        with self.lock:
            metrics = [f.to_metric() for f in self.families]
        yield from metrics


def exported_names(registry: CollectorRegistry) -> frozenset[str]:
    """Every series name ``registry`` can export, whether or not it has a series yet.

    A counter ``x`` exports ``x_total``, a histogram ``x`` exports ``x_bucket``, ``x_sum`` and
    ``x_count``, a gauge ``x`` itself; names of samples present now (such as
    ``prometheus_client``'s own ``x_created``) are included too.
    """
    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_sum", "_count"),
        "summary": ("", "_sum", "_count"),
        "info": ("_info",),
    }
    names: set[str] = set()
    for family in registry.collect():
        for suffix in suffixes.get(family.type, ("",)):
            names.add(family.name + suffix)
        names.update(sample.name for sample in family.samples)
    return frozenset(names)
