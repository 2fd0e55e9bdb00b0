"""Alpaca's semantics the simulator plays: the asset universe and its increments, qty_available,
position intent, buying power with shorts, FILL activity filters and paging, the other activity
types, account configurations, JSON 404s, and the stream at ``/stream/``."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import pytest
import websockets
from alpaca.common.exceptions import APIError
from alpaca.trading.enums import OrderSide
from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest

from fillguard.sim import BrokerConfig, run_simulator
from fillguard.sim.assets import DEFAULT_UNIVERSE, AssetUniverse, load_symbols
from tests.sim_support import Sim, check_ledger, make_sim, order_body, run_until

FLAT = BrokerConfig(
    price_volatility=0.0,
    initial_prices=(("AAPL", Decimal("100")), ("GME", Decimal("20")), ("BTC/USD", Decimal("1000"))),
)


def _sim() -> Sim:
    return make_sim(seed=2, config=FLAT)


def _submit(sim: Sim, **fields: Any) -> dict[str, Any]:
    resp = sim.handle("POST", "/v2/orders", order_body(**fields))
    assert resp.status == 200, resp.body
    order: dict[str, Any] = resp.json()
    return order


def _filled(sim: Sim, order: dict[str, Any]) -> None:
    run_until(sim, lambda: sim.broker.orders[order["id"]].status == "filled")


def test_assets_list_and_lookup() -> None:
    sim = _sim()
    rows = sim.handle("GET", "/v2/assets").json()
    assert {"AAPL", "MSFT", "XYZ", "BTC/USD"} <= {r["symbol"] for r in rows}
    crypto = sim.handle("GET", "/v2/assets", query={"asset_class": "crypto"}).json()
    assert crypto
    assert all(r["class"] == "crypto" for r in crypto)
    btc = sim.client.get_asset("BTCUSD")
    assert btc.symbol == "BTC/USD"
    assert btc.min_order_size == 0.0001
    assert not btc.shortable
    aapl = sim.client.get_asset("AAPL")
    assert aapl.fractionable
    assert aapl.easy_to_borrow
    assert aapl.exchange.value == "NASDAQ"
    assert sim.handle("GET", "/v2/assets/BTC%2FUSD").json()["symbol"] == "BTC/USD"
    missing = sim.handle("GET", "/v2/assets/ZZZZ")
    assert missing.status == 404
    assert missing.json() == {
        "code": 40410000,
        "message": "asset not found for ZZZZ",
    }


def test_the_universe_is_configurable() -> None:
    universe = load_symbols("aapl, BTC/USD")
    assert [a.symbol for a in universe.assets] == ["AAPL", "BTC/USD"]
    assert DEFAULT_UNIVERSE.find("MSFT") is not None
    sim = make_sim(config=BrokerConfig(assets=AssetUniverse.of(["AAPL"])))
    resp = sim.handle("POST", "/v2/orders", order_body(symbol="MSFT"))
    assert resp.status == 422
    assert resp.json()["message"] == "could not find us_equity 'MSFT'"
    with pytest.raises(ValueError, match="at least one symbol"):
        AssetUniverse.of([])


def test_increments_and_asset_rules_are_enforced() -> None:
    sim = _sim()
    cases = [
        ({"symbol": "GME", "qty": "0.5"}, 422, "not fractionable"),
        ({"symbol": "BTC/USD", "qty": "0.00001", "time_in_force": "gtc"}, 422, ">= 0.0001"),
        (
            {
                "symbol": "BTC/USD",
                "qty": "1",
                "type": "limit",
                "limit_price": "1000.5",
                "time_in_force": "gtc",
            },
            422,
            "price increment",
        ),
        ({"symbol": "GME", "side": "sell"}, 403, "not available to short"),
        (
            {"symbol": "BTC/USD", "side": "sell", "time_in_force": "gtc"},
            403,
            "insufficient balance",
        ),
        ({"qty": "1.5", "side": "sell"}, 403, "fractional orders cannot be sold short"),
    ]
    for fields, status, message in cases:
        resp = sim.handle("POST", "/v2/orders", order_body(**fields))
        assert resp.status == status, (fields, resp.body)
        assert message in resp.json()["message"], (fields, resp.json())


def test_qty_available_counts_shares_held_by_open_sells_and_intent_labels_shorts() -> None:
    sim = _sim()
    _filled(sim, _submit(sim, qty="10"))
    sell = _submit(sim, side="sell", qty="4", type="limit", limit_price="150")
    assert sell["position_intent"] == "sell_to_close"
    run_until(sim, lambda: sim.broker.orders[sell["id"]].status == "new")
    position = sim.client.get_open_position("AAPL")
    assert (position.qty, position.qty_available) == ("10", "6")
    refused = sim.handle("POST", "/v2/orders", order_body(side="sell", qty="7"))
    assert refused.status == 403
    assert refused.json()["held_for_orders"] == "4"
    sim.client.cancel_order_by_id(sell["id"])
    run_until(sim, lambda: sim.broker.orders[sell["id"]].status == "canceled")
    _filled(sim, _submit(sim, side="sell", qty="10"))
    short = _submit(sim, side="sell", qty="5")
    assert short["position_intent"] == "sell_to_open"
    _filled(sim, short)
    cover = _submit(sim, side="buy", qty="5", type="limit", limit_price="50")
    assert cover["position_intent"] == "buy_to_close"
    check_ledger(sim.broker)


def test_buying_power_with_a_short_holds_its_value_twice() -> None:
    sim = _sim()
    start = Decimal(sim.client.get_account().buying_power)
    _filled(sim, _submit(sim, side="sell", qty="100"))
    proceeds = sum((e.qty * e.price for e in sim.broker.executions), Decimal(0))
    account = sim.client.get_account()
    assert Decimal(account.cash) == start + proceeds
    # Cash went up by the proceeds; the short's market value (100 x 100) is held twice.
    assert Decimal(account.buying_power) == (start + proceeds - 2 * 100 * 100)
    assert Decimal(account.short_market_value) == -10000


def test_fill_activity_filters_and_paging() -> None:
    sim = _sim()
    orders = []
    for _ in range(5):
        order = _submit(sim, qty="1")
        _filled(sim, order)
        orders.append(order)
        sim.advance(60)
    path = "/v2/account/activities/FILL"
    everything = sim.handle("GET", path).json()
    assert len(everything) == 5
    assert [a["order_id"] for a in everything] == [o["id"] for o in reversed(orders)]
    page1 = sim.handle("GET", path, query={"direction": "asc", "page_size": "2"}).json()
    page2 = sim.handle(
        "GET", path, query={"direction": "asc", "page_size": "2", "page_token": page1[-1]["id"]}
    ).json()
    assert [a["order_id"] for a in page1 + page2] == [o["id"] for o in orders[:4]]
    middle = everything[2]["transaction_time"]
    after = sim.handle("GET", path, query={"after": middle, "direction": "asc"}).json()
    assert [a["order_id"] for a in after] == [o["id"] for o in orders[3:]]
    until = sim.handle("GET", path, query={"until": middle}).json()
    assert [a["order_id"] for a in until] == [orders[1]["id"], orders[0]["id"]]
    one = sim.handle("GET", path, query={"order_id": orders[1]["id"]}).json()
    assert [a["order_id"] for a in one] == [orders[1]["id"]]
    day = everything[0]["transaction_time"][:10]
    assert len(sim.handle("GET", path, query={"date": day}).json()) == 5
    assert sim.handle("GET", path, query={"date": "2001-01-01"}).json() == []
    bad = sim.handle("GET", path, query={"page_token": "nope"})
    assert bad.status == 422
    assert sim.handle("GET", "/v2/account/activities/DIV").json() == []
    assert sim.handle("GET", "/v2/account/activities/NOPE").status == 422


def test_account_configurations_get_and_patch_are_enforced() -> None:
    sim = _sim()
    config = sim.handle("GET", "/v2/account/configurations").json()
    assert config["no_shorting"] is False
    assert config["fractional_trading"] is True
    changed = sim.handle("PATCH", "/v2/account/configurations", {"no_shorting": True})
    assert changed.status == 200
    assert changed.json()["no_shorting"] is True
    refused = sim.handle("POST", "/v2/orders", order_body(side="sell"))
    assert refused.status == 403
    assert "short" in refused.json()["message"]
    bad = sim.handle("PATCH", "/v2/account/configurations", {"dtbp_check": "sometimes"})
    assert bad.status == 422
    assert "dtbp_check" in bad.json()["message"]
    assert sim.handle("PATCH", "/v2/account/configurations", {"bogus": 1}).status == 422
    sim.handle("PATCH", "/v2/account/configurations", {"suspend_trade": True})
    assert sim.handle("POST", "/v2/orders", order_body()).status == 403


def test_unknown_routes_answer_alpaca_json_404() -> None:
    sim = _sim()
    for path in ("/v2/watchlists", "/v2/account/portfolio/history", "/v2/nothing"):
        resp = sim.handle("GET", path)
        assert resp.status == 404, path
        assert resp.json()["code"] == 40410000, path
    with pytest.raises(APIError) as err:
        sim.client.get_order_by_id("00000000-0000-4000-8000-000000000000")
    assert err.value.code == 40410000


def test_stream_accepts_the_legacy_trailing_slash_and_delivers_events() -> None:
    with run_simulator(port=0, config=FLAT, rate_limit=None) as sim:

        async def listen() -> list[dict[str, Any]]:
            async with websockets.connect(sim.stream_url + "/") as ws:
                await ws.send(
                    json.dumps({"action": "auth", "key": sim.key_id, "secret": sim.secret_key})
                )
                auth = json.loads(await ws.recv())
                assert auth["data"]["status"] == "authorized"
                await ws.send(
                    json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}})
                )
                await ws.recv()  # the listening ack
                client = sim.trading_client()
                await asyncio.to_thread(
                    client.submit_order,
                    MarketOrderRequest(
                        symbol="AAPL", qty=1, side=OrderSide.BUY, time_in_force="day"
                    ),
                )
                events: list[dict[str, Any]] = []
                while not events or events[-1]["data"]["event"] != "fill":
                    events.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
                return events

        events = asyncio.run(listen())
        assert events[0]["data"]["event"] == "accepted"


def test_an_extended_hours_market_order_is_refused() -> None:
    with run_simulator(port=0, config=FLAT, rate_limit=None) as sim:
        client = sim.trading_client()
        with pytest.raises(APIError) as err:
            client.submit_order(
                MarketOrderRequest(
                    symbol="AAPL",
                    qty=1,
                    side=OrderSide.BUY,
                    time_in_force="day",
                    extended_hours=True,
                )
            )
        assert err.value.status_code == 422
        ok = client.submit_order(
            LimitOrderRequest(
                symbol="AAPL",
                qty=1,
                side=OrderSide.BUY,
                time_in_force="day",
                limit_price=90,
                extended_hours=True,
            )
        )
        assert ok.extended_hours is True
