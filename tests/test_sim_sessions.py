"""The market clock: New York sessions with daylight saving, holidays, /v2/clock, /v2/calendar,
day orders expiring at an accelerated close, extended hours, opg/cls and crypto 24/7."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.enums import OrderSide
from alpaca.trading.models import Clock
from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest

from fillguard.clock import FakeClock
from fillguard.sim import BrokerConfig, run_simulator
from fillguard.sim.api import SimApi
from fillguard.sim.core import Broker
from fillguard.sim.inprocess import in_process_client
from fillguard.sim.market_clock import calendar, is_trading_day, session_at, trading_day
from fillguard.sim.sim_clock import parse_clock
from tests.sim_support import KEY, SECRET, check_ledger, wait_for

FLAT = BrokerConfig(
    price_volatility=0.0,
    initial_prices=(("AAPL", Decimal("100")), ("BTC/USD", Decimal("60000"))),
)
ET_WINTER = "-05:00"


def _ny(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(
    ("instant", "session"),
    [
        ("2026-03-06T09:29:59-05:00", "pre"),
        ("2026-03-06T09:30:00-05:00", "regular"),
        ("2026-03-06T15:59:59-05:00", "regular"),
        ("2026-03-06T16:00:00-05:00", "post"),
        ("2026-03-06T20:00:00-05:00", "closed"),
        ("2026-03-06T03:59:00-05:00", "closed"),
        ("2026-03-07T12:00:00-05:00", "closed"),  # Saturday
        ("2026-03-09T13:30:00+00:00", "regular"),  # 09:30 EDT: daylight saving began on the 8th
        ("2026-03-09T14:29:00+00:00", "regular"),
        ("2026-03-06T14:29:00+00:00", "pre"),  # 09:29 EST
        ("2026-11-27T13:30:00-05:00", "post"),  # the day after Thanksgiving closes at 13:00
        ("2026-12-25T12:00:00-05:00", "closed"),
        ("2026-04-03T12:00:00-04:00", "closed"),  # Good Friday 2026
        ("2026-07-03T12:00:00-04:00", "closed"),  # Independence Day observed on Friday
    ],
)
def test_sessions_in_new_york_time(instant: str, session: str) -> None:
    assert session_at(_ny(instant)) == session


def test_holidays_and_early_closes() -> None:
    assert not is_trading_day(date(2026, 1, 19))  # Martin Luther King Jr. Day
    assert not is_trading_day(date(2026, 6, 19))  # Juneteenth
    assert not is_trading_day(date(2027, 12, 24))  # Christmas (Saturday) observed on Friday
    assert is_trading_day(date(2027, 12, 31))  # New Year 2028 is a Saturday: not observed
    assert trading_day(date(2025, 12, 24)).close == _ny("2025-12-24T13:00:00-05:00")
    assert trading_day(date(2026, 7, 2)).close == _ny("2026-07-02T16:00:00-04:00")
    days = calendar(date(2026, 3, 6), date(2026, 3, 10))
    assert [d.day.isoformat() for d in days] == ["2026-03-06", "2026-03-09", "2026-03-10"]
    assert days[0].settlement_date() == date(2026, 3, 9)


def _in_process(start: datetime) -> tuple[FakeClock, Broker, Any]:
    clock = FakeClock(start)
    broker = Broker(clock=clock, seed=3, config=BrokerConfig(market_hours=True))
    client = in_process_client(SimApi(broker, key_id=KEY, secret_key=SECRET, rate_limit=None))
    client._retry = 0
    return clock, broker, client


def test_clock_endpoint_follows_the_session_with_alpaca_offsets() -> None:
    clock, _, client = _in_process(datetime(2026, 3, 6, 21, 15, tzinfo=UTC))  # 16:15 EST, Friday
    raw = client.get("/clock")
    assert raw["timestamp"].endswith(ET_WINTER)
    assert raw["timestamp"].startswith("2026-03-06T16:15:00.000")
    assert raw["is_open"] is False
    # The next open is Monday, after the switch to daylight saving.
    assert raw["next_open"] == "2026-03-09T09:30:00-04:00"
    assert raw["next_close"] == "2026-03-09T16:00:00-04:00"
    assert isinstance(client.get_clock(), Clock)
    clock.advance(3 * 86400 - 6 * 3600)  # Monday 10:15 EDT
    raw = client.get("/clock")
    assert raw["is_open"] is True
    assert raw["next_close"] == "2026-03-09T16:00:00-04:00"
    assert raw["next_open"] == "2026-03-10T09:30:00-04:00"


def test_calendar_endpoint() -> None:
    _, _, client = _in_process(datetime(2026, 11, 25, 15, 0, tzinfo=UTC))
    rows = client.get("/calendar", {"start": "2026-11-25", "end": "2026-11-30"})
    assert [r["date"] for r in rows] == ["2026-11-25", "2026-11-27", "2026-11-30"]
    assert rows[1] == {
        "date": "2026-11-27",
        "open": "09:30",
        "close": "13:00",
        "session_open": "0400",
        "session_close": "1700",
        "settlement_date": "2026-11-30",
    }


def test_always_open_is_the_default_for_tests() -> None:
    clock = FakeClock(datetime(2026, 3, 7, 12, 0, tzinfo=UTC))  # a Saturday
    broker = Broker(clock=clock, seed=1)
    client = in_process_client(SimApi(broker, key_id=KEY, secret_key=SECRET, rate_limit=None))
    assert client.get("/clock")["is_open"] is True


def test_a_day_order_expires_across_an_accelerated_close() -> None:
    # 600x: the minute to the close takes a tenth of a second.
    with run_simulator(
        port=0, config=FLAT, rate_limit=None, clock="accelerated:600@2026-03-06T15:59:00-05:00"
    ) as sim:
        client = sim.trading_client()
        assert client.get_clock().is_open is True
        order = client.submit_order(
            LimitOrderRequest(
                symbol="AAPL", qty=1, side=OrderSide.BUY, time_in_force="day", limit_price=50
            )
        )
        wait_for(lambda: client.get_order_by_id(order.id).status.value == "expired", 10)
        expired = client.get_order_by_id(order.id)
        assert expired.expired_at is not None
        assert expired.expired_at.astimezone(UTC) >= datetime(2026, 3, 6, 21, 0, tzinfo=UTC)
        assert client.get_clock().is_open is False
        # A market order after the close waits, accepted, for the next open.
        late = client.submit_order(
            MarketOrderRequest(symbol="AAPL", qty=1, side=OrderSide.BUY, time_in_force="day")
        )
        assert client.get_order_by_id(late.id).status.value == "accepted"
        check_ledger(sim.broker)


def test_orders_route_at_the_open_and_extended_hours_limits_fill_pre_market() -> None:
    clock, broker, client = _in_process(datetime(2026, 3, 9, 12, 0, tzinfo=UTC))  # 08:00 EDT
    broker.set_price("AAPL", Decimal("100"))
    market = client.submit_order(
        MarketOrderRequest(symbol="AAPL", qty=1, side=OrderSide.BUY, time_in_force="day")
    )
    extended = client.submit_order(
        LimitOrderRequest(
            symbol="AAPL",
            qty=1,
            side=OrderSide.BUY,
            time_in_force="day",
            limit_price=101,
            extended_hours=True,
        )
    )
    clock.advance(5)
    assert client.get_order_by_id(extended.id).status.value == "filled"
    assert client.get_order_by_id(market.id).status.value == "accepted"
    clock.advance(90 * 60)  # 09:30:05
    assert client.get_order_by_id(market.id).status.value == "filled"
    fill_at = broker.orders[str(market.id)].executions[0].timestamp
    assert session_at(fill_at) == "regular"
    check_ledger(broker)


def test_opg_and_cls_windows_and_auctions() -> None:
    clock, broker, client = _in_process(datetime(2026, 3, 9, 12, 0, tzinfo=UTC))  # 08:00 EDT
    opg = client.submit_order(
        MarketOrderRequest(symbol="AAPL", qty=1, side=OrderSide.BUY, time_in_force="opg")
    )
    cls = client.submit_order(
        MarketOrderRequest(symbol="AAPL", qty=1, side=OrderSide.BUY, time_in_force="cls")
    )
    clock.advance(90 * 60 + 5)  # 09:30:05
    assert client.get_order_by_id(opg.id).status.value == "filled"
    assert client.get_order_by_id(cls.id).status.value == "new"
    with pytest.raises(APIError) as err:
        client.submit_order(
            MarketOrderRequest(symbol="AAPL", qty=1, side=OrderSide.BUY, time_in_force="opg")
        )
    assert err.value.status_code == 422
    assert "9:28am" in str(err.value)
    clock.advance(6.5 * 3600)  # 16:00:05
    done = client.get_order_by_id(cls.id)
    assert done.status.value == "filled"
    assert done.filled_at is not None
    assert done.filled_at.astimezone(UTC) < datetime(2026, 3, 9, 20, 0, tzinfo=UTC)
    check_ledger(broker)


def test_crypto_trades_on_a_sunday() -> None:
    clock, broker, client = _in_process(datetime(2026, 3, 8, 15, 0, tzinfo=UTC))  # Sunday
    order = client.submit_order(
        MarketOrderRequest(
            symbol="BTC/USD", qty=Decimal("0.01"), side=OrderSide.BUY, time_in_force="gtc"
        )
    )
    clock.advance(5)
    assert client.get_order_by_id(order.id).status.value == "filled"
    position = client.get_open_position("BTCUSD")
    assert position.symbol == "BTCUSD"
    assert position.asset_class.value == "crypto"
    with pytest.raises(APIError) as err:
        client.submit_order(
            MarketOrderRequest(symbol="BTC/USD", qty=1, side=OrderSide.BUY, time_in_force="day")
        )
    assert err.value.status_code == 422
    check_ledger(broker)


def test_clock_values_parse() -> None:
    assert parse_clock("open").market_hours is False
    assert parse_clock("real").market_hours is True
    spec = parse_clock("accelerated:60@2026-03-06T15:59:00-05:00")
    assert spec.rate == 60
    assert spec.start == datetime(2026, 3, 6, 20, 59, tzinfo=UTC)
    assert parse_clock("fixed:2026-03-07T12:00:00Z").rate == 0
    for bad in ("fast", "accelerated:x", "accelerated:0", "fixed:2026-03-07T12:00:00"):
        with pytest.raises(ValueError, match=r"clock|accelerated|fixed"):
            parse_clock(bad)


def test_a_fixed_clock_keeps_the_market_closed_on_a_saturday() -> None:
    with run_simulator(port=0, config=FLAT, clock="fixed:2026-03-07T12:00:00-05:00") as sim:
        client = sim.trading_client()
        assert client.get_clock().is_open is False
        order = client.submit_order(
            MarketOrderRequest(symbol="AAPL", qty=1, side=OrderSide.BUY, time_in_force="day")
        )
        crypto = client.submit_order(
            MarketOrderRequest(
                symbol="BTC/USD", qty=Decimal("0.01"), side=OrderSide.BUY, time_in_force="gtc"
            )
        )
        wait_for(lambda: client.get_order_by_id(crypto.id).status.value == "filled", 5)
        assert client.get_order_by_id(order.id).status.value == "accepted"
