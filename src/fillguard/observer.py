"""The observer seam: what fillguard reports while it works, with a no-op default.

Every component that does something an operator may want to count (the executor, the engine,
submission, the book, the transport, and the stream, tracker, budget and journal) reports to
an :class:`Observer`. :class:`NullObserver` ignores everything; ``fillguard.metrics``'s
``PrometheusMetrics`` turns the reports into Prometheus series.

Labels stay bounded: an observer is never told an order id, a client order id or a symbol.
Endpoints come from the fixed set :data:`ENDPOINTS` (see :func:`endpoint_of`); codes are an
HTTP status as text or ``"transport_error"``.
"""

from __future__ import annotations

import re
from typing import Protocol, runtime_checkable

__all__ = [
    "ENDPOINTS",
    "NULL_OBSERVER",
    "NullObserver",
    "Observer",
    "endpoint_of",
]

#: The endpoint label values: one per Trading API operation fillguard uses, plus ``other``.
ENDPOINTS: tuple[str, ...] = (
    "submit_order",
    "get_order",
    "get_order_by_client_id",
    "list_orders",
    "cancel_order",
    "replace_order",
    "get_position",
    "list_positions",
    "activities",
    "account",
    "other",
)

_ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("POST", re.compile(r"/orders/?"), "submit_order"),
    ("GET", re.compile(r"/orders:by_client_order_id/?"), "get_order_by_client_id"),
    ("GET", re.compile(r"/orders/?"), "list_orders"),
    ("DELETE", re.compile(r"/orders/?"), "cancel_order"),
    ("GET", re.compile(r"/orders/[^/]+/?"), "get_order"),
    ("DELETE", re.compile(r"/orders/[^/]+/?"), "cancel_order"),
    ("PATCH", re.compile(r"/orders/[^/]+/?"), "replace_order"),
    ("GET", re.compile(r"/positions/?"), "list_positions"),
    ("GET", re.compile(r"/positions/.+"), "get_position"),
    ("GET", re.compile(r"/account/activities(/.*)?"), "activities"),
    ("GET", re.compile(r"/account/?"), "account"),
)
_VERSION_PREFIX = re.compile(r"^(?:[a-z]+://[^/]+)?(?:/v\d+(?:beta\d+)?)?")


def endpoint_of(method: str, path: str) -> str:
    """The bounded endpoint label of a request, e.g. ``("GET", "/v2/orders/<id>") -> get_order``.

    ``path`` may be a full URL; the query string and the ``/v2`` prefix are ignored.
    """
    path = path.split("?", 1)[0]
    path = _VERSION_PREFIX.sub("", path, count=1) or "/"
    method = method.upper()
    for route_method, pattern, name in _ROUTES:
        if route_method == method and pattern.fullmatch(path):
            return name
    return "other"


@runtime_checkable
class Observer(Protocol):
    """Receives fillguard's reports. Every method must be cheap and must never raise."""

    # --- fill detection and trades ---------------------------------------------------
    def fill_detection(self, result: str, seconds: float) -> None:
        """A monitor ended: ``result`` is a FillStatus value; ``seconds`` from start to answer."""

    def submit_outcome(self, outcome: str) -> None:
        """A trade's submission ended: ``outcome`` is a TradeOutcome value."""

    def slippage(self, ratio: float) -> None:
        """A fill's signed adverse slippage as a ratio (0.01 is 1 % worse than expected)."""

    def unresolved_trades(self, count: int) -> None:
        """How many trades are UNKNOWN and still being resolved, now."""

    def fill_detection_engine_enabled(self, enabled: bool) -> None:
        """The state of the feature flag (False: the legacy loop)."""

    # --- broker requests ---------------------------------------------------------------
    def broker_request(self, endpoint: str, code: str, seconds: float) -> None:
        """One HTTP request ended: ``code`` is the status as text or ``transport_error``."""

    def retry(self, reason: str) -> None:
        """A request is retried: ``reason`` is e.g. ``429``, ``5xx``, ``transport``."""

    # --- the book --------------------------------------------------------------------
    def position_check(self, result: str) -> None:
        """A position check ended: ``consistent``, ``mismatch`` or ``unverified``."""

    def position_sync(self) -> None:
        """The book was synced to a confirmed broker position after a mismatch."""

    def position_check_by_symbol(self, symbol: str, result: str) -> None:
        """The same position check with its symbol, for observers that opt into symbol labels.

        Report it in addition to :meth:`position_check`; most observers ignore it.
        """

    # --- stream, tracker, budget, journal (later components) -------------------------
    def stream_connected(self, connected: bool) -> None:
        """The trade_updates connection went up or down."""

    def stream_event(self, kind: str) -> None:
        """A stream frame was handled: an event name, or ``malformed``/``unknown``/``null``."""

    def stream_reconnect(self, reason: str) -> None:
        """The stream reconnects: ``closed``, ``silence``, ``auth``, ``error``."""

    def stream_gap_repaired(self) -> None:
        """A gap signalled by a (re)connect was covered by a sweep."""

    def sweep(self, orders: int) -> None:
        """A REST sweep of orders ran and returned ``orders`` orders."""

    def tracked_orders(self, count: int) -> None:
        """How many orders the tracker watches, now."""

    def budget_wait(self, priority: str, seconds: float) -> None:
        """A request waited ``seconds`` for the request budget."""

    def budget_remaining(self, remaining: int) -> None:
        """Requests left in the current rate-limit window, as last learned."""

    def journal_write(self, kind: str, seconds: float) -> None:
        """A journal record of ``kind`` was committed in ``seconds``."""


class NullObserver:
    """An observer that ignores every report (the default)."""

    def fill_detection(self, result: str, seconds: float) -> None:
        """Ignored."""

    def submit_outcome(self, outcome: str) -> None:
        """Ignored."""

    def slippage(self, ratio: float) -> None:
        """Ignored."""

    def unresolved_trades(self, count: int) -> None:
        """Ignored."""

    def fill_detection_engine_enabled(self, enabled: bool) -> None:
        """Ignored."""

    def broker_request(self, endpoint: str, code: str, seconds: float) -> None:
        """Ignored."""

    def retry(self, reason: str) -> None:
        """Ignored."""

    def position_check(self, result: str) -> None:
        """Ignored."""

    def position_sync(self) -> None:
        """Ignored."""

    def position_check_by_symbol(self, symbol: str, result: str) -> None:
        """Ignored."""

    def stream_connected(self, connected: bool) -> None:
        """Ignored."""

    def stream_event(self, kind: str) -> None:
        """Ignored."""

    def stream_reconnect(self, reason: str) -> None:
        """Ignored."""

    def stream_gap_repaired(self) -> None:
        """Ignored."""

    def sweep(self, orders: int) -> None:
        """Ignored."""

    def tracked_orders(self, count: int) -> None:
        """Ignored."""

    def budget_wait(self, priority: str, seconds: float) -> None:
        """Ignored."""

    def budget_remaining(self, remaining: int) -> None:
        """Ignored."""

    def journal_write(self, kind: str, seconds: float) -> None:
        """Ignored."""


#: The shared no-op observer.
NULL_OBSERVER = NullObserver()
