"""Property: the ledger's invariants hold with every order type and class and across sessions.

Random plans of stop, stop-limit, trailing-stop, notional, bracket, oco and oto orders, cancels,
price moves and time jumps (through a close, the night and an open) on a broker with market
hours, in fake time. After every plan: positions are the sum of executions, no order overfills,
cash moved by exactly the executions' value, nothing filled after a cancel, and no equity
filled while its market was closed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fillguard.clock import FakeClock
from fillguard.sim.api import SimApi
from fillguard.sim.core import Broker, BrokerConfig
from fillguard.sim.market_clock import session_at
from tests.sim_support import KEY, SECRET, check_ledger, request

CONFIG = BrokerConfig(
    market_hours=True,
    initial_prices=(("AAPL", Decimal("100")), ("MSFT", Decimal("50"))),
    price_volatility=0.002,
)
START = datetime(2026, 3, 6, 20, 50, tzinfo=UTC)  # Friday 15:50 EST: the close comes soon

prices = st.integers(80, 120).map(Decimal)


@st.composite
def order_bodies(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(
        st.sampled_from(
            ["market", "limit", "stop", "stop_limit", "trailing", "notional", "bracket", "oto"]
        )
    )
    side = draw(st.sampled_from(["buy", "sell"]))
    body: dict[str, Any] = {
        "symbol": draw(st.sampled_from(["AAPL", "MSFT"])),
        "side": side,
        "qty": str(draw(st.integers(1, 5))),
        "time_in_force": draw(st.sampled_from(["day", "gtc"])),
        "type": kind if kind in ("market", "limit", "stop", "stop_limit") else "market",
    }
    if kind in ("limit", "stop_limit"):
        body["limit_price"] = str(draw(prices))
    if kind in ("stop", "stop_limit"):
        body["stop_price"] = str(draw(prices))
    if kind == "trailing":
        body["type"] = "trailing_stop"
        body["trail_percent" if draw(st.booleans()) else "trail_price"] = "1"
    if kind == "notional":
        del body["qty"]
        body["notional"] = str(draw(st.integers(10, 500)))
        body["time_in_force"] = "day"
    if kind in ("bracket", "oto"):
        body["order_class"] = kind
        up, down = ("take_profit", "stop_loss") if side == "buy" else ("stop_loss", "take_profit")
        base = {"AAPL": 100, "MSFT": 50}[body["symbol"]]
        body[up] = (
            {"limit_price": str(base + 20)}
            if up == "take_profit"
            else {"stop_price": str(base + 20)}
        )
        body[down] = (
            {"limit_price": str(base - 20)}
            if down == "take_profit"
            else {"stop_price": str(base - 20)}
        )
        if kind == "oto":
            del body["stop_loss"]
    if draw(st.booleans()) and kind == "limit" and body["time_in_force"] == "day":
        body["extended_hours"] = True
    return body


steps = st.lists(
    st.one_of(
        st.tuples(st.just("submit"), order_bodies()),
        st.tuples(st.just("cancel"), st.integers(0, 50)),
        st.tuples(st.just("price"), st.tuples(st.sampled_from(["AAPL", "MSFT"]), prices)),
        st.tuples(st.just("wait"), st.sampled_from([0.05, 1.0, 30.0, 600.0, 3600.0, 7 * 3600.0])),
    ),
    max_size=25,
)


def _check_sessions_and_cancels(broker: Broker) -> None:
    for order in broker.orders.values():
        if order.canceled_at is not None:
            assert all(e.timestamp <= order.canceled_at for e in order.executions), order.id
        for e in order.executions:
            session = session_at(e.timestamp)
            allowed = {"regular", "pre", "post"} if order.extended_hours else {"regular"}
            assert session in allowed or order.auction, (order.id, e.timestamp, session)


@settings(max_examples=100, deadline=None)
@given(plan=steps, seed=st.integers(0, 1000))
def test_ledger_invariants_hold_with_every_order_type_and_across_sessions(
    plan: list[tuple[str, Any]], seed: int
) -> None:
    clock = FakeClock(START)
    broker = Broker(clock=clock, seed=seed, config=CONFIG)
    api = SimApi(broker, key_id=KEY, secret_key=SECRET, rate_limit=None)
    for op, arg in plan:
        if op == "submit":
            resp = api.handle(request("POST", "/v2/orders", arg))
            assert resp.status in (200, 403, 422), resp.body
        elif op == "cancel" and broker.orders:
            ids = list(broker.orders)
            api.handle(request("DELETE", f"/v2/orders/{ids[arg % len(ids)]}"))
        elif op == "price":
            broker.set_price(*arg)
        elif op == "wait":
            clock.advance(arg)
            broker.advance()
    clock.advance(2.0)
    check_ledger(broker)
    _check_sessions_and_cancels(broker)
    for order in broker.orders.values():
        if order.parent_id is not None and order.executions:
            parent = broker.orders[order.parent_id]
            # A leg fills only after its entry filled (an oco's legs are live at once).
            assert parent.status == "filled" or parent.order_class == "oco"
