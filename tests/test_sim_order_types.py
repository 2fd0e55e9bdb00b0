"""Lifecycle of each order type and class through the real alpaca-py client over HTTP.

stop, stop_limit, trailing_stop (trail_price and trail_percent, hwm), notional market orders,
and the bracket, oco and oto classes with their legs, each with its trade_updates events.
Prices are pinned on the running simulator, so triggers happen exactly when a test says.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.enums import OrderClass, OrderSide, OrderStatus, QueryOrderStatus, TimeInForce
from alpaca.trading.requests import (
    GetOrderByIdRequest,
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    StopLimitOrderRequest,
    StopLossRequest,
    StopOrderRequest,
    TakeProfitRequest,
    TrailingStopOrderRequest,
)

from fillguard.sim import BrokerConfig, SimServer, run_simulator
from tests.sim_support import check_ledger, wait_for

FLAT = BrokerConfig(
    price_volatility=0.0,
    initial_prices=(("AAPL", Decimal("100")), ("MSFT", Decimal("400"))),
)


@pytest.fixture
def sim() -> Iterator[SimServer]:
    with run_simulator(port=0, config=FLAT, rate_limit=None) as server:
        yield server


def _status(client: Any, order_id: Any) -> str:
    return str(client.get_order_by_id(order_id).status.value)


def _wait_status(client: Any, order_id: Any, status: str, timeout: float = 5.0) -> Any:
    wait_for(lambda: _status(client, order_id) == status, timeout)
    return client.get_order_by_id(order_id)


def _events(sim: SimServer, order_id: Any) -> list[str]:
    return [m["data"]["event"] for m in sim.events() if m["data"]["order"]["id"] == str(order_id)]


def _buy_shares(sim: SimServer, client: Any, qty: int) -> None:
    order = client.submit_order(
        MarketOrderRequest(symbol="AAPL", qty=qty, side=OrderSide.BUY, time_in_force="day")
    )
    _wait_status(client, order.id, "filled")


def test_stop_order_waits_for_its_stop_then_fills_as_market(sim: SimServer) -> None:
    client = sim.trading_client()
    _buy_shares(sim, client, 5)
    order = client.submit_order(
        StopOrderRequest(
            symbol="AAPL", qty=5, side=OrderSide.SELL, time_in_force="gtc", stop_price=95
        )
    )
    assert order.type.value == "stop"
    assert Decimal(str(order.stop_price)) == 95
    live = _wait_status(client, order.id, "new")
    assert live.position_intent.value == "sell_to_close"
    sim.broker.set_price("AAPL", Decimal("96"))  # not yet
    assert _status(client, order.id) == "new"
    sim.broker.set_price("AAPL", Decimal("94.50"))
    filled = _wait_status(client, order.id, "filled")
    assert Decimal(str(filled.filled_qty)) == 5
    assert Decimal(str(filled.filled_avg_price)) <= Decimal("94.50")  # market, after trigger
    assert _events(sim, order.id) == ["accepted", "pending_new", "new", "fill"]
    check_ledger(sim.broker)


def test_stop_limit_triggers_then_rests_as_a_limit(sim: SimServer) -> None:
    client = sim.trading_client()
    order = client.submit_order(
        StopLimitOrderRequest(
            symbol="AAPL",
            qty=2,
            side=OrderSide.BUY,
            time_in_force="day",
            stop_price=105,
            limit_price=106,
        )
    )
    _wait_status(client, order.id, "new")
    sim.broker.set_price("AAPL", Decimal("107"))  # triggers, but above the limit
    wait_for(lambda: sim.broker.orders[str(order.id)].triggered, 5)
    assert _status(client, order.id) == "new"
    sim.broker.set_price("AAPL", Decimal("105.50"))
    filled = _wait_status(client, order.id, "filled")
    assert Decimal(str(filled.filled_avg_price)) <= 106
    check_ledger(sim.broker)


@pytest.mark.parametrize(("trail", "expected_stop"), [("price", "108"), ("percent", "108")])
def test_trailing_stop_tracks_its_high_water_mark(
    sim: SimServer, trail: str, expected_stop: str
) -> None:
    client = sim.trading_client()
    _buy_shares(sim, client, 3)
    kwargs: dict[str, Any] = {"trail_price": 2} if trail == "price" else {"trail_percent": 2}
    if trail == "percent":
        expected_stop = "107.8"  # 2 % under 110
    order = client.submit_order(
        TrailingStopOrderRequest(
            symbol="AAPL", qty=3, side=OrderSide.SELL, time_in_force="gtc", **kwargs
        )
    )
    live = _wait_status(client, order.id, "new")
    assert Decimal(str(live.hwm)) == 100
    sim.broker.set_price("AAPL", Decimal("110"))
    wait_for(lambda: client.get_order_by_id(order.id).hwm == "110", 5)
    moved = client.get_order_by_id(order.id)
    assert Decimal(str(moved.stop_price)) == Decimal(expected_stop)
    sim.broker.set_price("AAPL", Decimal("109"))  # a dip above the stop: hwm stays
    assert client.get_order_by_id(order.id).hwm == "110"
    sim.broker.set_price("AAPL", Decimal("107"))
    filled = _wait_status(client, order.id, "filled")
    assert filled.trail_price == ("2" if trail == "price" else None)
    check_ledger(sim.broker)


def test_notional_market_order_takes_a_fractional_qty_at_the_fill(sim: SimServer) -> None:
    client = sim.trading_client(raw_data=True)
    order = client.submit_order(
        MarketOrderRequest(symbol="MSFT", notional=1000, side=OrderSide.BUY, time_in_force="day")
    )
    assert order["notional"] == "1000"
    assert order["qty"] is None
    filled = wait_for(
        lambda: (o := client.get_order_by_id(order["id"]))["status"] == "filled" and o, 5
    )
    qty, price = Decimal(filled["filled_qty"]), Decimal(filled["filled_avg_price"])
    assert qty == Decimal(filled["qty"])
    assert qty != qty.to_integral_value()
    assert Decimal(999) < qty * price <= Decimal(1000)
    assert Decimal(client.get_open_position("MSFT")["qty"]) == qty
    check_ledger(sim.broker)


def test_bracket_legs_are_held_until_the_entry_fills_then_one_cancels_the_other(
    sim: SimServer,
) -> None:
    client = sim.trading_client()
    order = client.submit_order(
        MarketOrderRequest(
            symbol="AAPL",
            qty=4,
            side=OrderSide.BUY,
            time_in_force="gtc",
            order_class=OrderClass.BRACKET,
            take_profit=TakeProfitRequest(limit_price=110),
            stop_loss=StopLossRequest(stop_price=95),
        )
    )
    assert order.order_class is OrderClass.BRACKET
    assert order.legs is not None
    assert len(order.legs) == 2
    assert {leg.status for leg in order.legs} == {OrderStatus.HELD}
    take_profit, stop_loss = order.legs
    assert (take_profit.type.value, stop_loss.type.value) == ("limit", "stop")
    assert {leg.side for leg in order.legs} == {OrderSide.SELL}
    _wait_status(client, order.id, "filled")
    _wait_status(client, take_profit.id, "new")
    assert _status(client, stop_loss.id) == "new"
    nested = client.get_order_by_id(order.id, GetOrderByIdRequest(nested=True))
    assert nested.legs is not None
    assert {leg.status for leg in nested.legs} == {OrderStatus.NEW}
    listed = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, nested=True))
    assert [o.id for o in listed] == [order.id]
    flat = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL))
    assert len(flat) == 3
    # The position is held by one leg of the pair, not twice.
    assert client.get_open_position("AAPL").qty_available == "0"
    sim.broker.set_price("AAPL", Decimal("111"))
    _wait_status(client, take_profit.id, "filled")
    _wait_status(client, stop_loss.id, "canceled")
    assert _events(sim, stop_loss.id) == ["new", "canceled"]
    with pytest.raises(APIError):
        client.get_open_position("AAPL")  # flat again
    check_ledger(sim.broker)


def test_bracket_entry_canceled_cancels_its_held_legs(sim: SimServer) -> None:
    client = sim.trading_client()
    order = client.submit_order(
        LimitOrderRequest(
            symbol="AAPL",
            qty=1,
            side=OrderSide.BUY,
            time_in_force="day",
            limit_price=90,
            order_class=OrderClass.BRACKET,
            take_profit=TakeProfitRequest(limit_price=99),
            stop_loss=StopLossRequest(stop_price=85, limit_price=84),
        )
    )
    assert order.legs is not None
    assert order.legs[1].type.value == "stop_limit"
    _wait_status(client, order.id, "new")
    client.cancel_order_by_id(order.id)
    _wait_status(client, order.id, "canceled")
    for leg in order.legs:
        assert _status(client, leg.id) == "canceled"
    check_ledger(sim.broker)


def test_bracket_prices_are_checked_against_the_base_price(sim: SimServer) -> None:
    client = sim.trading_client()
    with pytest.raises(APIError) as err:
        client.submit_order(
            MarketOrderRequest(
                symbol="AAPL",
                qty=1,
                side=OrderSide.BUY,
                time_in_force="day",
                order_class=OrderClass.BRACKET,
                take_profit=TakeProfitRequest(limit_price=99),
                stop_loss=StopLossRequest(stop_price=95),
            )
        )
    assert err.value.status_code == 422
    assert "take_profit.limit_price must be >= base_price + 0.01" in str(err.value)


def test_oco_exits_are_live_at_once_and_one_cancels_the_other(sim: SimServer) -> None:
    client = sim.trading_client()
    _buy_shares(sim, client, 2)
    order = client.submit_order(
        LimitOrderRequest(
            symbol="AAPL",
            qty=2,
            side=OrderSide.SELL,
            time_in_force="gtc",
            limit_price=110,
            order_class=OrderClass.OCO,
            take_profit=TakeProfitRequest(limit_price=110),
            stop_loss=StopLossRequest(stop_price=95),
        )
    )
    assert order.legs is not None
    assert len(order.legs) == 1
    stop_leg = order.legs[0]
    _wait_status(client, order.id, "new")
    _wait_status(client, stop_leg.id, "new")
    sim.broker.set_price("AAPL", Decimal("94"))
    _wait_status(client, stop_leg.id, "filled")
    _wait_status(client, order.id, "canceled")
    assert _events(sim, order.id)[-1] == "canceled"
    check_ledger(sim.broker)


def test_oto_activates_its_one_leg_when_the_entry_fills(sim: SimServer) -> None:
    client = sim.trading_client()
    order = client.submit_order(
        MarketOrderRequest(
            symbol="AAPL",
            qty=1,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.DAY,
            order_class=OrderClass.OTO,
            stop_loss=StopLossRequest(stop_price=90),
        )
    )
    assert order.legs is not None
    assert len(order.legs) == 1
    leg = order.legs[0]
    _wait_status(client, order.id, "filled")
    _wait_status(client, leg.id, "new")
    sim.broker.set_price("AAPL", Decimal("89"))
    _wait_status(client, leg.id, "filled")
    assert _events(sim, leg.id) == ["new", "fill"]
    check_ledger(sim.broker)
