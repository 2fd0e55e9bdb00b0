"""Prometheus metrics: :class:`PrometheusMetrics` turns observer reports into series.

Metrics live on an injected ``CollectorRegistry`` (a fresh private one by default, never the
global ``prometheus_client.REGISTRY`` unless it is passed in), so two executors in one process,
or two tests, never share counters by accident. :func:`serve` exposes a registry over HTTP on
loopback.

Labels are bounded: each label has a fixed set of values (the tuples below) and anything else
is counted as ``other``; no order id, client order id or symbol is ever a label, unless
``symbol_labels=True`` opts into the one per-symbol counter
(``fillguard_position_checks_by_symbol_total``, capped at :data:`MAX_SYMBOLS` symbols).

Counters an alert divides by, or alerts on, are created at 0 for every known label value, so a
rate is 0 rather than absent and the first increment is not lost to Prometheus's ``rate()``.

Every report method is cheap (a dict look-up and an increment) and never raises: a report that
cannot be recorded (a non-number, NaN) is counted in ``fillguard_observer_bad_reports_total``.
"""

from __future__ import annotations

import contextlib
import math
import re
import socket
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

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

#: The value any label takes when the reported value is not in its known set.
OTHER = "other"
#: ``fillguard_fill_detections_total{result}``: the FillStatus values.
FILL_RESULTS: tuple[str, ...] = (
    "filled",
    "partially_filled",
    "canceled",
    "expired",
    "rejected",
    "timeout",
    "unknown",
)
#: ``fillguard_submit_outcomes_total{outcome}``: how a trade's submission ended.
SUBMIT_OUTCOMES: tuple[str, ...] = ("placed", "not_placed", "refused", "unknown")
#: ``fillguard_position_checks_total{result}``.
POSITION_RESULTS: tuple[str, ...] = ("consistent", "mismatch", "unverified")
#: ``fillguard_retries_total{reason}``: what made a request worth repeating.
RETRY_REASONS: tuple[str, ...] = ("429", "5xx", "transport", "timeout", "not_found")
#: ``fillguard_stream_events_total{kind}``: Alpaca's trade_updates events, plus what was not one.
STREAM_EVENT_KINDS: tuple[str, ...] = (
    "new",
    "fill",
    "partial_fill",
    "canceled",
    "expired",
    "done_for_day",
    "replaced",
    "rejected",
    "pending_new",
    "stopped",
    "pending_cancel",
    "pending_replace",
    "calculated",
    "suspended",
    "order_replace_rejected",
    "order_cancel_rejected",
    "accepted",
    "restated",
    "trade_bust",
    "trade_correct",
    "malformed",
    "unknown",
    "null",
)
#: ``fillguard_stream_reconnects_total{reason}``.
STREAM_RECONNECT_REASONS: tuple[str, ...] = ("closed", "silence", "auth", "error")
#: ``fillguard_budget_wait_seconds{priority}``: the request budget's lanes, highest first.
BUDGET_PRIORITIES: tuple[str, ...] = ("cancel", "submit", "lookup", "position", "sweep")
#: ``fillguard_journal_write_seconds{kind}``: the journal's record kinds.
JOURNAL_KINDS: tuple[str, ...] = (
    "account",
    "intent",
    "attempt",
    "outcome",
    "booking",
    "baseline",
    "final",
)
#: Most distinct symbols ``symbol_labels=True`` labels; later ones are counted as ``other``.
MAX_SYMBOLS = 200

_TRANSPORT_ERROR = "transport_error"
_HTTP_CODE = re.compile(r"[1-5][0-9][0-9]")
_SYMBOL = re.compile(r"[A-Z][A-Z0-9./]{0,15}")

# Bucket bounds in base units. Fill detection spans a market order (tens of ms) to a limit order
# that waits out a 30-120 s timeout; requests span loopback (ms) to a hung read (tens of s).
_DETECTION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
_REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Signed: negative is a fill better than expected. 0.01 is 1 %.
_SLIPPAGE_BUCKETS = (
    -0.05,
    -0.02,
    -0.01,
    -0.005,
    -0.002,
    -0.001,
    0.0,
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
)
_BUDGET_WAIT_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_JOURNAL_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0)

#: The report methods, for ``fillguard_observer_bad_reports_total{report}``.
_REPORTS: tuple[str, ...] = (
    "fill_detection",
    "submit_outcome",
    "slippage",
    "unresolved_trades",
    "fill_detection_engine_enabled",
    "broker_request",
    "retry",
    "position_check",
    "position_check_by_symbol",
    "position_sync",
    "stream_connected",
    "stream_event",
    "stream_reconnect",
    "stream_gap_repaired",
    "sweep",
    "tracked_orders",
    "budget_wait",
    "budget_remaining",
    "journal_write",
)


class _Bounded:
    """The children of a one-label metric: known values (plus ``other``) only.

    ``precreate``: create every child now, so each is exported at 0 from the start.
    """

    __slots__ = ("_children", "_known", "_lock", "_metric")

    def __init__(self, metric: Any, known: Iterable[str], *, precreate: bool) -> None:
        self._metric = metric
        self._known = frozenset((*known, OTHER))
        self._lock = threading.Lock()
        self._children: dict[str, Any] = {}
        if precreate:
            for value in (*known, OTHER):
                self._children[value] = metric.labels(value)

    def __call__(self, value: object) -> Any:
        child = self._children.get(value)  # type: ignore[call-overload]
        if child is not None:
            return child
        label = value if isinstance(value, str) and value in self._known else OTHER
        with self._lock:
            child = self._children.get(label)
            if child is None:
                child = self._children[label] = self._metric.labels(label)
        return child


def _finite(value: object) -> float:
    """``value`` as a finite float, or ValueError (bools are not numbers here)."""
    if isinstance(value, bool):
        raise ValueError("a bool is not a number")
    number = float(value)  # type: ignore[arg-type]
    if not math.isfinite(number):
        raise ValueError("not finite")
    return number


def _seconds(value: object) -> float:
    """A duration: finite; a negative one (a clock step) counts as 0."""
    return max(0.0, _finite(value))


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
        r = self.registry
        self._lock = threading.Lock()  # guards creating the two-label children

        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(name, doc, labels, registry=r)

        def histogram(
            name: str, doc: str, buckets: tuple[float, ...], labels: tuple[str, ...] = ()
        ) -> Histogram:
            return Histogram(name, doc, labels, buckets=buckets, registry=r)

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, registry=r)

        self._bad_reports = _Bounded(
            counter(
                "fillguard_observer_bad_reports",
                "Reports that could not be recorded (a value that is not a finite number).",
                ("report",),
            ),
            _REPORTS,
            precreate=False,
        )
        # --- fill detection and trades
        self._detections = _Bounded(
            counter(
                "fillguard_fill_detections",
                "Fill detection monitors ended, by result (a FillStatus value).",
                ("result",),
            ),
            FILL_RESULTS,
            precreate=True,
        )
        self._detection_seconds = histogram(
            "fillguard_fill_detection_seconds",
            "Seconds from the start of monitoring to the broker's final word (or to giving up).",
            _DETECTION_BUCKETS,
        )
        self._submits = _Bounded(
            counter(
                "fillguard_submit_outcomes", "Trade submissions ended, by outcome.", ("outcome",)
            ),
            SUBMIT_OUTCOMES,
            precreate=True,
        )
        self._slippage = histogram(
            "fillguard_slippage_ratio",
            "Signed adverse slippage of a fill as a ratio (0.01: 1 % worse than expected).",
            _SLIPPAGE_BUCKETS,
        )
        self._unresolved = gauge(
            "fillguard_unresolved_trades",
            "Trades whose outcome is UNKNOWN and still being resolved, now.",
        )
        self._engine_enabled = gauge(
            "fillguard_fill_detection_engine_enabled",
            "1: the fill detection engine is on; 0: the legacy loop (NaN until reported).",
        )
        self._engine_enabled.set(math.nan)
        # --- broker requests
        self._requests = counter(
            "fillguard_broker_requests",
            "HTTP requests to the broker ended, by endpoint and status code (or transport_error).",
            ("endpoint", "code"),
        )
        self._request_children: dict[tuple[object, object], Any] = {}
        self._request_seconds = _Bounded(
            histogram(
                "fillguard_broker_request_seconds",
                "Seconds one HTTP request to the broker took, by endpoint.",
                _REQUEST_BUCKETS,
                ("endpoint",),
            ),
            ENDPOINTS,
            precreate=False,
        )
        self._retries = _Bounded(
            counter(
                "fillguard_retries",
                "Requests repeated after a transient failure, by reason.",
                ("reason",),
            ),
            RETRY_REASONS,
            precreate=True,
        )
        # --- the book
        self._position_checks = _Bounded(
            counter(
                "fillguard_position_checks", "Position checks after a fill, by result.", ("result",)
            ),
            POSITION_RESULTS,
            precreate=True,
        )
        self._position_syncs = counter(
            "fillguard_position_syncs",
            "Times the book was synced to a confirmed broker position after a mismatch.",
        )
        self._by_symbol: Counter | None = None
        self._symbol_children: dict[tuple[object, object], Any] = {}
        self._symbols: set[str] = set()
        if symbol_labels:
            self._by_symbol = counter(
                "fillguard_position_checks_by_symbol",
                "Position checks by symbol and result (opt-in: symbol_labels=True).",
                ("symbol", "result"),
            )
        # --- stream, tracker, budget, journal
        self._stream_connected = gauge(
            "fillguard_stream_connected",
            "1 while the trade_updates stream is connected, else 0.",
        )
        self._stream_events = _Bounded(
            counter(
                "fillguard_stream_events",
                "trade_updates frames handled, by event kind (or malformed, unknown, null).",
                ("kind",),
            ),
            STREAM_EVENT_KINDS,
            precreate=False,
        )
        self._stream_reconnects = _Bounded(
            counter(
                "fillguard_stream_reconnects", "trade_updates reconnects, by reason.", ("reason",)
            ),
            STREAM_RECONNECT_REASONS,
            precreate=True,
        )
        self._gaps_repaired = counter(
            "fillguard_stream_gaps_repaired",
            "Gaps signalled by a stream (re)connect that a REST sweep covered.",
        )
        self._sweeps = counter("fillguard_sweeps", "REST sweeps of orders run.")
        self._swept_orders = counter("fillguard_swept_orders", "Orders returned by REST sweeps.")
        self._tracked = gauge("fillguard_tracked_orders", "Orders the tracker watches, now.")
        self._budget_wait = _Bounded(
            histogram(
                "fillguard_budget_wait_seconds",
                "Seconds a request waited for the request budget, by priority.",
                _BUDGET_WAIT_BUCKETS,
                ("priority",),
            ),
            BUDGET_PRIORITIES,
            precreate=False,
        )
        self._budget_remaining = gauge(
            "fillguard_budget_remaining",
            "Requests left in the current rate-limit window, as last learned (NaN until then).",
        )
        self._budget_remaining.set(math.nan)
        self._journal_write = _Bounded(
            histogram(
                "fillguard_journal_write_seconds",
                "Seconds to commit one journal record, by record kind.",
                _JOURNAL_BUCKETS,
                ("kind",),
            ),
            JOURNAL_KINDS,
            precreate=False,
        )

    def _bad(self, report: str) -> None:
        # Called from an except block: this must not raise either.
        with contextlib.suppress(Exception):
            self._bad_reports(report).inc()

    # ------------------------------------------------------------------ fill detection and trades
    def fill_detection(self, result: str, seconds: float) -> None:
        """A monitor ended with ``result`` after ``seconds``."""
        try:
            self._detections(result).inc()
            self._detection_seconds.observe(_seconds(seconds))
        except Exception:
            self._bad("fill_detection")

    def submit_outcome(self, outcome: str) -> None:
        """A trade's submission ended with ``outcome``."""
        try:
            self._submits(outcome).inc()
        except Exception:
            self._bad("submit_outcome")

    def slippage(self, ratio: float) -> None:
        """A fill's signed adverse slippage ratio."""
        try:
            self._slippage.observe(_finite(ratio))
        except Exception:
            self._bad("slippage")

    def unresolved_trades(self, count: int) -> None:
        """Trades still UNKNOWN, now."""
        try:
            self._unresolved.set(_count(count))
        except Exception:
            self._bad("unresolved_trades")

    def fill_detection_engine_enabled(self, enabled: bool) -> None:
        """The feature flag's state."""
        try:
            self._engine_enabled.set(1.0 if enabled else 0.0)
        except Exception:
            self._bad("fill_detection_engine_enabled")

    # ------------------------------------------------------------------ broker requests
    def broker_request(self, endpoint: str, code: str, seconds: float) -> None:
        """One HTTP request ended with ``code`` after ``seconds``."""
        try:
            key = (endpoint, code)
            child = self._request_children.get(key)
            if child is None:
                child = self._request_child(endpoint, code)
            child.inc()
            self._request_seconds(endpoint).observe(_seconds(seconds))
        except Exception:
            self._bad("broker_request")

    def _request_child(self, endpoint: object, code: object) -> Any:
        label_endpoint = endpoint if isinstance(endpoint, str) and endpoint in ENDPOINTS else OTHER
        label_code = _code_label(code)
        with self._lock:
            child = self._requests.labels(label_endpoint, label_code)
            # Cache only well-formed keys: an odd value must not grow the cache without bound.
            if (label_endpoint, label_code) == (endpoint, code) and isinstance(code, str):
                self._request_children[(endpoint, code)] = child
        return child

    def retry(self, reason: str) -> None:
        """A request is retried for ``reason``."""
        try:
            self._retries(reason).inc()
        except Exception:
            self._bad("retry")

    # ------------------------------------------------------------------ the book
    def position_check(self, result: str) -> None:
        """A position check ended with ``result``."""
        try:
            self._position_checks(result).inc()
        except Exception:
            self._bad("position_check")

    def position_check_by_symbol(self, symbol: str, result: str) -> None:
        """A position check of ``symbol`` ended with ``result`` (counted only with symbol_labels)."""
        if self._by_symbol is None:
            return
        try:
            child = self._symbol_children.get((symbol, result))
            if child is None:
                child = self._symbol_child(symbol, result)
            child.inc()
        except Exception:
            self._bad("position_check_by_symbol")

    def _symbol_child(self, symbol: object, result: object) -> Any:
        assert self._by_symbol is not None
        label_result = result if isinstance(result, str) and result in POSITION_RESULTS else OTHER
        with self._lock:
            label_symbol = OTHER
            if (
                isinstance(symbol, str)
                and _SYMBOL.fullmatch(symbol)
                and (symbol in self._symbols or len(self._symbols) < MAX_SYMBOLS)
            ):
                self._symbols.add(symbol)
                label_symbol = symbol
            child = self._by_symbol.labels(label_symbol, label_result)
            if (label_symbol, label_result) == (symbol, result):
                self._symbol_children[(symbol, result)] = child
        return child

    def position_sync(self) -> None:
        """The book was synced after a mismatch."""
        try:
            self._position_syncs.inc()
        except Exception:
            self._bad("position_sync")

    # ------------------------------------------------------------------ stream, tracker, budget, journal
    def stream_connected(self, connected: bool) -> None:
        """The trade_updates connection went up or down."""
        try:
            self._stream_connected.set(1.0 if connected else 0.0)
        except Exception:
            self._bad("stream_connected")

    def stream_event(self, kind: str) -> None:
        """A stream frame of ``kind`` was handled."""
        try:
            self._stream_events(kind).inc()
        except Exception:
            self._bad("stream_event")

    def stream_reconnect(self, reason: str) -> None:
        """The stream reconnects for ``reason``."""
        try:
            self._stream_reconnects(reason).inc()
        except Exception:
            self._bad("stream_reconnect")

    def stream_gap_repaired(self) -> None:
        """A (re)connect gap was covered by a sweep."""
        try:
            self._gaps_repaired.inc()
        except Exception:
            self._bad("stream_gap_repaired")

    def sweep(self, orders: int) -> None:
        """A REST sweep returned ``orders`` orders."""
        try:
            count = _count(orders)
            self._sweeps.inc()
            self._swept_orders.inc(count)
        except Exception:
            self._bad("sweep")

    def tracked_orders(self, count: int) -> None:
        """Orders the tracker watches, now."""
        try:
            self._tracked.set(_count(count))
        except Exception:
            self._bad("tracked_orders")

    def budget_wait(self, priority: str, seconds: float) -> None:
        """A request of ``priority`` waited ``seconds`` for the budget."""
        try:
            self._budget_wait(priority).observe(_seconds(seconds))
        except Exception:
            self._bad("budget_wait")

    def budget_remaining(self, remaining: int) -> None:
        """Requests left in the rate-limit window."""
        try:
            self._budget_remaining.set(_count(remaining))
        except Exception:
            self._bad("budget_remaining")

    def journal_write(self, kind: str, seconds: float) -> None:
        """A journal record of ``kind`` was committed in ``seconds``."""
        try:
            self._journal_write(kind).observe(_seconds(seconds))
        except Exception:
            self._bad("journal_write")


def exported_names(registry: CollectorRegistry) -> frozenset[str]:
    """Every series name ``registry`` can export, labelled children or not.

    A counter ``x`` exports ``x_total`` (and ``x_created``), a histogram ``x`` exports
    ``x_bucket``, ``x_sum``, ``x_count`` (and ``x_created``), a gauge ``x`` itself.
    """
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
        "gauge": ("",),
        "info": ("_info",),
        "stateset": ("",),
        "enum": ("",),
    }
    names: set[str] = set()
    for family in registry.collect():
        for suffix in suffixes.get(family.type, ("",)):
            names.add(family.name + suffix)
        names.update(sample.name for sample in family.samples)
    return frozenset(names)


@dataclass(frozen=True, slots=True)
class MetricsServer:
    """A running metrics endpoint: ``url`` serves the text format; :meth:`stop` ends it."""

    host: str
    port: int
    _server: Any
    _thread: threading.Thread

    @property
    def url(self) -> str:
        """``http://HOST:PORT/metrics``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving, close the port and join the thread (idempotent)."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(
    port: int,
    host: str = "127.0.0.1",
    *,
    registry: CollectorRegistry | PrometheusMetrics,
) -> MetricsServer:
    """Serve ``registry`` (or a :class:`PrometheusMetrics`' registry) on ``host:port``.

    ``port`` 0 picks a free port (see ``.port``). The server runs on a daemon thread until
    ``.stop()``; any path answers the Prometheus text format.
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be an integer from 0 to 65535, got {port!r}")
    target = registry.registry if isinstance(registry, PrometheusMetrics) else registry
    server_class: type[ThreadingWSGIServer] = _Server6 if ":" in host else ThreadingWSGIServer
    server = make_server(
        host, port, make_wsgi_app(target), server_class, handler_class=_QuietHandler
    )
    actual_port = int(server.server_port)
    # A short poll interval: stop() returns within ~50 ms instead of the default 0.5 s.
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name=f"fillguard-metrics:{actual_port}",
        daemon=True,
    )
    thread.start()
    return MetricsServer(host, actual_port, server, thread)


class _QuietHandler(WSGIRequestHandler):
    """No access log on stderr for every scrape."""

    def log_message(self, format: str, *args: Any) -> None:
        """Log nothing."""


class _Server6(ThreadingWSGIServer):
    address_family = socket.AF_INET6
