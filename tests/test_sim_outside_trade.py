"""The ``outside_trade`` knob: another client of the account buys, so positions differ from what
the client's own fills explain, and fillguard's position check reports (and repairs) it."""

from __future__ import annotations

from decimal import Decimal

import pytest
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.requests import MarketOrderRequest

from fillguard.executor import SmartOrderExecutor
from fillguard.sim import SimServer
from tests.sim_support import check_ledger, flat_sim, run_until
from tests.test_executor_integration import config


def test_an_outside_order_buys_the_symbol_and_is_marked_in_the_ledger() -> None:
    sim = flat_sim(outside_trade_rate=1.0, outside_trade_qty=2)
    ours = sim.client.submit_order(
        MarketOrderRequest(symbol="AAPL", qty=3, side=OrderSide.BUY, time_in_force=TimeInForce.DAY)
    )
    run_until(sim, lambda: all(o.status == "filled" for o in sim.broker.orders.values()))
    ledger = sim.broker.ledger()
    [outside] = [e for e in ledger["orders"] if e["order"]["id"] != str(ours.id)]
    assert [p["source"] for p in outside["posts"]] == ["outside"]
    assert outside["order"]["symbol"] == "AAPL"
    assert outside["order"]["filled_qty"] == "2"
    assert outside["order"]["client_order_id"] != ours.client_order_id
    assert ledger["positions"]["AAPL"]["qty"] == "5"  # 3 ours + 2 someone else's
    check_ledger(sim.broker)


def test_off_by_default_and_only_the_clients_own_orders_trigger_it() -> None:
    sim = flat_sim()
    sim.client.submit_order(
        MarketOrderRequest(symbol="AAPL", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.DAY)
    )
    run_until(sim, lambda: all(o.status == "filled" for o in sim.broker.orders.values()))
    assert len(sim.broker.orders) == 1
    sim = flat_sim(outside_trade_rate=1.0)
    for _ in range(3):
        sim.client.submit_order(
            MarketOrderRequest(
                symbol="MSFT", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.DAY
            )
        )
    run_until(sim, lambda: all(o.status == "filled" for o in sim.broker.orders.values()))
    assert len(sim.broker.orders) == 6  # one outside order per own order, none per outside one
    assert sim.broker.positions["MSFT"].qty == Decimal(6)


@pytest.mark.integration
@pytest.mark.timeout(30)
def test_fillguard_sees_the_mismatch_and_syncs_its_book(sim: SimServer) -> None:
    sim.set_faults({"outside_trade_rate": 1.0})
    # A lag window shorter than the check: the difference is then a confirmed mismatch.
    executor = SmartOrderExecutor(sim.trading_client(), config(position_settle_seconds=0.3))
    result = executor.execute_trade("AAPL", "buy", 2)
    assert result.filled
    assert result.consistency is not None
    assert result.consistency.verdict == "mismatch"
    assert result.consistency.synced
    broker_qty = Decimal(sim.ledger()["positions"]["AAPL"]["qty"])
    assert broker_qty == 3
    assert executor.expected_position("AAPL") == broker_qty
