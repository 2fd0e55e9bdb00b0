"""PrometheusMetrics: each report changes the right series, labels stay bounded, nothing raises."""

from __future__ import annotations

import inspect
import math
import threading
from collections.abc import Callable
from typing import Any

import prometheus_client
import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from fillguard.metrics import (
    BUDGET_PRIORITIES,
    FILL_RESULTS,
    JOURNAL_KINDS,
    MAX_SYMBOLS,
    POSITION_RESULTS,
    RETRY_REASONS,
    STREAM_RECONNECT_REASONS,
    SUBMIT_OUTCOMES,
    PrometheusMetrics,
    exported_names,
    serve,
)
from fillguard.observer import ENDPOINTS, NULL_OBSERVER, NullObserver, Observer
from fillguard.results import FillStatus


@pytest.fixture
def metrics() -> PrometheusMetrics:
    return PrometheusMetrics()


def value(m: PrometheusMetrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


def report_methods() -> list[str]:
    return [
        name
        for name, member in inspect.getmembers(Observer)
        if inspect.isfunction(member) and not name.startswith("_")
    ]


def test_implements_the_observer_protocol_with_the_same_signatures(metrics: PrometheusMetrics) -> None:
    assert isinstance(metrics, Observer)
    for name in report_methods():
        ours = inspect.signature(getattr(PrometheusMetrics, name))
        theirs = inspect.signature(getattr(Observer, name))
        assert list(ours.parameters) == list(theirs.parameters), name
        assert hasattr(NullObserver, name), f"NullObserver lacks {name}"


def test_a_private_registry_by_default_never_the_global_one() -> None:
    a, b = PrometheusMetrics(), PrometheusMetrics()
    assert a.registry is not b.registry
    assert a.registry is not prometheus_client.REGISTRY
    a.position_check("mismatch")
    assert value(a, "fillguard_position_checks_total", result="mismatch") == 1
    assert value(b, "fillguard_position_checks_total", result="mismatch") == 0
    assert prometheus_client.REGISTRY.get_sample_value("fillguard_position_checks_total", {"result": "mismatch"}) is None


def test_an_injected_registry_is_used() -> None:
    registry = CollectorRegistry()
    m = PrometheusMetrics(registry)
    m.submit_outcome("placed")
    assert registry.get_sample_value("fillguard_submit_outcomes_total", {"outcome": "placed"}) == 1


def test_alerted_on_counters_exist_at_zero_before_any_report(metrics: PrometheusMetrics) -> None:
    for result in FILL_RESULTS:
        assert value(metrics, "fillguard_fill_detections_total", result=result) == 0
    for outcome in SUBMIT_OUTCOMES:
        assert value(metrics, "fillguard_submit_outcomes_total", outcome=outcome) == 0
    for result in POSITION_RESULTS:
        assert value(metrics, "fillguard_position_checks_total", result=result) == 0
    for reason in RETRY_REASONS:
        assert value(metrics, "fillguard_retries_total", reason=reason) == 0
    for reason in STREAM_RECONNECT_REASONS:
        assert value(metrics, "fillguard_stream_reconnects_total", reason=reason) == 0
    assert value(metrics, "fillguard_unresolved_trades") == 0
    assert value(metrics, "fillguard_position_syncs_total") == 0
    # Not known until reported: NaN, not a misleading 0 ("legacy", "no budget left").
    assert math.isnan(value(metrics, "fillguard_fill_detection_engine_enabled") or 0.0)
    assert math.isnan(value(metrics, "fillguard_budget_remaining") or 0.0)


def test_fill_detection_counts_the_result_and_observes_the_latency(metrics: PrometheusMetrics) -> None:
    metrics.fill_detection("filled", 0.3)
    metrics.fill_detection(FillStatus.TIMEOUT, 31.0)
    assert value(metrics, "fillguard_fill_detections_total", result="filled") == 1
    assert value(metrics, "fillguard_fill_detections_total", result="timeout") == 1
    assert value(metrics, "fillguard_fill_detection_seconds_count") == 2
    assert value(metrics, "fillguard_fill_detection_seconds_sum") == pytest.approx(31.3)
    assert value(metrics, "fillguard_fill_detection_seconds_bucket", le="0.5") == 1
    assert value(metrics, "fillguard_fill_detection_seconds_bucket", le="60.0") == 2


def test_every_fill_status_has_its_own_series(metrics: PrometheusMetrics) -> None:
    for status in FillStatus:
        metrics.fill_detection(status.value, 1.0)
        assert value(metrics, "fillguard_fill_detections_total", result=status.value) == 1
    assert value(metrics, "fillguard_fill_detections_total", result="other") == 0


def test_trade_reports(metrics: PrometheusMetrics) -> None:
    metrics.submit_outcome("unknown")
    metrics.slippage(-0.003)
    metrics.slippage(0.015)
    metrics.unresolved_trades(3)
    metrics.fill_detection_engine_enabled(False)
    assert value(metrics, "fillguard_submit_outcomes_total", outcome="unknown") == 1
    assert value(metrics, "fillguard_slippage_ratio_count") == 2
    assert value(metrics, "fillguard_slippage_ratio_bucket", le="-0.002") == 1  # signed buckets
    assert value(metrics, "fillguard_slippage_ratio_bucket", le="0.0") == 1
    assert value(metrics, "fillguard_slippage_ratio_bucket", le="0.02") == 2
    assert value(metrics, "fillguard_unresolved_trades") == 3
    assert value(metrics, "fillguard_fill_detection_engine_enabled") == 0
    metrics.fill_detection_engine_enabled(True)
    metrics.unresolved_trades(0)
    assert value(metrics, "fillguard_fill_detection_engine_enabled") == 1
    assert value(metrics, "fillguard_unresolved_trades") == 0


def test_broker_requests_by_endpoint_and_code(metrics: PrometheusMetrics) -> None:
    metrics.broker_request("get_order", "200", 0.004)
    metrics.broker_request("get_order", "200", 0.02)
    metrics.broker_request("submit_order", "transport_error", 10.0)
    metrics.broker_request("submit_order", "429", 0.001)
    assert value(metrics, "fillguard_broker_requests_total", endpoint="get_order", code="200") == 2
    assert value(metrics, "fillguard_broker_requests_total", endpoint="submit_order", code="transport_error") == 1
    assert value(metrics, "fillguard_broker_requests_total", endpoint="submit_order", code="429") == 1
    assert value(metrics, "fillguard_broker_request_seconds_count", endpoint="get_order") == 2
    assert value(metrics, "fillguard_broker_request_seconds_bucket", endpoint="get_order", le="0.005") == 1
    assert value(metrics, "fillguard_broker_request_seconds_sum", endpoint="submit_order") == pytest.approx(10.001)


def test_book_reports(metrics: PrometheusMetrics) -> None:
    metrics.position_check("consistent")
    metrics.position_check("mismatch")
    metrics.position_check("unverified")
    metrics.position_sync()
    metrics.retry("429")
    metrics.retry("5xx")
    for result in POSITION_RESULTS:
        assert value(metrics, "fillguard_position_checks_total", result=result) == 1
    assert value(metrics, "fillguard_position_syncs_total") == 1
    assert value(metrics, "fillguard_retries_total", reason="429") == 1
    assert value(metrics, "fillguard_retries_total", reason="5xx") == 1


def test_stream_tracker_budget_and_journal_reports(metrics: PrometheusMetrics) -> None:
    metrics.stream_connected(True)
    metrics.stream_event("fill")
    metrics.stream_event("malformed")
    metrics.stream_reconnect("silence")
    metrics.stream_gap_repaired()
    metrics.sweep(12)
    metrics.sweep(0)
    metrics.tracked_orders(40)
    metrics.budget_wait("submit", 0.2)
    metrics.budget_remaining(150)
    metrics.journal_write("intent", 0.002)
    assert value(metrics, "fillguard_stream_connected") == 1
    assert value(metrics, "fillguard_stream_events_total", kind="fill") == 1
    assert value(metrics, "fillguard_stream_events_total", kind="malformed") == 1
    assert value(metrics, "fillguard_stream_reconnects_total", reason="silence") == 1
    assert value(metrics, "fillguard_stream_gaps_repaired_total") == 1
    assert value(metrics, "fillguard_sweeps_total") == 2
    assert value(metrics, "fillguard_swept_orders_total") == 12
    assert value(metrics, "fillguard_tracked_orders") == 40
    assert value(metrics, "fillguard_budget_wait_seconds_count", priority="submit") == 1
    assert value(metrics, "fillguard_budget_remaining") == 150
    assert value(metrics, "fillguard_journal_write_seconds_bucket", kind="intent", le="0.0025") == 1
    metrics.stream_connected(False)
    assert value(metrics, "fillguard_stream_connected") == 0


@pytest.mark.parametrize(
    ("call", "series", "labels"),
    [
        (lambda m: m.fill_detection("filled_maybe", 1.0), "fillguard_fill_detections_total", {"result": "other"}),
        (lambda m: m.submit_outcome("ord-123e4567"), "fillguard_submit_outcomes_total", {"outcome": "other"}),
        (lambda m: m.retry("because"), "fillguard_retries_total", {"reason": "other"}),
        (lambda m: m.position_check("AAPL"), "fillguard_position_checks_total", {"result": "other"}),
        (lambda m: m.stream_event("surprise"), "fillguard_stream_events_total", {"kind": "other"}),
        (lambda m: m.stream_reconnect("cosmic ray"), "fillguard_stream_reconnects_total", {"reason": "other"}),
        (lambda m: m.budget_wait("vip", 0.1), "fillguard_budget_wait_seconds_count", {"priority": "other"}),
        (lambda m: m.journal_write("diary", 0.1), "fillguard_journal_write_seconds_count", {"kind": "other"}),
        (
            lambda m: m.broker_request("/v2/orders/5f1c", "200", 0.1),
            "fillguard_broker_requests_total",
            {"endpoint": "other", "code": "200"},
        ),
        (
            lambda m: m.broker_request("get_order", "HTTP 200 OK", 0.1),
            "fillguard_broker_requests_total",
            {"endpoint": "get_order", "code": "other"},
        ),
        (
            lambda m: m.broker_request("get_order", "999", 0.1),
            "fillguard_broker_requests_total",
            {"endpoint": "get_order", "code": "other"},
        ),
    ],
)
def test_unknown_label_values_collapse_to_other(metrics: PrometheusMetrics, call: Callable[[PrometheusMetrics], None], series: str, labels: dict[str, str]) -> None:
    call(metrics)
    assert value(metrics, series, **labels) == 1


def test_an_id_never_becomes_a_label_even_when_sent_hundreds_of_them(metrics: PrometheusMetrics) -> None:
    for i in range(300):
        metrics.submit_outcome(f"coid-{i}")
        metrics.broker_request(f"/v2/orders/{i}", f"id-{i}", 0.01)
    assert value(metrics, "fillguard_submit_outcomes_total", outcome="other") == 300
    families = {f.name: f for f in metrics.registry.collect()}
    request_labels = {tuple(sorted(s.labels.items())) for s in families["fillguard_broker_requests"].samples}
    assert len(request_labels) == 1  # one series: endpoint other, code other
    assert len(metrics._request_cells) == 0  # odd keys are not cached either


def test_every_exported_label_value_is_from_a_known_set(metrics: PrometheusMetrics) -> None:
    known = {
        "result": {*FILL_RESULTS, *POSITION_RESULTS, "other"},
        "outcome": {*SUBMIT_OUTCOMES, "other"},
        "reason": {*RETRY_REASONS, *STREAM_RECONNECT_REASONS, "other"},
        "endpoint": set(ENDPOINTS),
        "priority": {*BUDGET_PRIORITIES, "other"},
        "kind": {*JOURNAL_KINDS, "fill", "other"},
    }
    metrics.fill_detection("x", 1)
    metrics.broker_request("list_orders", "503", 1)
    metrics.stream_event("fill")
    metrics.budget_wait("cancel", 1)
    metrics.journal_write("final", 1)
    for family in metrics.registry.collect():
        for sample in family.samples:
            for label, label_value in sample.labels.items():
                if label in known:
                    assert label_value in known[label], (sample.name, label, label_value)


def test_symbol_labels_are_off_by_default(metrics: PrometheusMetrics) -> None:
    metrics.position_check_by_symbol("AAPL", "mismatch")
    names = {f.name for f in metrics.registry.collect()}
    assert "fillguard_position_checks_by_symbol" not in names
    for family in metrics.registry.collect():
        for sample in family.samples:
            assert "symbol" not in sample.labels


def test_symbol_labels_opt_in_is_bounded() -> None:
    m = PrometheusMetrics(symbol_labels=True)
    m.position_check_by_symbol("AAPL", "mismatch")
    m.position_check_by_symbol("BTC/USD", "consistent")
    m.position_check_by_symbol("not a symbol!", "consistent")
    assert value(m, "fillguard_position_checks_by_symbol_total", symbol="AAPL", result="mismatch") == 1
    assert value(m, "fillguard_position_checks_by_symbol_total", symbol="BTC/USD", result="consistent") == 1
    assert value(m, "fillguard_position_checks_by_symbol_total", symbol="other", result="consistent") == 1
    for i in range(MAX_SYMBOLS + 50):
        m.position_check_by_symbol(f"S{i}", "consistent")
    symbols = {
        s.labels["symbol"]
        for f in m.registry.collect()
        if f.name == "fillguard_position_checks_by_symbol"
        for s in f.samples
    }
    assert len(symbols) <= MAX_SYMBOLS + 1  # the cap plus "other"
    assert "AAPL" in symbols  # symbols seen before the cap keep their own series


ODD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.just(object()),
)


@settings(max_examples=150, deadline=None)
@given(method=st.sampled_from([*report_methods(), "position_check_by_symbol"]), args=st.lists(ODD, max_size=3))
def test_no_report_ever_raises(method: str, args: list[Any]) -> None:
    m = PrometheusMetrics(symbol_labels=True)
    parameters = len(inspect.signature(getattr(PrometheusMetrics, method)).parameters) - 1
    call_args: list[Any] = (args + [None] * parameters)[:parameters]
    getattr(m, method)(*call_args)  # must not raise
    getattr(NULL_OBSERVER, method, lambda *a: None)(*call_args)
    # And whatever it was given, the registry still exports a valid text format.
    list(text_string_to_metric_families(prometheus_client.generate_latest(m.registry).decode()))


def test_values_that_are_not_finite_numbers_are_counted_not_recorded(metrics: PrometheusMetrics) -> None:
    metrics.fill_detection("filled", math.nan)
    metrics.slippage(math.inf)
    metrics.unresolved_trades(-1)
    metrics.tracked_orders("many")  # type: ignore[arg-type]
    metrics.budget_wait("cancel", True)
    assert value(metrics, "fillguard_observer_bad_reports_total", report="fill_detection") == 1
    assert value(metrics, "fillguard_observer_bad_reports_total", report="slippage") == 1
    assert value(metrics, "fillguard_observer_bad_reports_total", report="unresolved_trades") == 1
    assert value(metrics, "fillguard_observer_bad_reports_total", report="tracked_orders") == 1
    assert value(metrics, "fillguard_observer_bad_reports_total", report="budget_wait") == 1
    assert value(metrics, "fillguard_fill_detection_seconds_count") == 0
    assert value(metrics, "fillguard_slippage_ratio_count") == 0
    assert value(metrics, "fillguard_unresolved_trades") == 0


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no str")

    __hash__ = object.__hash__


def test_a_label_value_whose_str_fails_is_counted_as_other(metrics: PrometheusMetrics) -> None:
    metrics.broker_request("get_order", _Unprintable(), 0.1)  # type: ignore[arg-type]
    metrics.broker_request(["unhashable"], "200", 0.1)  # type: ignore[arg-type]
    assert value(metrics, "fillguard_broker_requests_total", endpoint="other", code="other") == 2


def test_a_negative_duration_counts_as_zero(metrics: PrometheusMetrics) -> None:
    metrics.broker_request("get_order", "200", -0.5)  # a clock step backwards
    assert value(metrics, "fillguard_broker_request_seconds_sum", endpoint="get_order") == 0
    assert value(metrics, "fillguard_broker_request_seconds_count", endpoint="get_order") == 1


def test_reports_from_many_threads_are_all_counted(metrics: PrometheusMetrics) -> None:
    def work() -> None:
        for i in range(2000):
            metrics.broker_request(ENDPOINTS[i % len(ENDPOINTS)], ("200", "503")[i % 2], 0.01)
            metrics.fill_detection("filled", 0.1)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = sum(
        s.value
        for f in metrics.registry.collect()
        if f.name == "fillguard_broker_requests"
        for s in f.samples
        if s.name.endswith("_total")
    )
    assert total == 8000
    assert value(metrics, "fillguard_fill_detections_total", result="filled") == 8000


def test_bucket_bounds_are_inclusive_and_the_last_bucket_is_inf(metrics: PrometheusMetrics) -> None:
    metrics.fill_detection("filled", 0.5)
    metrics.fill_detection("filled", 1000.0)
    assert value(metrics, "fillguard_fill_detection_seconds_bucket", le="0.25") == 0
    assert value(metrics, "fillguard_fill_detection_seconds_bucket", le="0.5") == 1
    assert value(metrics, "fillguard_fill_detection_seconds_bucket", le="300.0") == 1
    assert value(metrics, "fillguard_fill_detection_seconds_bucket", le="+Inf") == 2
    assert value(metrics, "fillguard_fill_detection_seconds_count") == 2


def test_scrapes_during_reports_from_threads_see_consistent_growing_counts(metrics: PrometheusMetrics) -> None:
    stop = threading.Event()

    def work() -> None:
        while not stop.is_set():
            metrics.broker_request("get_order", "200", 0.01)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        last = 0.0
        for _ in range(30):
            text = prometheus_client.generate_latest(metrics.registry).decode()
            samples = {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for f in text_string_to_metric_families(text)
                for s in f.samples
            }
            total = samples[("fillguard_broker_requests_total", (("code", "200"), ("endpoint", "get_order")))]
            count = samples[("fillguard_broker_request_seconds_count", (("endpoint", "get_order"),))]
            assert total == count  # one report updates both under one lock
            assert total >= last
            last = total
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert last > 0


def test_exported_names_include_unused_labelled_families_and_histogram_suffixes(metrics: PrometheusMetrics) -> None:
    names = exported_names(metrics.registry)
    assert "fillguard_broker_requests_total" in names  # no child yet, still exported once used
    assert {"fillguard_fill_detection_seconds_bucket", "fillguard_fill_detection_seconds_count"} <= names
    assert "fillguard_unresolved_trades" in names
    assert "fillguard_fill_detections" not in names  # the bare counter name is not a series


def test_serve_exposes_the_text_format_on_loopback_and_stops(metrics: PrometheusMetrics) -> None:
    metrics.position_check("mismatch")
    with serve(0, registry=metrics) as server:
        assert server.host == "127.0.0.1"
        assert server.port > 0
        response = requests.get(server.url, timeout=5)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        families = {f.name: f for f in text_string_to_metric_families(response.text)}
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for s in families["fillguard_position_checks"].samples
        }
        assert samples[("fillguard_position_checks_total", (("result", "mismatch"),))] == 1
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url, timeout=2)
    assert not server._thread.is_alive()


def test_serve_accepts_a_plain_registry_and_rejects_a_bad_port() -> None:
    registry = CollectorRegistry()
    PrometheusMetrics(registry).fill_detection("filled", 0.1)
    server = serve(0, "127.0.0.1", registry=registry)
    try:
        assert "fillguard_fill_detections_total" in requests.get(server.url, timeout=5).text
    finally:
        server.stop()
    server.stop()  # idempotent
    for bad in (-1, 70000, True, "9464"):
        with pytest.raises(ValueError, match="port"):
            serve(bad, registry=registry)  # type: ignore[arg-type]
