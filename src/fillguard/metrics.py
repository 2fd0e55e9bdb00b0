"""Prometheus metrics: :class:`PrometheusMetrics` turns observer reports into series.

Metrics live on an injected ``CollectorRegistry`` (a fresh private one by default, never the
global ``prometheus_client.REGISTRY`` unless it is passed in), so two executors in one process,
or two tests, never share counters by accident. :func:`serve` exposes a registry over HTTP on
loopback.

Labels are bounded: each label has a fixed set of values (the tuples in
:mod:`fillguard.metric_names`, re-exported here) and anything else
is counted as ``other``; no order id, client order id or symbol is ever a label, unless
``symbol_labels=True`` opts into the one per-symbol counter
(``fillguard_position_checks_by_symbol_total``, capped at :data:`MAX_SYMBOLS` symbols).

Counters an alert divides by, or alerts on, are created at 0 for every known label value, so a
rate is 0 rather than absent and the first increment is not lost to Prometheus's ``rate()``.

Every report method is cheap (a dict look-up and one lock round trip: the series are plain
cells in :mod:`fillguard.metric_store`) and never raises: a value that cannot be recorded (a
non-number, NaN) is counted in ``fillguard_observer_bad_reports_total``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry

from fillguard import metric_names as names
from fillguard.metric_names import (
    BUDGET_PRIORITIES,
    FILL_RESULTS,
    JOURNAL_KINDS,
    MAX_SYMBOLS,
    OTHER,
    POSITION_RESULTS,
    RETRY_REASONS,
    STREAM_EVENT_KINDS,
    STREAM_RECONNECT_REASONS,
    SUBMIT_OUTCOMES,
)
from fillguard.metric_store import Cell, Family, HistogramCell, SeriesStore, exported_names
from fillguard.metrics_http import MetricsServer, serve
from fillguard.observer import ENDPOINTS

__all__ = [
    "BUDGET_PRIORITIES",
    "FILL_RESULTS",
    "JOURNAL_KINDS",
    "MAX_SYMBOLS",
    "OTHER",
    "POSITION_RESULTS",
    "RETRY_REASONS",
    "STREAM_EVENT_KINDS",
    "STREAM_RECONNECT_REASONS",
    "SUBMIT_OUTCOMES",
    "MetricsServer",
    "PrometheusMetrics",
    "exported_names",
    "serve",
]

_TRANSPORT_ERROR = "transport_error"
_HTTP_CODE = re.compile(r"[1-5][0-9][0-9]")
_SYMBOL = re.compile(r"[A-Z][A-Z0-9./]{0,15}")


class _Bounded:
    """The series of a one-label family for its known values plus ``other``, by reported value.

    ``precreate``: create every known series now, so each is exported at 0 from the start.
    """

    __slots__ = ("_cells", "_family", "_known")

    def __init__(self, family: Family, known: Iterable[str], *, precreate: bool) -> None:
        self._family = family
        self._known = frozenset((*known, OTHER))
        self._cells: dict[str, Any] = {}
        if precreate:
            for value in (*known, OTHER):
                self._cells[value] = family.cell(value)

    def __call__(self, value: object) -> Any:
        cell = self._cells.get(value)  # type: ignore[call-overload]
        if cell is not None:
            return cell
        label = value if isinstance(value, str) and value in self._known else OTHER
        cell = self._family.cell(label)
        self._cells[label] = cell  # a known label only: the dict stays bounded
        return cell


def _finite(value: object) -> float:
    """``value`` as a finite float, or ValueError (bools are not numbers here)."""
    if isinstance(value, bool):
        raise ValueError("a bool is not a number")
    number = float(value)  # type: ignore[arg-type]
    if not math.isfinite(number):
        raise ValueError("not finite")
    return number


def _count(value: object) -> float:
    """A count: finite and >= 0."""
    number = _finite(value)
    if number < 0:
        raise ValueError("negative count")
    return number


def _code_label(code: object) -> str:
    text = str(code)
    if text == _TRANSPORT_ERROR or _HTTP_CODE.fullmatch(text):
        return text
    return OTHER


class PrometheusMetrics:
    """An :class:`~fillguard.observer.Observer` that records every report as Prometheus series.

    ``registry``: where the metrics are registered (default: a new private registry; pass
    ``prometheus_client.REGISTRY`` to use the global one). ``symbol_labels``: also count
    position checks per symbol in ``fillguard_position_checks_by_symbol_total`` (at most
    :data:`MAX_SYMBOLS` symbols; off by default).
    """

    def __init__(
        self, registry: CollectorRegistry | None = None, *, symbol_labels: bool = False
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.symbol_labels = symbol_labels
        store = self._store = SeriesStore()
        self._lock = store.lock
        family = store.family
        self._bad_reports = _Bounded(family(names.BAD_REPORTS), names.REPORTS, precreate=False)
        self._detections = _Bounded(family(names.DETECTIONS), FILL_RESULTS, precreate=True)
        self._detection_seconds = family(names.DETECTION_SECONDS).histogram_cell()
        self._submits = _Bounded(family(names.SUBMITS), SUBMIT_OUTCOMES, precreate=True)
        self._slippage = family(names.SLIPPAGE).histogram_cell()
        self._unresolved = family(names.UNRESOLVED).value_cell()
        self._engine_enabled = family(names.ENGINE_ENABLED).value_cell()
        self._requests = family(names.REQUESTS)
        self._request_seconds = _Bounded(family(names.REQUEST_SECONDS), ENDPOINTS, precreate=False)
        # (endpoint, code) as reported -> (counter cell, histogram cell), well-formed keys only.
        self._request_cells: dict[tuple[object, object], tuple[Cell, HistogramCell]] = {}
        self._retries = _Bounded(family(names.RETRIES), RETRY_REASONS, precreate=True)
        self._position_checks = _Bounded(family(names.POSITION_CHECKS), POSITION_RESULTS, precreate=True)
        self._position_syncs = family(names.POSITION_SYNCS).value_cell()
        self._by_symbol = family(names.BY_SYMBOL) if symbol_labels else None
        self._symbol_cells: dict[tuple[object, object], Cell] = {}
        self._symbols: set[str] = set()
        self._stream_connected = family(names.STREAM_CONNECTED).value_cell()
        self._stream_events = _Bounded(family(names.STREAM_EVENTS), STREAM_EVENT_KINDS, precreate=False)
        self._stream_reconnects = _Bounded(
            family(names.STREAM_RECONNECTS), STREAM_RECONNECT_REASONS, precreate=True
        )
        self._gaps_repaired = family(names.GAPS_REPAIRED).value_cell()
        self._sweeps = family(names.SWEEPS).value_cell()
        self._swept_orders = family(names.SWEPT_ORDERS).value_cell()
        self._tracked = family(names.TRACKED).value_cell()
        self._budget_wait = _Bounded(family(names.BUDGET_WAIT), BUDGET_PRIORITIES, precreate=False)
        self._budget_remaining = family(names.BUDGET_REMAINING).value_cell()
        self._journal_write = _Bounded(family(names.JOURNAL_WRITE), JOURNAL_KINDS, precreate=False)
        self.registry.register(store)

    # ------------------------------------------------------------------ helpers
    def _bad(self, report: str) -> None:
        # Called from an except block: this must not raise either.
        try:
            cell = self._bad_reports(report)
            with self._lock:
                cell.value += 1
        except Exception:  # pragma: no cover - only if the store itself is broken
            pass

    def _inc(self, cell: Cell, report: str) -> None:
        try:
            with self._lock:
                cell.value += 1
        except Exception:  # pragma: no cover - only if the store itself is broken
            self._bad(report)

    def _set(self, cell: Cell, value: object, report: str) -> None:
        try:
            number = _count(value)
            with self._lock:
                cell.value = number
        except Exception:
            self._bad(report)

    def _duration(self, seconds: object, report: str) -> float | None:
        """A finite duration (a negative one, a clock step, counts as 0); None when bad."""
        try:
            return max(0.0, _finite(seconds))
        except Exception:
            self._bad(report)
            return None

    def _observe(self, bounded: _Bounded, label: object, seconds: object, report: str) -> None:
        try:
            cell = bounded(label)
            value = max(0.0, _finite(seconds))
            with self._lock:
                cell.observe(value)
        except Exception:
            self._bad(report)

    def _count_label(self, bounded: _Bounded, label: object, report: str) -> None:
        try:
            cell = bounded(label)
            with self._lock:
                cell.value += 1
        except Exception:
            self._bad(report)

    # ------------------------------------------------------------------ fill detection and trades
    def fill_detection(self, result: str, seconds: float) -> None:
        """A monitor ended with ``result`` after ``seconds``."""
        try:
            cell = self._detections(result)
        except Exception:
            cell = self._detections(OTHER)
        value = self._duration(seconds, "fill_detection")
        with self._lock:
            cell.value += 1
            if value is not None:
                self._detection_seconds.observe(value)

    def submit_outcome(self, outcome: str) -> None:
        """A trade's submission ended with ``outcome``."""
        self._count_label(self._submits, outcome, "submit_outcome")

    def slippage(self, ratio: float) -> None:
        """A fill's signed adverse slippage ratio."""
        try:
            value = _finite(ratio)
            with self._lock:
                self._slippage.observe(value)
        except Exception:
            self._bad("slippage")

    def unresolved_trades(self, count: int) -> None:
        """Trades still UNKNOWN, now."""
        self._set(self._unresolved, count, "unresolved_trades")

    def fill_detection_engine_enabled(self, enabled: bool) -> None:
        """The feature flag's state."""
        self._set(self._engine_enabled, 1.0 if enabled else 0.0, "fill_detection_engine_enabled")

    # ------------------------------------------------------------------ broker requests
    def broker_request(self, endpoint: str, code: str, seconds: float) -> None:
        """One HTTP request ended with ``code`` after ``seconds``."""
        try:
            cells = self._request_cells.get((endpoint, code))
            if cells is None:
                cells = self._new_request_cells(endpoint, code)
        except Exception:  # an unhashable value, or one whose str() fails
            cells = self._new_request_cells(OTHER, OTHER)
        value = self._duration(seconds, "broker_request")
        total, histogram = cells
        with self._lock:
            total.value += 1
            if value is not None:
                histogram.observe(value)

    def _new_request_cells(self, endpoint: object, code: object) -> tuple[Cell, HistogramCell]:
        label_endpoint = endpoint if isinstance(endpoint, str) and endpoint in ENDPOINTS else OTHER
        label_code = _code_label(code)
        cells = (
            self._requests.value_cell(label_endpoint, label_code),
            self._request_seconds(label_endpoint),
        )
        # Cache well-formed keys only: odd values must not grow the cache without bound.
        if (label_endpoint, label_code) == (endpoint, code) and isinstance(code, str):
            self._request_cells[(endpoint, code)] = cells
        return cells

    def retry(self, reason: str) -> None:
        """A request is retried for ``reason``."""
        self._count_label(self._retries, reason, "retry")

    # ------------------------------------------------------------------ the book
    def position_check(self, result: str) -> None:
        """A position check ended with ``result``."""
        self._count_label(self._position_checks, result, "position_check")

    def position_check_by_symbol(self, symbol: str, result: str) -> None:
        """A position check of ``symbol`` ended with ``result`` (counted only with symbol_labels)."""
        if self._by_symbol is None:
            return
        try:
            cell = self._symbol_cells.get((symbol, result))
            if cell is None:
                cell = self._symbol_cell(self._by_symbol, symbol, result)
            with self._lock:
                cell.value += 1
        except Exception:
            self._bad("position_check_by_symbol")

    def _symbol_cell(self, family: Family, symbol: object, result: object) -> Cell:
        label_result = result if isinstance(result, str) and result in POSITION_RESULTS else OTHER
        label_symbol = OTHER
        if isinstance(symbol, str) and _SYMBOL.fullmatch(symbol):
            with self._lock:
                if symbol in self._symbols or len(self._symbols) < MAX_SYMBOLS:
                    self._symbols.add(symbol)
                    label_symbol = symbol
        cell = family.value_cell(label_symbol, label_result)
        if (label_symbol, label_result) == (symbol, result):
            self._symbol_cells[(symbol, result)] = cell
        return cell

    def position_sync(self) -> None:
        """The book was synced after a mismatch."""
        self._inc(self._position_syncs, "position_sync")

    # ------------------------------------------------------------------ stream, tracker, budget, journal
    def stream_connected(self, connected: bool) -> None:
        """The trade_updates connection went up or down."""
        self._set(self._stream_connected, 1.0 if connected else 0.0, "stream_connected")

    def stream_event(self, kind: str) -> None:
        """A stream frame of ``kind`` was handled."""
        self._count_label(self._stream_events, kind, "stream_event")

    def stream_reconnect(self, reason: str) -> None:
        """The stream reconnects for ``reason``."""
        self._count_label(self._stream_reconnects, reason, "stream_reconnect")

    def stream_gap_repaired(self) -> None:
        """A (re)connect gap was covered by a sweep."""
        self._inc(self._gaps_repaired, "stream_gap_repaired")

    def sweep(self, orders: int) -> None:
        """A REST sweep returned ``orders`` orders."""
        try:
            count = _count(orders)
        except Exception:
            self._bad("sweep")
            count = 0.0
        with self._lock:
            self._sweeps.value += 1
            self._swept_orders.value += count

    def tracked_orders(self, count: int) -> None:
        """Orders the tracker watches, now."""
        self._set(self._tracked, count, "tracked_orders")

    def budget_wait(self, priority: str, seconds: float) -> None:
        """A request of ``priority`` waited ``seconds`` for the budget."""
        self._observe(self._budget_wait, priority, seconds, "budget_wait")

    def budget_remaining(self, remaining: int) -> None:
        """Requests left in the rate-limit window."""
        self._set(self._budget_remaining, remaining, "budget_remaining")

    def journal_write(self, kind: str, seconds: float) -> None:
        """A journal record of ``kind`` was committed in ``seconds``."""
        self._observe(self._journal_write, kind, seconds, "journal_write")
