"""What fillguard exports: every metric family, its labels' known values and its buckets.

:mod:`fillguard.metrics` records observer reports into these families; the operations guide's
metrics reference and the alert rules are tested against them.
"""

from __future__ import annotations

import math

from fillguard.metric_store import FamilySpec

__all__ = [
    "BUDGET_PRIORITIES",
    "FILL_RESULTS",
    "JOURNAL_KINDS",
    "MAX_SYMBOLS",
    "OTHER",
    "POSITION_RESULTS",
    "REPORTS",
    "RETRY_REASONS",
    "STREAM_EVENT_KINDS",
    "STREAM_RECONNECT_REASONS",
    "SUBMIT_OUTCOMES",
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
REPORTS: tuple[str, ...] = (
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


_F = FamilySpec

# --- the families (spec names are the metric names without the fillguard_ prefix)
BAD_REPORTS = _F(
    "fillguard_observer_bad_reports",
    "counter",
    "Reports that could not be recorded (a value that is not a finite number).",
    ("report",),
)
DETECTIONS = _F(
    "fillguard_fill_detections",
    "counter",
    "Fill detection monitors ended, by result (a FillStatus value).",
    ("result",),
)
DETECTION_SECONDS = _F(
    "fillguard_fill_detection_seconds",
    "histogram",
    "Seconds from the start of monitoring to the broker's final word (or to giving up).",
    buckets=_DETECTION_BUCKETS,
)
SUBMITS = _F(
    "fillguard_submit_outcomes", "counter", "Trade submissions ended, by outcome.", ("outcome",)
)
SLIPPAGE = _F(
    "fillguard_slippage_ratio",
    "histogram",
    "Signed adverse slippage of a fill as a ratio (0.01: 1 % worse than expected).",
    buckets=_SLIPPAGE_BUCKETS,
)
UNRESOLVED = _F(
    "fillguard_unresolved_trades",
    "gauge",
    "Trades whose outcome is UNKNOWN and still being resolved, now.",
)
ENGINE_ENABLED = _F(
    "fillguard_fill_detection_engine_enabled",
    "gauge",
    "1: the fill detection engine is on; 0: the legacy loop (NaN until reported).",
    initial=math.nan,
)
REQUESTS = _F(
    "fillguard_broker_requests",
    "counter",
    "HTTP requests to the broker ended, by endpoint and status code (or transport_error).",
    ("endpoint", "code"),
)
REQUEST_SECONDS = _F(
    "fillguard_broker_request_seconds",
    "histogram",
    "Seconds one HTTP request to the broker took, by endpoint.",
    ("endpoint",),
    _REQUEST_BUCKETS,
)
RETRIES = _F(
    "fillguard_retries",
    "counter",
    "Requests repeated after a transient failure, by reason.",
    ("reason",),
)
POSITION_CHECKS = _F(
    "fillguard_position_checks", "counter", "Position checks after a fill, by result.", ("result",)
)
POSITION_SYNCS = _F(
    "fillguard_position_syncs",
    "counter",
    "Times the book was synced to a confirmed broker position after a mismatch.",
)
BY_SYMBOL = _F(
    "fillguard_position_checks_by_symbol",
    "counter",
    "Position checks by symbol and result (opt-in: symbol_labels=True).",
    ("symbol", "result"),
)
STREAM_CONNECTED = _F(
    "fillguard_stream_connected", "gauge", "1 while the trade_updates stream is connected, else 0."
)
STREAM_EVENTS = _F(
    "fillguard_stream_events",
    "counter",
    "trade_updates frames handled, by event kind (or malformed, unknown, null).",
    ("kind",),
)
STREAM_RECONNECTS = _F(
    "fillguard_stream_reconnects", "counter", "trade_updates reconnects, by reason.", ("reason",)
)
GAPS_REPAIRED = _F(
    "fillguard_stream_gaps_repaired",
    "counter",
    "Gaps signalled by a stream (re)connect that a REST sweep covered.",
)
SWEEPS = _F("fillguard_sweeps", "counter", "REST sweeps of orders run.")
SWEPT_ORDERS = _F("fillguard_swept_orders", "counter", "Orders returned by REST sweeps.")
TRACKED = _F("fillguard_tracked_orders", "gauge", "Orders the tracker watches, now.")
BUDGET_WAIT = _F(
    "fillguard_budget_wait_seconds",
    "histogram",
    "Seconds a request waited for the request budget, by priority.",
    ("priority",),
    _BUDGET_WAIT_BUCKETS,
)
BUDGET_REMAINING = _F(
    "fillguard_budget_remaining",
    "gauge",
    "Requests left in the current rate-limit window, as last learned (NaN until then).",
    initial=math.nan,
)
JOURNAL_WRITE = _F(
    "fillguard_journal_write_seconds",
    "histogram",
    "Seconds to commit one journal record, by record kind.",
    ("kind",),
    _JOURNAL_BUCKETS,
)


