"""FillDetectionEngine unit tests: the loop, policies and deadline, in fake time.

Most tests drive the engine with a tiny scripted client (``tests.engine_support``) so the
broker's answers arrive in a precise order; a few use the simulator core in-process through
the real alpaca-py TradingClient.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from alpaca.trading.enums import OrderStatus

from fillguard import (
    FillDetectionEngine,
    FillResult,
    FillStatus,
    InvalidInputError,
)
from fillguard.clock import FakeClock, SystemClock
from fillguard.sim.api import SimApi
from fillguard.sim.core import Broker, OrderRequest
from fillguard.sim.inprocess import IN_PROCESS_URL, SimAdapter
from tests.engine_support import (
    ORDER_ID,
    ActivitiesClient,
    ScriptedClient,
    Timeline,
    assert_matches_ledger,
    capture_logs,
    fast_config,
    make_rig,
)
from tests.helpers_errors import api_error, connection_reset, rate_limited, read_timeout
from tests.order_factory import order_dict, order_model, order_object

FILLED_AT = "2026-01-05T14:30:01Z"


def filled(price: str | None = "100.5", qty: str = "10", **extra: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "status": "filled",
        "filled_qty": qty,
        "filled_avg_price": price,
        "filled_at": FILLED_AT,
        "qty": qty,
    }
    fields.update(extra)
    return order_dict(**fields)


def partial(
    qty: str, status: str = "partially_filled", price: str | None = "100"
) -> dict[str, Any]:
    return order_dict(status=status, filled_qty=qty, filled_avg_price=price)


def new() -> dict[str, Any]:
    return order_dict(status="new")


def engine(client: Any, clock: FakeClock, **config: Any) -> FillDetectionEngine:
    return FillDetectionEngine(client, fast_config(**config), clock=clock)


def monitor(
    client: Any, clock: FakeClock | None = None, *, expected_price: Any = None, **config: Any
) -> FillResult:
    clock = clock or FakeClock()
    return engine(client, clock, **config).monitor_order_fill(
        ORDER_ID, expected_price=expected_price
    )


def bound(**config: Any) -> float:
    cfg = fast_config(**config)
    return cfg.timeout_seconds + cfg.final_verification_seconds + cfg.request_timeout_seconds


# ---------------------------------------------------------------------------------- endings
def test_a_fill_on_the_first_read_ends_the_loop_at_once() -> None:
    clock = FakeClock()
    client = ScriptedClient([filled()])
    result = monitor(client, clock)
    assert result.filled
    assert result.status is FillStatus.FILLED
    assert result.fill_price == Decimal("100.5")
    assert result.filled_qty == Decimal(10)
    assert result.requested_qty == Decimal(10)
    assert result.detection_method == "polling"
    assert result.elapsed_seconds == 0
    assert result.api_calls == 1
    assert result.poll_intervals == ()
    assert result.verification is not None
    assert result.verification.methods_confirmed == (
        "status_field",
        "quantity_match",
        "fill_price",
        "timestamps",
    )
    assert result.verification.confidence == 1.0
    assert client.count("cancel_order_by_id") == 0


def test_a_fill_after_some_reads_is_returned_on_the_read_that_shows_it() -> None:
    clock = FakeClock()
    client = ScriptedClient([new(), new(), partial("0", "accepted"), filled()])
    result = monitor(client, clock)
    assert result.status is FillStatus.FILLED
    assert client.count("get_order_by_id") == 4
    assert result.poll_intervals == pytest.approx((0.1, 0.2, 0.3))


def test_rejection_ends_the_loop_promptly() -> None:
    clock = FakeClock()
    client = ScriptedClient([order_dict(status="pending_new"), order_dict(status="rejected")])
    result = monitor(client, clock, timeout_seconds=30)
    assert result.status is FillStatus.REJECTED
    assert not result.filled
    assert result.filled_qty == 0
    assert result.fill_price is None
    assert client.count("get_order_by_id") == 2
    assert client.count("cancel_order_by_id") == 0
    assert result.elapsed_seconds < 0.2


@pytest.mark.parametrize("status", ["canceled", "expired"])
def test_ended_by_someone_else_with_shares_filled_is_partially_filled(status: str) -> None:
    """Rule 8: a canceled or expired order with shares filled is PARTIALLY_FILLED."""
    clock = FakeClock()
    client = ScriptedClient([new(), partial("4", status, price="99.25")])
    result = monitor(client, clock, partial_fill_policy="wait")
    assert result.status is FillStatus.PARTIALLY_FILLED
    assert not result.filled
    assert result.filled_qty == Decimal(4)
    assert result.fill_price == Decimal("99.25")
    assert client.count("cancel_order_by_id") == 0


def test_ended_by_someone_else_with_nothing_filled() -> None:
    result = monitor(ScriptedClient([partial("0", "canceled", price=None)]))
    assert result.status is FillStatus.CANCELED
    assert result.filled_qty == 0
    assert result.fill_price is None


# ---------------------------------------------------------------------------------- shapes
@pytest.mark.parametrize(
    "order",
    [
        filled(),
        order_model(
            status="filled", filled_qty="10", filled_avg_price="100.5", filled_at=FILLED_AT
        ),
        order_object(
            status=OrderStatus.FILLED, filled_qty=10, filled_avg_price=100.5, filled_at=FILLED_AT
        ),
        filled(status="FILLED"),
        filled(status="Filled"),
        filled(status="OrderStatus.FILLED"),
        filled(status=OrderStatus.FILLED),
        SimpleNamespace(
            status="filled", qty=Decimal(10), filled_qty=Decimal(10), filled_avg_price=100.5
        ),
    ],
    ids=["dict", "model", "object-enum", "UPPER", "Title", "enum-repr", "dict-enum", "bare"],
)
def test_a_fill_is_recognised_in_every_shape(order: Any) -> None:
    result = monitor(ScriptedClient([order]))
    assert result.status is FillStatus.FILLED
    assert result.fill_price == Decimal("100.5")
    assert isinstance(result.fill_price, Decimal)
    assert result.filled_qty == Decimal(10)
    assert isinstance(result.filled_qty, Decimal)


@pytest.mark.parametrize(
    "garbage",
    [
        None,
        42,
        "filled",
        [],
        {},
        {"status": 7, "filled_qty": "NaN", "filled_avg_price": "abc"},
        {"status": None, "qty": [], "filled_qty": {}, "filled_at": "yesterday"},
        order_dict(status="filled", filled_qty="-5", filled_avg_price="-1", qty="x"),
        order_dict(filled_qty="Infinity", filled_avg_price="1e999999", submitted_at=12),
        SimpleNamespace(),
        object(),
    ],
)
def test_garbage_fields_never_raise_and_never_count_as_a_fill(garbage: Any) -> None:
    clock = FakeClock()
    client = ScriptedClient([garbage, garbage, filled()])
    result = monitor(client, clock)
    assert result.status is FillStatus.FILLED
    assert client.count("get_order_by_id") == 3


class _Hostile:
    """An order whose every attribute raises."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"no {name}")


def test_garbage_until_the_end_is_unknown_never_timeout() -> None:
    for garbage in (_Hostile(), None, {"status": 3}):
        clock = FakeClock()
        client = ScriptedClient([garbage])
        result = monitor(client, clock)
        assert result.status is FillStatus.UNKNOWN
        assert not result.filled
        assert result.error


# ---------------------------------------------------------------------------------- transport
class _RecordingAdapter(SimAdapter):
    def __init__(self, api: SimApi) -> None:
        super().__init__(api)
        self.timeouts: list[Any] = []

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        self.timeouts.append(kwargs.get("timeout"))
        return super().send(request, *args, **kwargs)


def test_engine_owns_the_transport_of_a_trading_client() -> None:
    from alpaca.trading.client import TradingClient

    clock = FakeClock()
    broker = Broker(clock=clock, seed=1)
    api = SimApi(broker, key_id="K", secret_key="S", rate_limit=None)
    client = TradingClient("K", "S", url_override=IN_PROCESS_URL)
    adapter = _RecordingAdapter(api)
    client._session.mount(IN_PROCESS_URL, adapter)
    assert client._retry == 3  # alpaca-py's own 429/504 retries, with blocking 3 s sleeps
    eng = FillDetectionEngine(client, fast_config(request_timeout_seconds=0.75), clock=clock)
    assert eng.transport_owned
    assert client._retry == 0
    order = broker.submit(
        OrderRequest(symbol="AAPL", side="buy", type="market", time_in_force="day", qty=Decimal(2))
    )
    result = eng.monitor_order_fill(order.id)
    assert result.status is FillStatus.FILLED
    assert adapter.timeouts
    assert all(t == (0.75, 0.75) for t in adapter.timeouts), adapter.timeouts


def test_a_client_without_a_session_is_left_alone_quietly() -> None:
    client = ScriptedClient([filled()])
    with capture_logs(logging.WARNING) as logs:
        eng = engine(client, FakeClock())
    assert not eng.transport_owned
    assert not hasattr(client, "_retry")
    assert not hasattr(client, "_session")
    assert logs.names() == []
    assert eng.monitor_order_fill(ORDER_ID).filled


# ---------------------------------------------------------------------------------- polling
def test_intervals_grow_linearly_to_the_cap_and_are_logged() -> None:
    clock = FakeClock()
    client = ScriptedClient([new()] * 9 + [filled()])
    with capture_logs() as logs:
        result = monitor(client, clock, timeout_seconds=30)
    assert result.poll_intervals == pytest.approx(
        (0.1, 0.2, 0.3, 0.4, 0.5, 0.5, 0.5, 0.5, 0.5), abs=1e-9
    )
    logged = [f["interval"] for f in logs.fields("poll_interval")]
    assert logged == pytest.approx(list(result.poll_intervals))
    assert result.elapsed_seconds == pytest.approx(sum(result.poll_intervals))


def test_the_last_interval_is_cut_to_the_deadline() -> None:
    clock = FakeClock()
    client = ScriptedClient([new()])
    result = monitor(client, clock, timeout_seconds=1.0, cancel_on_timeout=False)
    assert sum(result.poll_intervals) == pytest.approx(1.0)
    assert result.poll_intervals[:4] == pytest.approx((0.1, 0.2, 0.3, 0.4))
    assert max(result.poll_intervals) <= 0.5


# ---------------------------------------------------------------------------------- wake-ups
def test_notify_wakes_a_waiting_monitor_in_fake_time() -> None:
    clock = FakeClock()
    engines: list[FillDetectionEngine] = []
    reads: list[float] = []

    def read() -> Any:
        reads.append(clock.monotonic())
        if len(reads) == 1:
            assert engines[0].notify(ORDER_ID)  # a stream event lands while the monitor works
            return new()
        return filled()

    engines.append(
        engine(ScriptedClient([read]), clock, initial_poll_interval=5, max_poll_interval=5)
    )
    result = engines[0].monitor_order_fill(ORDER_ID)
    assert result.filled
    assert reads == [reads[0], reads[0]]  # woken at once, not after 5 s


def test_notify_wakes_a_waiting_monitor_in_real_time() -> None:
    state = {"order": new()}
    first_read = threading.Event()

    def read() -> Any:
        order = state["order"]
        first_read.set()
        return order

    client = ScriptedClient([read])
    eng = FillDetectionEngine(
        client,
        fast_config(initial_poll_interval=10, max_poll_interval=10, timeout_seconds=20),
        clock=SystemClock(),
    )
    results: list[FillResult] = []
    thread = threading.Thread(target=lambda: results.append(eng.monitor_order_fill(ORDER_ID)))
    started = time.monotonic()
    thread.start()
    assert first_read.wait(5)
    state["order"] = filled()
    time.sleep(0.05)
    assert eng.notify(ORDER_ID)
    thread.join(5)
    assert not thread.is_alive()
    assert results[0].filled
    assert time.monotonic() - started < 2.0
    assert client.count("get_order_by_id") == 2
    assert not eng.notify(ORDER_ID)  # the wake-up is gone once monitoring ended


def test_notify_of_an_unknown_order_is_false() -> None:
    assert not engine(ScriptedClient([new()]), FakeClock()).notify("nobody")


# ---------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("status", [401, 403])
def test_refused_reads_end_unknown_with_the_refusal_and_never_raise(status: int) -> None:
    """Rule 2: once given a valid order id, nothing raises; a refusal is kept on the result."""
    client = ScriptedClient([api_error(status)])
    result = monitor(client)
    assert result.status is FillStatus.UNKNOWN
    assert result.order_id == ORDER_ID
    assert result.order_open
    assert result.refusal is not None
    assert result.refusal.status_code == status
    assert client.count("get_order_by_id") > 1  # it kept asking until the deadline


def test_a_refusal_once_then_the_order_is_read_normally() -> None:
    client = ScriptedClient([api_error(403), new(), filled()])
    result = monitor(client)
    assert result.filled
    assert result.refusal is None


def test_a_404_beyond_the_grace_ends_unknown_never_raises() -> None:
    clock = FakeClock()
    start = clock.monotonic()
    client = ScriptedClient([api_error(404)])
    result = monitor(client, clock, not_found_grace_seconds=0.5)
    assert result.status is FillStatus.UNKNOWN
    assert result.refusal is not None
    assert result.refusal.status_code == 404
    assert clock.monotonic() - start >= 0.5
    assert client.count("get_order_by_id") > 1  # retried inside the grace first


def test_a_404_longer_than_the_grace_then_the_order_appears_is_followed() -> None:
    """A placed order answering 404 past the grace window is still found when it shows up."""
    clock = FakeClock()
    client = ScriptedClient([api_error(404)] * 30 + [filled()])
    result = monitor(client, clock, not_found_grace_seconds=0.5, timeout_seconds=30)
    assert result.filled


def test_a_404_within_the_grace_is_retried() -> None:
    client = ScriptedClient([api_error(404), api_error(404), new(), filled()])
    result = monitor(client, not_found_grace_seconds=5)
    assert result.filled
    assert result.retries >= 2


def test_a_404_after_the_order_was_seen_is_a_stale_read() -> None:
    client = ScriptedClient([new(), api_error(404), api_error(404), filled()])
    result = monitor(client, not_found_grace_seconds=0)
    assert result.filled


def test_transient_errors_are_retried_and_counted() -> None:
    client = ScriptedClient(
        [
            api_error(500),
            api_error(502),
            rate_limited(retry_after="0.2"),
            connection_reset(),
            filled(),
        ]
    )
    result = monitor(client, max_retries=10)
    assert result.filled
    assert result.retries == 4
    assert result.api_calls == 5


def test_after_max_retries_it_keeps_monitoring_at_the_max_interval_to_the_deadline() -> None:
    clock = FakeClock()
    start = clock.monotonic()
    client = ScriptedClient([api_error(503)])
    with capture_logs() as logs:
        result = monitor(client, clock, max_retries=1, timeout_seconds=3)
    assert result.status is FillStatus.UNKNOWN
    assert clock.monotonic() - start >= 3  # never returned early
    assert "monitoring_degraded" in logs.names()
    assert "retries_exhausted" in logs.names()
    intervals = result.poll_intervals
    assert intervals
    assert all(i == pytest.approx(0.5) for i in intervals[:-1])
    assert clock.monotonic() - start <= bound(timeout_seconds=3) + 1e-9


def test_monitoring_recovers_after_an_outage() -> None:
    clock = FakeClock()
    outage = Timeline(clock, [(0.0, api_error(503)), (2.0, filled())])
    result = monitor(ScriptedClient([outage]), clock, max_retries=1, timeout_seconds=5)
    assert result.filled
    assert 2.0 <= result.elapsed_seconds <= 2.0 + 0.5 + 1e-9


def test_hangs_never_push_the_return_past_the_bound() -> None:
    clock = FakeClock()
    rt = 1.0

    def hang() -> Any:
        clock.advance(rt)
        return read_timeout()

    client = ScriptedClient([hang])
    start = clock.monotonic()
    result = monitor(client, clock, timeout_seconds=1.5, request_timeout_seconds=rt)
    assert result.status is FillStatus.UNKNOWN
    assert clock.monotonic() - start <= bound(timeout_seconds=1.5, request_timeout_seconds=rt)


@pytest.mark.parametrize("seed", range(20))
def test_return_is_within_the_bound_against_a_hanging_simulator(seed: int) -> None:
    rig = make_rig(
        seed=seed,
        faults={"hang_rate": 0.4, "hang_seconds": 3.0, "http_error_rate": 0.2},
        config=fast_config(timeout_seconds=0.5, final_verification_seconds=0.5),
    )
    order = rig.submit(type="limit", limit_price="1.00")  # rests: runs to the deadline
    start = rig.clock.monotonic()
    result = rig.engine.monitor_order_fill(order.id)
    elapsed = rig.clock.monotonic() - start
    assert elapsed <= 0.5 + 0.5 + 1.0 + 1e-9
    assert result.elapsed_seconds == pytest.approx(elapsed)
    assert result.status in (FillStatus.TIMEOUT, FillStatus.UNKNOWN)
    if result.status is FillStatus.TIMEOUT:
        assert rig.truth(order.id).status == "canceled"


def test_no_sleep_runs_past_the_deadline() -> None:
    clock = FakeClock()
    client = ScriptedClient([rate_limited(retry_after="60")])
    start = clock.monotonic()
    result = monitor(client, clock, max_retries=5, timeout_seconds=2)
    assert result.status is FillStatus.UNKNOWN
    assert clock.monotonic() - start <= bound(timeout_seconds=2) + 1e-9


# ---------------------------------------------------------------------------------- prices
def test_filled_with_price_null_keeps_reading_and_returns_the_price() -> None:
    clock = FakeClock()
    client = ScriptedClient([filled(price=None), filled(price=None), filled(price="100.7")])
    with capture_logs() as logs:
        result = monitor(client, clock)
    assert result.filled
    assert result.fill_price == Decimal("100.7")
    assert client.count("get_order_by_id") == 3
    assert logs.names().count("fill_price_pending") == 2
    # A fill without a price is re-read at the fastest interval.
    assert result.poll_intervals == pytest.approx((0.1, 0.1))


def test_a_price_that_never_shows_comes_from_the_fill_activities() -> None:
    rows = [
        {"order_id": ORDER_ID, "qty": "6", "price": "100"},
        {"order_id": ORDER_ID, "qty": "4", "price": "102"},
    ]
    client = ActivitiesClient([filled(price=None)], activities=rows)
    result = monitor(client)
    assert result.filled
    assert result.fill_price == Decimal("100.8")
    assert result.detection_method is not None
    assert result.detection_method.endswith("+activities")
    assert client.count("cancel_order_by_id") == 0


def test_a_price_that_never_shows_anywhere_is_unknown_not_a_fill() -> None:
    clock = FakeClock()
    start = clock.monotonic()
    result = monitor(ScriptedClient([filled(price=None)]), clock)
    assert result.status is FillStatus.UNKNOWN
    assert not result.filled
    assert result.filled_qty == Decimal(10)
    assert result.error is not None
    assert "price" in result.error
    assert clock.monotonic() - start <= bound() + 1e-9


# ---------------------------------------------------------------------------------- deadline
def test_cancel_422_already_filled_is_a_fill() -> None:
    clock = FakeClock()
    client = ScriptedClient(
        [Timeline(clock, [(0.0, new()), (2.05, filled())])], cancels=[api_error(422)]
    )
    result = monitor(client, clock, timeout_seconds=2)
    assert result.status is FillStatus.FILLED
    assert result.detection_method == "cancel_verification"
    assert client.count("cancel_order_by_id") == 1


def test_cancel_204_then_pending_cancel_then_filled_is_a_fill() -> None:
    clock = FakeClock()
    state: dict[str, dict[str, Any] | None] = {"order": new()}
    timeline = Timeline(clock, [(0.0, new())])

    def read() -> Any:
        return state["order"] if state["order"] is not None else timeline()

    def on_cancel() -> None:
        cancel_at = clock.monotonic()
        state["order"] = None
        timeline.points = [
            (0.0, new()),
            (cancel_at - timeline.t0, partial("3", "pending_cancel")),
            (cancel_at - timeline.t0 + 0.25, filled("100.3")),
        ]

    client = ScriptedClient([read], on_cancel=on_cancel)
    result = monitor(client, clock, timeout_seconds=1)
    assert result.status is FillStatus.FILLED
    assert result.filled
    assert result.fill_price == Decimal("100.3")
    assert result.detection_method == "cancel_verification"
    assert client.count("cancel_order_by_id") == 1


def _cancel_ends_with(final: dict[str, Any], **config: Any) -> tuple[FillResult, ScriptedClient]:
    clock = FakeClock()
    canceled: dict[str, Any] = {}

    def read() -> Any:
        return final if canceled else new()

    client = ScriptedClient([read], on_cancel=lambda: canceled.setdefault("yes", True))
    return monitor(client, clock, timeout_seconds=1, **config), client


def test_canceled_at_the_deadline_with_nothing_filled_is_timeout() -> None:
    result, client = _cancel_ends_with(partial("0", "canceled", price=None))
    assert result.status is FillStatus.TIMEOUT
    assert result.filled_qty == 0
    assert result.fill_price is None
    assert client.count("cancel_order_by_id") == 1


def test_canceled_at_the_deadline_with_some_filled_is_partially_filled() -> None:
    result, _ = _cancel_ends_with(partial("4", "canceled", price="100.25"))
    assert result.status is FillStatus.PARTIALLY_FILLED
    assert not result.filled
    assert result.filled_qty == Decimal(4)
    assert result.fill_price == Decimal("100.25")


def test_expired_while_we_cancel_is_reported_by_what_filled() -> None:
    result, _ = _cancel_ends_with(partial("0", "expired", price=None))
    assert result.status is FillStatus.TIMEOUT


def test_unreadable_final_state_is_unknown_never_timeout() -> None:
    clock = FakeClock()
    outage = Timeline(clock, [(0.0, new()), (0.9, api_error(503))])
    result = monitor(ScriptedClient([outage]), clock, timeout_seconds=1, max_retries=2)
    assert result.status is FillStatus.UNKNOWN
    assert not result.filled
    assert result.error


def test_a_cancel_that_never_settles_is_unknown() -> None:
    clock = FakeClock()
    canceled: dict[str, Any] = {}

    def read() -> Any:
        return partial("0", "pending_cancel", price=None) if canceled else new()

    client = ScriptedClient([read], on_cancel=lambda: canceled.setdefault("yes", True))
    result = monitor(client, clock, timeout_seconds=1)
    assert result.status is FillStatus.UNKNOWN
    assert result.error is not None
    assert "pending_cancel" in result.error


def test_without_cancel_on_timeout_nothing_is_canceled() -> None:
    clock = FakeClock()
    client = ScriptedClient([new()])
    result = monitor(client, clock, timeout_seconds=1, cancel_on_timeout=False)
    assert result.status is FillStatus.TIMEOUT
    assert client.count("cancel_order_by_id") == 0

    client = ScriptedClient([new(), partial("2")])
    result = monitor(client, timeout_seconds=1, cancel_on_timeout=False, partial_fill_policy="wait")
    assert result.status is FillStatus.PARTIALLY_FILLED
    assert result.filled_qty == Decimal(2)
    assert client.count("cancel_order_by_id") == 0


def test_without_cancel_a_stale_final_read_does_not_undo_a_fill_seen() -> None:
    # Seen filled (price pending), then the final check reads an older version.
    client = ScriptedClient([new(), filled(price=None), new()])
    result = monitor(client, timeout_seconds=1, cancel_on_timeout=False)
    assert result.status is not FillStatus.TIMEOUT
    assert result.status is FillStatus.UNKNOWN
    assert result.filled_qty == Decimal(10)


def test_without_cancel_a_stale_final_read_keeps_the_larger_partial() -> None:
    client = ScriptedClient([new(), partial("6"), partial("2")])
    result = monitor(client, timeout_seconds=1, cancel_on_timeout=False, partial_fill_policy="wait")
    assert result.status is FillStatus.PARTIALLY_FILLED
    assert result.filled_qty == Decimal(6)


def test_the_final_check_is_logged_after_the_deadline() -> None:
    with capture_logs() as logs:
        monitor(ScriptedClient([new()]), timeout_seconds=1, cancel_on_timeout=False)
    names = logs.names()
    assert names.index("deadline_reached") < names.index("final_check")
    assert names[-1] == "monitoring_finished"


# ---------------------------------------------------------------------------------- partials
def test_partial_fill_cancel_remainder_cancels_once_and_reports_the_truth() -> None:
    clock = FakeClock()
    canceled: dict[str, Any] = {}
    after_cancel = [
        partial("4", "pending_cancel", price="100"),
        partial("6", "pending_cancel", price="100.2"),
        partial("6", "canceled", price="100.2"),
    ]

    def read() -> Any:
        if canceled:
            return after_cancel.pop(0) if len(after_cancel) > 1 else after_cancel[0]
        return partial("4")

    client = ScriptedClient([new(), read], on_cancel=lambda: canceled.setdefault("yes", True))
    with capture_logs() as logs:
        result = monitor(client, clock, timeout_seconds=30)
    assert result.status is FillStatus.PARTIALLY_FILLED
    assert not result.filled
    assert result.filled_qty == Decimal(6)  # more filled while the cancel was pending
    assert result.fill_price == Decimal("100.2")
    assert result.detection_method == "partial_fill_cancel"
    assert client.count("cancel_order_by_id") == 1
    assert "partial_fill_detected" in logs.names()
    assert logging.WARNING in logs.levels("partial_fill_detected")
    assert result.elapsed_seconds < 2


def test_partial_fill_whose_rest_fills_during_the_cancel_is_a_fill() -> None:
    client = ScriptedClient([partial("4"), filled("100.1")], cancels=[api_error(422)])
    result = monitor(client)
    assert result.status is FillStatus.FILLED
    assert result.fill_price == Decimal("100.1")


def test_partial_fill_cancel_that_fails_keeps_monitoring_and_cancels_again() -> None:
    clock = FakeClock()
    start = clock.monotonic()
    canceled: dict[str, Any] = {}

    def cancel() -> Any:
        if clock.monotonic() - start < 1.5:  # longer than the 1 s verification budget
            return api_error(503)
        canceled["yes"] = True
        return None

    client = ScriptedClient(
        [lambda: partial("4", "canceled") if canceled else partial("4")], cancels=[cancel]
    )
    with capture_logs() as logs:
        result = monitor(client, clock, max_retries=0, timeout_seconds=10)
    assert "partial_cancel_unsettled" in logs.names()
    assert result.status is FillStatus.PARTIALLY_FILLED
    assert result.filled_qty == Decimal(4)
    assert result.detection_method == "partial_fill_cancel"
    assert result.elapsed_seconds < 10  # settled well before the deadline


def test_partial_fill_policy_wait_keeps_monitoring_to_the_fill() -> None:
    client = ScriptedClient([partial("2"), partial("5"), partial("9"), filled("100.4")])
    result = monitor(client, partial_fill_policy="wait")
    assert result.status is FillStatus.FILLED
    assert result.fill_price == Decimal("100.4")
    assert client.count("cancel_order_by_id") == 0


def test_partial_fill_policy_wait_cancels_only_at_the_deadline() -> None:
    clock = FakeClock()
    canceled: dict[str, Any] = {}
    client = ScriptedClient(
        [lambda: partial("3", "canceled") if canceled else partial("3")],
        on_cancel=lambda: canceled.setdefault("t", clock.monotonic()),
    )
    start = clock.monotonic()
    result = monitor(client, clock, partial_fill_policy="wait", timeout_seconds=2)
    assert result.status is FillStatus.PARTIALLY_FILLED
    assert result.filled_qty == Decimal(3)
    assert canceled["t"] - start >= 2


# ---------------------------------------------------------------------------------- slippage
@pytest.mark.parametrize(
    ("side", "expected", "fill", "pct", "exceeded"),
    [
        ("buy", "100", "101", "1.0000", False),  # at the threshold is not above it
        ("buy", "100", "101.5", "1.5000", True),
        ("buy", "100", "99", "-1.0000", False),
        ("sell", "100", "99", "1.0000", False),
        ("sell", "100", "98.5", "1.5000", True),
        ("sell", "100", "101", "-1.0000", False),
        ("buy", "3", "3.01", "0.3333", False),
        ("sell", "189.12", "189.11", "0.0053", False),
    ],
)
def test_slippage_sign_precision_and_threshold(
    side: str, expected: str, fill: str, pct: str, exceeded: bool
) -> None:
    client = ScriptedClient([filled(price=fill, side=side)])
    with capture_logs() as logs:
        result = monitor(client, expected_price=Decimal(expected))
    assert result.slippage_pct == Decimal(pct)
    assert result.slippage_pct is not None
    assert result.slippage_pct.as_tuple().exponent == -4
    assert result.slippage_exceeded is exceeded
    if exceeded:
        assert logging.WARNING in logs.levels("slippage_exceeded")
    else:
        assert "slippage_exceeded" not in logs.names()


def test_no_expected_price_means_no_slippage() -> None:
    result = monitor(ScriptedClient([filled()]))
    assert result.slippage_pct is None
    assert not result.slippage_exceeded


def test_slippage_of_a_partial_fill_is_reported_too() -> None:
    client = ScriptedClient([partial("4", "canceled", price="102")])
    result = monitor(client, expected_price="100", partial_fill_policy="wait")
    assert result.slippage_pct == Decimal("2.0000")
    assert result.slippage_exceeded


# ---------------------------------------------------------------------------------- inputs
@pytest.mark.parametrize(
    ("order_id", "kwargs"),
    [
        ("", {}),
        (ORDER_ID, {"timeout": 0}),
        (ORDER_ID, {"expected_price": "-1"}),
        (ORDER_ID, {"expected_price": "abc"}),
    ],
)
def test_bad_arguments_are_refused_before_any_request(order_id: str, kwargs: Any) -> None:
    client = ScriptedClient([filled()])
    with pytest.raises(InvalidInputError):
        engine(client, FakeClock()).monitor_order_fill(order_id, **kwargs)
    assert client.calls == []


def test_timeout_argument_overrides_the_config() -> None:
    clock = FakeClock()
    start = clock.monotonic()
    engine(ScriptedClient([new()]), clock, cancel_on_timeout=False).monitor_order_fill(
        ORDER_ID, timeout=0.3
    )
    assert clock.monotonic() - start == pytest.approx(0.3)


# ---------------------------------------------------------------------------------- simulator
@pytest.mark.parametrize("raw_data", [False, True])
def test_in_process_simulator_fill_matches_the_ledger(raw_data: bool) -> None:
    rig = make_rig(seed=7, raw_data=raw_data, faults={"missing_price_rate": 1.0})
    order = rig.submit(qty="2.5")
    result = rig.engine.monitor_order_fill(order.id, expected_price=rig.broker.price("AAPL"))
    assert result.filled
    assert_matches_ledger(result, rig.truth(order.id))
    assert result.slippage_pct is not None


def test_in_process_partial_fill_is_canceled_and_matches_the_ledger() -> None:
    rig = make_rig(seed=3, faults={"partial_fill_rate": 1.0, "max_partial_fills": 4})
    found = False
    for _ in range(10):
        order = rig.submit(qty="40")
        result = rig.engine.monitor_order_fill(order.id)
        truth = rig.truth(order.id)
        assert_matches_ledger(result, truth)
        if result.status is FillStatus.PARTIALLY_FILLED:
            found = True
            assert truth.status == "canceled"
            assert result.detection_method == "partial_fill_cancel"
    assert found


# ---------------------------------------------------------------------------------- threads
def test_one_engine_many_threads_many_orders_no_cross_talk() -> None:
    broker = Broker(clock=SystemClock(), seed=11)
    api = SimApi(broker, key_id="K", secret_key="S", rate_limit=None)
    from fillguard.sim.inprocess import in_process_client

    client = in_process_client(api)
    eng = FillDetectionEngine(
        client,
        fast_config(
            timeout_seconds=5,
            initial_poll_interval=0.01,
            poll_interval_increase=0.01,
            max_poll_interval=0.05,
        ),
        clock=SystemClock(),
    )
    symbols = ["AAPL", "MSFT", "NVDA", "TSLA", "AMZN"]
    orders = [
        broker.submit(
            OrderRequest(
                symbol=symbols[i % 5],
                side="buy",
                type="market",
                time_in_force="day",
                qty=Decimal(i + 1),
            )
        )
        for i in range(50)
    ]
    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(lambda o: eng.monitor_order_fill(o.id), orders))
    broker.advance()
    for order, result in zip(orders, results, strict=True):
        assert result.order_id == order.id
        assert result.symbol == order.symbol
        assert result.requested_qty == order.qty
        assert result.filled, result
        assert_matches_ledger(result, broker.orders[order.id])
    assert eng.notify(orders[0].id) is False  # every wake-up cleaned up


def test_notify_wakes_every_monitor_of_the_same_order() -> None:
    state = {"order": new()}
    client = ScriptedClient([lambda: state["order"]])
    eng = FillDetectionEngine(
        client,
        fast_config(initial_poll_interval=10, max_poll_interval=10, timeout_seconds=20),
        clock=SystemClock(),
    )
    results: list[FillResult] = []
    threads = [
        threading.Thread(target=lambda: results.append(eng.monitor_order_fill(ORDER_ID)))
        for _ in range(2)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    give_up = time.monotonic() + 5
    while client.count("get_order_by_id") < 2 and time.monotonic() < give_up:
        time.sleep(0.005)
    time.sleep(0.05)
    state["order"] = filled()
    assert eng.notify(ORDER_ID)
    for thread in threads:
        thread.join(5)
    assert [r.filled for r in results] == [True, True]
    assert time.monotonic() - started < 3.0
    assert not eng.notify(ORDER_ID)
