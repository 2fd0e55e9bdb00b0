"""The simulator's own Prometheus metrics, served at ``GET /metrics`` on its port (no auth).

:class:`SimMetrics` is a collector on its own registry. The HTTP shell reports every answer it
carries out (:meth:`SimMetrics.served`); stream connections and stream faults are read from the
:class:`~fillguard.sim.stream.StreamHub`'s per-connection stats when scraped, so the stream code
reports nothing itself.

Series (all counters except ``fillguard_sim_stream_connections_open``):

* ``fillguard_sim_requests_total{endpoint,status}``: answers decided, by endpoint (the bounded
  names of :func:`fillguard.observer.endpoint_of`; ground truth is ``sim_control``) and status
  (an HTTP status, or ``reset`` for a dropped connection);
* ``fillguard_sim_faults_total{knob}``: faults fired, by knob (``ApiResponse.fault_name`` for
  REST; ``stream_drop``, ``stream_duplicate``, ``stream_delay``, ``stream_disconnect``);
* ``fillguard_sim_orders_submitted_total``: orders the broker accepted (a 200 to
  ``POST /v2/orders``, or applied with its response lost);
* ``fillguard_sim_rate_limited_total{cause}``: REST requests answered 429, ``window`` when the
  rate-limit window was spent (the limit fillguard must never hit on its own), ``burst`` when
  the ``rate_limit_burst`` fault injected it (another user of the account);
* ``fillguard_sim_stream_connections_total`` and ``fillguard_sim_stream_connections_open``;
* ``fillguard_sim_handler_errors_total``: requests the simulator answered 500 because of a bug.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from fillguard.observer import ENDPOINTS, endpoint_of
from fillguard.sim.faults import FaultProfile

if TYPE_CHECKING:
    from fillguard.sim.api import ApiResponse

__all__ = ["CONTENT_TYPE_LATEST", "SIM_ENDPOINTS", "STREAM_FAULTS", "SimMetrics"]

#: Stream fault knobs and the ``ConnectionStats`` field that counts each.
STREAM_FAULTS: tuple[tuple[str, str], ...] = (
    ("stream_drop", "dropped"),
    ("stream_duplicate", "duplicated"),
    ("stream_delay", "delayed"),
    ("stream_disconnect", "disconnected"),
)
_SIM_CONTROL = "sim_control"
_OTHER = "other"


def _knobs() -> frozenset[str]:
    # Every ``*_rate`` knob fires under its name without ``_rate`` (``http_error_rate`` ->
    # ``http_error``); read from FaultProfile so a new knob is counted without a change here.
    return frozenset(
        f.name.removesuffix("_rate") for f in fields(FaultProfile) if f.name.endswith("_rate")
    )


class SimMetrics:
    """The simulator's counters, plus stream figures read from ``stats`` when scraped.

    ``stream_stats``: returns the hub's per-connection stats (``StreamHub.stats``);
    ``handler_errors``: returns how many requests were answered 500 because of a bug.
    """

    def __init__(
        self,
        stream_stats: Callable[[], Sequence[Any]] = tuple,
        handler_errors: Callable[[], int] = lambda: 0,
    ) -> None:
        self._stream_stats = stream_stats
        self._handler_errors = handler_errors
        self._knobs = _knobs()
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str], int] = {}
        self._faults: dict[str, int] = {}
        self._orders_submitted = 0
        self._rate_limited = {"window": 0, "burst": 0}
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(self)

    # ------------------------------------------------------------------ reports
    def served(self, method: str, path: str, answer: ApiResponse) -> None:
        """The HTTP shell carries out ``answer`` to ``method path``: count it."""
        bare = "/" + path.split("?", 1)[0].lstrip("/")
        endpoint = _SIM_CONTROL if bare.startswith("/_sim") else endpoint_of(method, bare)
        status = "reset" if answer.fault == "reset" else str(answer.status)
        knob = answer.fault_name
        submitted = endpoint == "submit_order" and (answer.status == 200 or knob == "lost_submit")
        with self._lock:
            key = (endpoint, status)
            self._requests[key] = self._requests.get(key, 0) + 1
            if knob is not None:
                name = knob if knob in self._knobs else _OTHER
                self._faults[name] = self._faults.get(name, 0) + 1
            if submitted:
                self._orders_submitted += 1
            if answer.status == 429 and endpoint != _SIM_CONTROL:
                self._rate_limited["burst" if knob == "rate_limit_burst" else "window"] += 1

    def requests_by_endpoint(self) -> dict[str, int]:
        """REST requests answered so far, by endpoint (ground-truth calls left out)."""
        out: dict[str, int] = {}
        with self._lock:
            for (endpoint, _status), count in self._requests.items():
                if endpoint != _SIM_CONTROL:
                    out[endpoint] = out.get(endpoint, 0) + count
        return out

    def rate_limited(self) -> dict[str, int]:
        """REST requests answered 429 so far, by cause (``window``, ``burst``)."""
        with self._lock:
            return dict(self._rate_limited)

    # ------------------------------------------------------------------ exposition
    def describe(self) -> Iterator[Metric]:
        """The families, without reading any state (for the registry's name check)."""
        return self._families(empty=True)

    def collect(self) -> Iterator[Metric]:
        """The families with their current values."""
        return self._families(empty=False)

    def _families(self, *, empty: bool) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "fillguard_sim_requests",
            "Requests answered by the simulator, by endpoint and status (reset: connection dropped).",
            labels=["endpoint", "status"],
        )
        faults = CounterMetricFamily(
            "fillguard_sim_faults", "Faults fired, by knob.", labels=["knob"]
        )
        orders = CounterMetricFamily(
            "fillguard_sim_orders_submitted",
            "Orders the broker accepted (answered 200, or applied with the response lost).",
        )
        limited = CounterMetricFamily(
            "fillguard_sim_rate_limited",
            "REST requests answered 429: window (the limit was spent) or burst (a fault).",
            labels=["cause"],
        )
        connections = CounterMetricFamily(
            "fillguard_sim_stream_connections", "trade_updates websocket connections accepted."
        )
        open_connections = GaugeMetricFamily(
            "fillguard_sim_stream_connections_open", "trade_updates websocket connections open now."
        )
        errors = CounterMetricFamily(
            "fillguard_sim_handler_errors",
            "Requests answered 500 because of a simulator bug (0 unless there is one).",
        )
        if not empty:
            with self._lock:
                request_counts = sorted(self._requests.items())
                fault_counts = dict(self._faults)
                submitted = self._orders_submitted
                limited_counts = dict(self._rate_limited)
            stats = list(self._stream_stats())
            for (endpoint, status), count in request_counts:
                requests.add_metric([endpoint, status], count)
            for knob, attribute in STREAM_FAULTS:
                fired = sum(int(getattr(s, attribute, 0) or 0) for s in stats)
                if fired:
                    fault_counts[knob] = fault_counts.get(knob, 0) + fired
            for knob, count in sorted(fault_counts.items()):
                faults.add_metric([knob], count)
            orders.add_metric([], submitted)
            for cause, count in sorted(limited_counts.items()):
                limited.add_metric([cause], count)
            connections.add_metric([], len(stats))
            open_connections.add_metric(
                [], sum(1 for s in stats if not getattr(s, "closed", False))
            )
            errors.add_metric([], self._handler_errors())
        yield from (requests, faults, orders, limited, connections, open_connections, errors)

    def exposition(self) -> bytes:
        """The Prometheus text format of every series."""
        return generate_latest(self.registry)


#: Endpoint label values of ``fillguard_sim_requests_total``.
SIM_ENDPOINTS: tuple[str, ...] = (*ENDPOINTS, _SIM_CONTROL)
