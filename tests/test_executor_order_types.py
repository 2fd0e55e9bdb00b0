"""The executor speaks stop, stop_limit and notional market orders, validated before any request."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from fillguard.errors import InvalidInputError
from fillguard.executor import SmartOrderExecutor
from fillguard.intent import validate_intent
from fillguard.results import FillStatus
from fillguard.sim import SimServer, run_simulator
from fillguard.sim.core import BrokerConfig
from tests.executor_support import fast_config

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

FLAT = BrokerConfig(price_volatility=0.0, initial_prices=(("AAPL", Decimal("100")),))
_REAL_TIME: dict[str, Any] = {
    "timeout": 3.0,
    "request_timeout_seconds": 0.5,
    "initial_poll_interval": 0.02,
    "poll_interval_increase": 0.02,
    "max_poll_interval": 0.1,
    "final_verification_seconds": 2.0,
    "consistency_timeout_seconds": 2.0,
    "consistency_initial_delay": 0.02,
    "consistency_max_delay": 0.2,
}


@pytest.fixture
def sim() -> Iterator[SimServer]:
    with run_simulator(port=0, config=FLAT, rate_limit=None) as server:
        yield server


def test_validation_of_stop_and_notional_before_any_request() -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"qty": 1, "order_type": "stop"}, "stop_price"),
        ({"qty": 1, "order_type": "stop_limit", "stop_price": 5}, "limit_price"),
        ({"qty": 1, "stop_price": 5}, "stop_price"),
        (
            {"qty": 1, "order_type": "stop", "stop_price": 5, "time_in_force": "ioc"},
            "time_in_force",
        ),
        ({"qty": None}, "qty"),
        ({"qty": 1, "notional": 10}, "qty"),
        ({"qty": None, "notional": "0.5"}, "notional"),
        ({"qty": None, "notional": 10, "order_type": "limit", "limit_price": 1}, "notional"),
        ({"qty": None, "notional": 10, "time_in_force": "gtc"}, "notional"),
    ]
    for kwargs, field in cases:
        qty = kwargs.pop("qty")
        with pytest.raises(InvalidInputError) as err:
            validate_intent("AAPL", "buy", qty, **kwargs)
        assert err.value.field == field, (kwargs, err.value)
    intent = validate_intent("AAPL", "buy", None, notional="250.50")
    assert intent.wire_body()["notional"] == "250.5"
    assert "qty" not in intent.wire_body()
    stop = validate_intent("AAPL", "sell", 2, order_type="stop_limit", stop_price=9, limit_price=8)
    assert (stop.wire_body()["stop_price"], stop.wire_body()["limit_price"]) == ("9", "8")


def test_a_stop_order_through_the_executor(sim: SimServer) -> None:
    executor = SmartOrderExecutor(sim.trading_client(), fast_config(**_REAL_TIME))
    # A buy stop under the market triggers at once and fills as a market order.
    result = executor.execute_trade("AAPL", "buy", 2, order_type="stop", stop_price=99)
    assert result.status is FillStatus.FILLED, result
    assert result.filled_qty == 2
    order = sim.broker.orders[str(result.order_id)]
    assert order.type == "stop"
    assert order.stop_price == 99
    assert executor.expected_position("AAPL") == 2


def test_a_notional_order_books_the_filled_quantity(sim: SimServer) -> None:
    executor = SmartOrderExecutor(sim.trading_client(), fast_config(**_REAL_TIME))
    result = executor.execute_trade("AAPL", "buy", notional=Decimal("250"))
    assert result.status is FillStatus.FILLED, result
    truth = sim.broker.orders[str(result.order_id)]
    assert truth.notional == 250
    assert result.filled_qty == truth.filled_qty
    assert result.filled_qty != result.filled_qty.to_integral_value()
    assert executor.expected_position("AAPL") == truth.filled_qty
    assert sim.broker.positions["AAPL"].qty == truth.filled_qty
