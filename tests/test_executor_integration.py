"""SmartOrderExecutor through the real alpaca-py SDK against the simulator server (loopback).

Real sockets, real time, short intervals: each test takes well under 5 s.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from fillguard.executor import OrderConfig, SmartOrderExecutor, TradeOutcome, TradeResult
from fillguard.results import FillStatus
from fillguard.sim import SimServer, run_simulator
from fillguard.sim.core import BrokerConfig
from fillguard.sim.faults import Latency
from tests.executor_support import capture_logs, fast_config

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


# Short real intervals: every wait here is real time against the server.
_REAL_TIME: dict[str, Any] = {
    "timeout": 3.0,
    "request_timeout_seconds": 0.5,
    "initial_poll_interval": 0.02,
    "poll_interval_increase": 0.02,
    "max_poll_interval": 0.1,
    "retry_base_delay": 0.02,
    "retry_max_delay": 0.1,
    "final_verification_seconds": 2.0,
    "not_found_grace_seconds": 1.0,
    "consistency_timeout_seconds": 2.0,
    "consistency_initial_delay": 0.02,
    "consistency_max_delay": 0.2,
    "lookup_spacing_seconds": 0.05,
    "legacy_poll_interval": 0.05,
}


def config(**overrides: Any) -> OrderConfig:
    """fast_config with real-time intervals; ``overrides`` win."""
    return fast_config(**{**_REAL_TIME, **overrides})


def orders_of(sim: SimServer, coid: str) -> list[dict[str, Any]]:
    return [e for e in sim.ledger()["orders"] if e["order"]["client_order_id"] == coid]


def check_against_ledger(sim: SimServer, result: TradeResult) -> dict[str, Any]:
    """The trade is one order at the broker and the result tells its truth."""
    [entry] = orders_of(sim, result.client_order_id)
    truth = entry["order"]
    assert truth["id"] == result.order_id
    assert Decimal(truth["filled_qty"]) == result.filled_qty
    if result.filled:
        assert truth["status"] == "filled"
        assert Decimal(truth["filled_avg_price"]) == result.fill_price
    return entry


@pytest.mark.parametrize("mode", ["504", "reset", "hang"])
def test_submit_answer_lost_after_the_order_was_created(sim: SimServer, mode: str) -> None:
    sim.set_faults({"lost_submit_rate": 1.0, "lost_submit_modes": [mode], "hang_seconds": 1.0})
    executor = SmartOrderExecutor(sim.trading_client(), config())
    started = time.monotonic()
    with capture_logs() as logs:
        result = executor.execute_trade("AAPL", "buy", 3, expected_price=sim.broker.price("AAPL"))
    elapsed = time.monotonic() - started
    entry = check_against_ledger(sim, result)
    assert [p["outcome"] for p in entry["posts"]] == [f"applied, response lost ({mode})"]
    assert result.filled, result
    assert result.submit_attempts == 1
    assert logs.events("submit_outcome_unknown")
    assert logs.events("order_found_after_ambiguous_submit")
    assert result.consistency is not None
    assert result.consistency.consistent
    if mode == "hang":
        assert elapsed >= 0.5  # the request timeout ran out: a hang is a read timeout
    assert elapsed < 5


def test_positions_lagging_fills_are_rechecked(sim: SimServer) -> None:
    """Without the stream's position_qty, REST positions that lag are re-checked."""
    sim.set_faults({"position_lag_seconds": 0.3})
    executor = SmartOrderExecutor(
        sim.trading_client(), config(consistency_timeout_seconds=2.0, use_stream=False)
    )
    results = [
        executor.execute_trade("MSFT", "buy", 2),
        executor.execute_trade("MSFT", "sell", 2),  # flat: the position 404s
        executor.execute_trade("MSFT", "sell", 3),  # short
    ]
    for result in results:
        check_against_ledger(sim, result)
        assert result.filled
        assert result.consistency is not None
        assert result.consistency.consistent, result.consistency
        assert result.consistency.checks > 1  # the first read showed the old position
    assert [r.consistency.broker_qty for r in results if r.consistency] == [2, 0, -3]
    assert results[2].consistency is not None
    assert results[2].consistency.broker_side == "short"
    assert executor.expected_position("MSFT") == -3
    assert Decimal(sim.ledger()["positions"]["MSFT"]["qty"]) == -3


@pytest.fixture(scope="module")
def slow_partials() -> Iterator[SimServer]:
    """A simulator whose orders fill in parts 0.3 s apart, so a partial fill is seen."""
    broker = BrokerConfig(partial_gap=Latency("fixed", 0.3, 0.3))
    with run_simulator(
        port=0,
        faults={"partial_fill_rate": 1.0, "max_partial_fills": 4},
        seed=2,
        rate_limit=None,
        config=broker,
    ) as server:
        yield server


def test_partial_fill_then_the_consistency_check(slow_partials: SimServer) -> None:
    sim = slow_partials
    executor = SmartOrderExecutor(
        sim.trading_client(), config(partial_fill_policy="cancel_remainder")
    )
    with capture_logs() as logs:
        result = executor.execute_trade("NVDA", "buy", 10)
    entry = check_against_ledger(sim, result)
    assert entry["order"]["status"] == "canceled"
    assert result.status is FillStatus.PARTIALLY_FILLED
    assert 0 < result.filled_qty < 10
    assert len(entry["executions"]) >= 1
    assert logs.fields("partial_fill_detected")[0]["action"] == "cancel_remainder"
    c = result.consistency
    assert c is not None
    assert c.consistent, c
    assert c.expected_qty == result.filled_qty
    assert Decimal(sim.ledger()["positions"]["NVDA"]["qty"]) == result.filled_qty
    assert executor.expected_position("NVDA") == result.filled_qty
    nxt = executor.execute_trade("NVDA", "sell", result.filled_qty)
    assert nxt.consistency is not None
    assert nxt.consistency.consistent
    assert executor.expected_position("NVDA") == result.filled_qty - nxt.filled_qty


def test_feature_flag_switches_paths_at_run_time(sim: SimServer) -> None:
    executor = SmartOrderExecutor(sim.trading_client(), config())
    assert executor.fill_detection_enabled
    engine = executor.execute_trade("AMZN", "buy", 1)
    executor.fill_detection_enabled = False
    legacy = executor.execute_trade("AMZN", "buy", 1)
    executor.fill_detection_enabled = True
    back = executor.execute_trade("AMZN", "buy", 1)
    for result in (engine, legacy, back):
        check_against_ledger(sim, result)
        assert result.filled
        assert result.consistency is not None
        assert result.consistency.consistent
    assert engine.fill is not None
    assert legacy.fill is not None
    assert back.fill is not None
    assert legacy.fill.detection_method == "legacy_polling"
    assert engine.fill.detection_method != "legacy_polling"
    assert back.fill.detection_method != "legacy_polling"
    assert executor.expected_position("AMZN") == 3


def test_rough_day_one_order_per_trade(sim: SimServer) -> None:
    sim.set_faults(
        {
            "base": "rough",
            "lost_submit_rate": 0.5,
            "http_error_rate": 0.1,
            "reset_rate": 0.05,
            "hang_rate": 0.02,
            "hang_seconds": 1.0,
        }
    )
    executor = SmartOrderExecutor(sim.trading_client(), config(timeout_seconds=1.5))
    results = [executor.execute_trade("GOOG", "buy", 1 + i % 3) for i in range(6)]
    ledger = sim.ledger()
    coids = [e["order"]["client_order_id"] for e in ledger["orders"]]
    assert len(coids) == len(set(coids)), "duplicate orders"
    assert set(coids) <= {r.client_order_id for r in results}
    for result in results:
        if result.order_id is not None:
            check_against_ledger(sim, result)
        elif not (result.error or "").startswith("outcome unknown"):
            assert orders_of(sim, result.client_order_id) == []


def test_the_stream_position_qty_spares_the_position_read(sim: SimServer) -> None:
    """With the stream, the fill event's position_qty confirms the book: no REST read."""
    executor = SmartOrderExecutor(sim.trading_client(), config())
    executor.execute_trade("MSFT", "buy", 1)  # the first trade may precede the stream
    result = executor.execute_trade("MSFT", "buy", 2)
    assert result.consistency is not None
    assert result.consistency.consistent
    assert result.consistency.checks == 0
    assert result.consistency.broker_qty == 3


def test_threads_trading_one_symbol_keep_the_book_equal_to_the_broker(sim: SimServer) -> None:
    from concurrent.futures import ThreadPoolExecutor

    sim.set_faults({"position_lag_seconds": 0.1})
    executor = SmartOrderExecutor(sim.trading_client(), config())
    plan = [("TSLA", "buy", 2), ("TSLA", "buy", 1), ("META", "buy", 3)] * 3
    with capture_logs() as logs, ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda t: executor.execute_trade(*t), plan))
    ledger = sim.ledger()
    for result in results:
        check_against_ledger(sim, result)
        assert result.filled
    for symbol in ("TSLA", "META"):
        broker = Decimal(ledger["positions"][symbol]["qty"])
        assert executor.expected_position(symbol) == broker
    assert logs.events("position_synced") == [], "a false mismatch between our own trades"
    # no check saw a false mismatch: a check another trade overlapped is only unverified
    checks = [r.consistency for r in results if r.consistency is not None]
    assert all(c.verdict in ("consistent", "unverified") for c in checks)
    assert all(c.consistent or "changed during the check" in (c.discrepancy or "") for c in checks)


def test_threads_trading_reconciling_and_resolving_one_symbol_keep_the_book_exact(
    sim: SimServer,
) -> None:
    """Issue 7: concurrent trades, reconciles and resolves in one symbol, under lost answers,
    partial fills, cancel races, stale reads and lagging positions: no fill is booked twice,
    no false mismatch is synced, and once quiet the book equals the broker's position."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    sim.set_faults(
        {
            "lost_submit_rate": 0.3,
            "partial_fill_rate": 0.4,
            "cancel_race_rate": 0.5,
            "stale_read_rate": 0.2,
            "position_lag_seconds": 0.1,
        }
    )
    executor = SmartOrderExecutor(
        sim.trading_client(),
        config(unknown_horizon_seconds=1.0, position_settle_seconds=0.5, timeout=1.0),
    )
    price = sim.broker.price("TSLA")
    plan: list[dict[str, Any]] = []
    for i in range(12):
        trade: dict[str, Any] = {"side": "buy", "qty": 1 + i % 3}
        if i % 4 == 3:  # a limit below the market: it rests and is canceled at the deadline
            trade["order_type"] = "limit"
            trade["limit_price"] = (price * Decimal("0.98")).quantize(Decimal("0.01"))
        plan.append(trade)
    done = threading.Event()

    def keeper() -> None:
        while not done.is_set():
            executor.reconcile_open_orders("TSLA")
            executor.resolve_unknown("TSLA")
            time.sleep(0.01)

    with capture_logs() as logs, ThreadPoolExecutor(max_workers=5) as pool:
        keepers = [pool.submit(keeper), pool.submit(keeper)]
        try:
            results = list(
                ThreadPoolExecutor(max_workers=3).map(
                    lambda t: executor.execute_trade("TSLA", **t), plan
                )
            )
        finally:
            done.set()
        for k in keepers:
            k.result()
    end = time.monotonic() + 10
    while (executor.unresolved_trades() or executor.open_orders("TSLA")) and time.monotonic() < end:
        executor.resolve_unknown()
        executor.reconcile_open_orders("TSLA")
        time.sleep(0.1)
    assert not executor.unresolved_trades()
    time.sleep(0.6)  # past the position lag
    ledger = sim.ledger()
    assert all(len(orders_of(sim, r.client_order_id)) <= 1 for r in results)
    broker = Decimal(ledger["positions"].get("TSLA", {}).get("qty", "0"))
    assert executor.expected_position("TSLA") == broker
    assert logs.events("position_synced") == [], "a false mismatch between our own trades"


def test_trades_in_flight_in_one_symbol_do_not_read_each_others_orders(sim: SimServer) -> None:
    """Each trade touches its symbol (books what our open orders filled) and checks its
    position; orders another trade's monitor is watching are left to that monitor. Reading
    them too made the requests per trade grow with the trades in flight (issue 8: 74.8 per
    trade at 1,000 in flight; measured by benchmarks/bench_tracker.py)."""
    from concurrent.futures import ThreadPoolExecutor

    executor = SmartOrderExecutor(sim.trading_client(), config(timeout=1.0))
    executor.execute_trade("NVDA", "buy", 1)  # the baseline, and the stream connected
    price = sim.broker.price("NVDA")
    limit = (price * Decimal("0.97")).quantize(Decimal("0.01"))
    before = sim.metrics.requests_by_endpoint().get("get_order", 0)
    trades = 16

    def trade(i: int) -> TradeResult:
        time.sleep(0.04 * i)  # staggered: each trade touches the symbol with others resting
        return executor.execute_trade("NVDA", "buy", 1, order_type="limit", limit_price=limit)

    with ThreadPoolExecutor(max_workers=trades) as pool:
        results = list(pool.map(trade, range(trades)))
    assert all(r.outcome is TradeOutcome.PLACED for r in results)
    reads = sim.metrics.requests_by_endpoint().get("get_order", 0) - before
    # At most a couple of reads per trade (its own final check), not one per other trade.
    assert reads <= 3 * trades, reads
    executor.reconcile_open_orders("NVDA")
    position = sim.broker.positions.get("NVDA")
    assert executor.expected_position("NVDA") == (position.qty if position else Decimal(0))
