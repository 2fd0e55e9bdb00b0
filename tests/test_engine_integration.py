"""FillDetectionEngine through the real alpaca-py TradingClient against the simulator server.

Real sockets on loopback, real time, short intervals (each test well under 3 s). The
simulator's broker core is the ground truth: ``sim.broker.orders[id]`` after each run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from alpaca.trading.client import TradingClient
from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest

from fillguard import FillDetectionConfig, FillDetectionEngine, FillResult, FillStatus
from fillguard.clock import SystemClock
from fillguard.sim import SimServer, run_simulator
from fillguard.sim.core import BrokerConfig
from fillguard.sim.faults import Latency
from fillguard.sim.orders import SimOrder
from tests.engine_support import LogCapture, assert_matches_ledger, capture_logs

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def config(**overrides: Any) -> FillDetectionConfig:
    values: dict[str, Any] = {
        "timeout_seconds": 1.0,
        "initial_poll_interval": 0.02,
        "poll_interval_increase": 0.02,
        "max_poll_interval": 0.1,
        "max_retries": 3,
        "retry_base_delay": 0.02,
        "retry_max_delay": 0.1,
        "request_timeout_seconds": 0.5,
        "final_verification_seconds": 1.0,
        "not_found_grace_seconds": 1.0,
        # These tests are about REST reads under faults; the stream and the request budget
        # (shared by every test on the session's simulator) have their own tests.
        "use_stream": False,
        "rate_limit_per_minute": None,
    }
    values.update(overrides)
    return FillDetectionConfig(**values)


def engine(client: Any, **overrides: Any) -> FillDetectionEngine:
    return FillDetectionEngine(client, config(**overrides), clock=SystemClock())


def submit_market(client: Any, qty: str = "5", side: str = "buy", symbol: str = "AAPL") -> str:
    order = client.submit_order(
        MarketOrderRequest(symbol=symbol, qty=qty, side=side, time_in_force="day")
    )
    return str(order.id)


def submit_limit(client: Any, limit: Decimal, qty: str = "5", side: str = "buy") -> str:
    order = client.submit_order(
        LimitOrderRequest(
            symbol="AAPL", qty=qty, side=side, time_in_force="day", limit_price=float(limit)
        )
    )
    return str(order.id)


def truth(sim: SimServer, order_id: str) -> SimOrder:
    sim.broker.advance()
    return sim.broker.orders[order_id]


def bound(cfg: FillDetectionConfig, slack: float = 0.5) -> float:
    """The documented return bound, plus slack for real scheduling and loopback latency."""
    return (
        cfg.timeout_seconds + cfg.final_verification_seconds + cfg.request_timeout_seconds + slack
    )


def outcomes(logs: LogCapture, field: str = "outcome") -> list[Any]:
    return [f[field] for f in logs.fields("cancel_result")]


# ---------------------------------------------------------------------------------- basics
def test_a_market_order_fill_matches_the_ledger(sim: SimServer) -> None:
    client = sim.trading_client()
    eng = engine(client)
    assert client._retry == 0
    order_id = submit_market(client, qty="2.5")
    result = eng.monitor_order_fill(order_id, expected_price=sim.broker.price("AAPL"))
    assert result.filled
    assert_matches_ledger(result, truth(sim, order_id))
    assert result.slippage_pct is not None


def test_a_rejection_is_reported_promptly(sim: SimServer) -> None:
    client = sim.trading_client()
    sim.set_faults({"reject_rate": 1.0})
    order_id = submit_market(client)
    started = time.monotonic()
    result = engine(client, timeout_seconds=10).monitor_order_fill(order_id)
    assert result.status is FillStatus.REJECTED
    assert not result.filled
    assert truth(sim, order_id).status == "rejected"
    assert time.monotonic() - started < 1.0


# ---------------------------------------------------------------------------------- cancel race
class _FillsBeforeCancel(TradingClient):
    """A TradingClient whose cancel arrives just after the order filled (422 from the broker)."""

    sim: SimServer

    def cancel_order_by_id(self, order_id: Any) -> Any:
        order = self.sim.broker.orders[str(order_id)]
        assert order.limit_price is not None
        self.sim.broker.set_price("AAPL", order.limit_price)  # the market reaches the limit
        deadline = time.monotonic() + 2.0
        while truth(self.sim, str(order_id)).status != "filled" and time.monotonic() < deadline:
            time.sleep(0.005)
        return super().cancel_order_by_id(order_id)


def test_cancel_422_already_filled_returns_the_fill(sim: SimServer) -> None:
    client = _FillsBeforeCancel(sim.key_id, sim.secret_key, url_override=sim.base_url)
    client.sim = sim
    limit = (sim.broker.price("AAPL") * Decimal("0.5")).quantize(Decimal("0.01"))
    order_id = submit_limit(client, limit)
    with capture_logs() as logs:
        result = engine(client, timeout_seconds=0.3).monitor_order_fill(order_id)
    assert outcomes(logs) == ["not_cancelable"]
    assert outcomes(logs, "status_code") == [422]
    assert result.status is FillStatus.FILLED
    assert result.detection_method == "cancel_verification"
    assert_matches_ledger(result, truth(sim, order_id))


@pytest.fixture(scope="module")
def slow_sim() -> Iterator[SimServer]:
    """A simulator whose fills take 0.6 s and cancels 0.3 s: a cancel meets a fill in flight."""
    broker_config = BrokerConfig(
        fill_latency=Latency("fixed", 0.6, 0.6), cancel_latency=Latency("fixed", 0.3, 0.3)
    )
    with run_simulator(port=0, seed=5, rate_limit=None, config=broker_config) as server:
        yield server


def test_cancel_204_then_a_late_fill_is_a_fill(slow_sim: SimServer) -> None:
    slow_sim.reset({"cancel_race_rate": 1.0})
    client = slow_sim.trading_client()
    order_id = submit_market(client, qty="7")
    with capture_logs() as logs:
        result = engine(client, timeout_seconds=0.2).monitor_order_fill(order_id)
    assert outcomes(logs) == ["accepted"]  # 204: only "the request was accepted"
    assert result.detection_method == "cancel_verification"
    assert result.status is FillStatus.FILLED
    assert result.filled
    order = truth(slow_sim, order_id)
    assert order.status == "filled"
    assert_matches_ledger(result, order)


def test_cancel_204_with_nothing_filled_is_timeout(slow_sim: SimServer) -> None:
    slow_sim.reset("calm")
    client = slow_sim.trading_client()
    order_id = submit_market(client)
    result = engine(client, timeout_seconds=0.2).monitor_order_fill(order_id)
    assert result.status is FillStatus.TIMEOUT
    order = truth(slow_sim, order_id)
    assert order.status == "canceled"
    assert_matches_ledger(result, order)


# ---------------------------------------------------------------------------------- read faults
def test_stale_reads_never_mislead(sim: SimServer) -> None:
    client = sim.trading_client()
    sim.set_faults({"stale_read_rate": 0.5, "stale_read_seconds": 0.2, "partial_fill_rate": 0.5})
    eng = engine(client, partial_fill_policy="wait")
    for qty in ("3", "10", "0.5", "25"):
        order_id = submit_market(client, qty=qty)
        result = eng.monitor_order_fill(order_id)
        assert result.status is FillStatus.FILLED
        assert_matches_ledger(result, truth(sim, order_id))


def test_status_filled_with_price_null_waits_for_the_price(sim: SimServer) -> None:
    client = sim.trading_client()
    sim.set_faults({"missing_price_rate": 1.0, "missing_price_seconds": 0.3})
    order_id = submit_market(client)
    with capture_logs() as logs:
        result = engine(client, timeout_seconds=2).monitor_order_fill(order_id)
    assert result.filled
    assert "fill_price_pending" in logs.names()
    assert result.detection_method == "polling"
    assert_matches_ledger(result, truth(sim, order_id))


def test_a_price_null_past_the_budget_comes_from_the_fill_activities(sim: SimServer) -> None:
    client = sim.trading_client()
    sim.set_faults({"missing_price_rate": 1.0, "missing_price_seconds": 60})
    order_id = submit_market(client, qty="4")
    result = engine(client, timeout_seconds=0.3).monitor_order_fill(order_id)
    assert result.filled
    assert result.detection_method == "final_check+activities"
    assert_matches_ledger(result, truth(sim, order_id))


def test_partial_fill_remainder_is_canceled_and_reported_truly(sim: SimServer) -> None:
    client = sim.trading_client()
    sim.set_faults({"partial_fill_rate": 1.0, "max_partial_fills": 5})
    eng = engine(client, timeout_seconds=2)
    partials = 0
    for _ in range(4):
        order_id = submit_market(client, qty="40")
        result = eng.monitor_order_fill(order_id)
        order = truth(sim, order_id)
        assert_matches_ledger(result, order)
        if result.status is FillStatus.PARTIALLY_FILLED:
            partials += 1
            assert order.status == "canceled"
            assert 0 < order.filled_qty < order.qty
            assert not result.filled
            assert result.detection_method == "partial_fill_cancel"
        else:
            assert result.status is FillStatus.FILLED
    assert partials >= 1


def _calm_after(sim: SimServer, seconds: float) -> threading.Timer:
    timer = threading.Timer(seconds, lambda: sim.set_faults("calm"))
    timer.start()
    return timer


def test_a_429_storm_longer_than_max_retries(sim: SimServer) -> None:
    client = sim.trading_client()
    order_id = submit_market(client)
    # Every request starts a new 3-request burst of 429s while the knob is at 1.0.
    sim.set_faults({"rate_limit_burst_rate": 1.0, "rate_limit_burst_length": 3})
    timer = _calm_after(sim, 0.6)
    eng = engine(client, max_retries=2, timeout_seconds=2.5)
    started = time.monotonic()
    try:
        with capture_logs() as logs:
            result = eng.monitor_order_fill(order_id)
    finally:
        timer.join()
    elapsed = time.monotonic() - started
    assert "retries_exhausted" in logs.names()
    assert "monitoring_degraded" in logs.names()
    assert result.retries >= 3
    assert result.filled
    assert_matches_ledger(result, truth(sim, order_id))
    assert elapsed >= 0.5
    assert elapsed < 2.5  # alpaca-py's own 3 s sleeps per 429 are off


def test_a_tiny_rate_limit_is_waited_out_within_the_deadline(sim: SimServer) -> None:
    client = sim.trading_client()
    order_id = submit_market(client)
    sim.api.rate_limit = 2  # per 60 s window: the third request gets 429 with a reset
    cfg = config(timeout_seconds=0.8, final_verification_seconds=0.5)
    started = time.monotonic()
    result = FillDetectionEngine(client, cfg, clock=SystemClock()).monitor_order_fill(order_id)
    assert time.monotonic() - started <= bound(cfg)
    # The reset is ~60 s away: no wait may run past the deadline, and no guess is made.
    assert result.status in (FillStatus.FILLED, FillStatus.UNKNOWN)
    if result.filled:
        assert_matches_ledger(result, truth(sim, order_id))


def test_a_read_that_hangs_past_the_request_timeout(sim: SimServer) -> None:
    client = sim.trading_client()
    order_id = submit_market(client, qty="6")
    sim.set_faults({"hang_rate": 1.0, "hang_seconds": 2.0})
    timer = _calm_after(sim, 0.8)
    eng = engine(client, request_timeout_seconds=0.3, timeout_seconds=2.0)
    started = time.monotonic()
    try:
        with capture_logs() as logs:
            result = eng.monitor_order_fill(order_id)
    finally:
        timer.join()
    elapsed = time.monotonic() - started
    errors = [f["error_type"] for f in logs.fields("retry") + logs.fields("retries_exhausted")]
    assert "ReadTimeout" in errors
    assert result.filled
    assert_matches_ledger(result, truth(sim, order_id))
    assert elapsed < 2.0


def test_reads_that_always_hang_end_unknown_within_the_bound(sim: SimServer) -> None:
    client = sim.trading_client()
    order_id = submit_market(client)
    sim.set_faults({"hang_rate": 1.0, "hang_seconds": 3.0})
    cfg = config(request_timeout_seconds=0.3, timeout_seconds=0.5, final_verification_seconds=0.4)
    started = time.monotonic()
    result: FillResult = FillDetectionEngine(client, cfg, clock=SystemClock()).monitor_order_fill(
        order_id
    )
    assert time.monotonic() - started <= bound(cfg, slack=0.3)
    assert result.status is FillStatus.UNKNOWN  # never a guess of "not filled"
    assert not result.filled
