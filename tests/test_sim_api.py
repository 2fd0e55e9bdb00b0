"""The request layer: bad input, auth, routing, GET /v2/orders filters and /_sim/ endpoints."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests
from alpaca.common.enums import Sort
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, QueryOrderStatus, TimeInForce
from alpaca.trading.models import Order, TradeUpdate
from alpaca.trading.requests import GetOrdersRequest, LimitOrderRequest, MarketOrderRequest

from fillguard.sim.core import BrokerConfig
from fillguard.sim.inprocess import SimAdapter
from tests.sim_support import (
    SDK_AUTH,
    URL,
    Sim,
    check_ledger,
    check_ledger_json,
    make_sim,
    order_body,
)

FLAT = BrokerConfig(
    price_volatility=0.0,
    initial_prices=(("AAPL", Decimal("100")), ("MSFT", Decimal("400"))),
)


@pytest.fixture
def sim() -> Sim:
    """A calm simulator with flat prices and no rate limit."""
    return make_sim(seed=3, config=FLAT)


def assert_alpaca_error(resp_status: int, body: Any, status: int, code: int | None = None) -> None:
    """An Alpaca error body: exactly an int code and a str message (plus extras on some 403s)."""
    assert resp_status == status
    assert isinstance(body, dict)
    assert isinstance(body["code"], int)
    assert isinstance(body["message"], str)
    assert body["message"]
    if code is not None:
        assert body["code"] == code


def assert_still_serving(sim: Sim) -> None:
    """A valid submit still works after bad input."""
    resp = sim.handle("POST", "/v2/orders", order_body())
    assert resp.status == 200, resp.body
    Order(**resp.json())


BAD_ORDERS: list[tuple[str, bytes | dict[str, Any], int, str]] = [
    ("malformed json", b'{"symbol": "AAPL",', 40010000, "request body format is invalid"),
    ("empty body", b"", 40010000, "request body format is invalid"),
    ("json array", b"[1, 2]", 40010000, "request body format is invalid"),
    ("json string", b'"order"', 40010000, "request body format is invalid"),
    ("not utf-8", b"\xff\xfe\xfd{", 40010000, "request body format is invalid"),
    ("deeply nested", b"[" * 50_000 + b"]" * 50_000, 40010000, "request body format"),
    ("qty zero", order_body(qty="0"), 40010001, "qty must be > 0"),
    ("qty negative", order_body(qty=-3), 40010001, "qty must be > 0"),
    ("qty text", order_body(qty="ten"), 40010001, "invalid qty"),
    ("qty empty", order_body(qty=""), 40010001, "invalid qty"),
    ("qty bool", order_body(qty=True), 40010001, "invalid qty"),
    ("qty list", order_body(qty=[1]), 40010001, "invalid qty"),
    ("qty object", order_body(qty={"v": 1}), 40010001, "invalid qty"),
    ("qty NaN string", order_body(qty="NaN"), 40010001, "invalid qty"),
    ("qty Infinity string", order_body(qty="Infinity"), 40010001, "invalid qty"),
    ("qty -Infinity", order_body(qty="-Infinity"), 40010001, "invalid qty"),
    (
        "qty NaN literal",
        b'{"symbol":"AAPL","side":"buy","type":"market","time_in_force":"day","qty":NaN}',
        40010001,
        "invalid qty",
    ),
    (
        "qty Infinity literal",
        b'{"symbol":"AAPL","side":"buy","type":"market","time_in_force":"day","qty":Infinity}',
        40010001,
        "invalid qty",
    ),
    ("qty huge", order_body(qty="1e30"), 40010001, "qty must have at most 9 decimal"),
    ("qty huge number", order_body(qty=1e300), 40010001, "qty must have at most 9 decimal"),
    ("qty 10 decimals", order_body(qty="0.0000000001"), 40010001, "at most 9 decimal"),
    ("qty missing", order_body(qty=None), 40010001, "qty or notional is required"),
    ("limit without price", order_body(type="limit"), 40010001, "require a limit_price"),
    ("limit price zero", order_body(type="limit", limit_price="0"), 40010001, "limit_price"),
    ("limit price text", order_body(type="limit", limit_price="x"), 40010001, "limit_price"),
    ("limit price NaN", order_body(type="limit", limit_price="nan"), 40010001, "limit_price"),
    ("limit sub-penny", order_body(type="limit", limit_price="10.001"), 40010001, "sub-penny"),
    ("limit price huge", order_body(type="limit", limit_price="1e40"), 40010001, "limit_price"),
    ("unknown side", order_body(side="hold"), 40010001, "invalid side"),
    ("missing side", order_body(side=None), 40010001, "side is required"),
    ("unknown type", order_body(type="bogus"), 40010001, "invalid order type"),
    ("stop without price", order_body(type="stop"), 40010001, "require a stop_price"),
    ("trailing no trail", order_body(type="trailing_stop"), 40010001, "trail_price"),
    ("opg out of clock", order_body(time_in_force="opg"), 42210000, "market clock"),
    ("extended market", order_body(extended_hours=True), 42210000, "DAY limit"),
    ("unknown symbol", order_body(symbol="ZZZZ"), 40010001, "could not find us_equity"),
    ("unknown tif", order_body(time_in_force="week"), 40010001, "invalid time_in_force"),
    ("market with limit", order_body(limit_price="100"), 40010001, "market orders require no"),
    ("market with stop", order_body(stop_price="100"), 40010001, "market orders require no"),
    ("fractional gtc", order_body(qty="1.5", time_in_force="gtc"), 40010001, "fractional"),
    ("fractional ioc", order_body(qty="0.5", time_in_force="ioc"), 40010001, "fractional"),
    ("missing symbol", order_body(symbol=None), 40010001, "symbol is required"),
    ("bad symbol", order_body(symbol="NOT A SYMBOL"), 40010001, "could not find us_equity"),
    ("symbol newline", order_body(symbol="AAPL\n"), 40010001, "could not find us_equity"),
    ("symbol number", order_body(symbol=5), 40010001, "symbol is required"),
    (
        "notional limit",
        order_body(qty=None, notional="100", type="limit", limit_price="5"),
        40010001,
        "notional",
    ),
    ("qty and notional", order_body(notional="100"), 40010001, "only one of qty or notional"),
    ("bracket", order_body(order_class="bracket"), 40010001, "take_profit.limit_price"),
    ("coid too long", order_body(client_order_id="x" * 129), 40010001, "client_order_id"),
    ("coid number", order_body(client_order_id=7), 40010001, "client_order_id"),
    ("coid empty", order_body(client_order_id=""), 40010001, "client_order_id"),
    ("extended text", order_body(extended_hours="yes"), 40010001, "extended_hours"),
]


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [case[1:] for case in BAD_ORDERS],
    ids=[case[0] for case in BAD_ORDERS],
)
def test_bad_order_body_gets_alpaca_422_and_server_keeps_serving(
    sim: Sim, body: bytes | dict[str, Any], code: int, message: str
) -> None:
    """Each kind of bad submit gets a 422 with Alpaca's code/message body; nothing is applied."""
    resp = sim.handle("POST", "/v2/orders", body)
    assert_alpaca_error(resp.status, resp.json(), 422, code)
    assert set(resp.json()) == {"code", "message"}
    assert message in resp.json()["message"]
    assert resp.headers[0] == ("content-type", "application/json; charset=UTF-8")
    assert not sim.broker.orders
    assert_still_serving(sim)
    check_ledger(sim.broker)


def test_refused_posts_are_recorded_in_the_ledger(sim: Sim) -> None:
    """Every POST is in the ledger, refused ones under posts_without_order."""
    sim.handle("POST", "/v2/orders", order_body(qty="0", client_order_id="bad-1"))
    sim.handle("POST", "/v2/orders", order_body(client_order_id="good-1"))
    sim.handle("POST", "/v2/orders", order_body(client_order_id="good-1"))
    ledger = sim.handle("GET", "/_sim/ledger").json()
    assert [p["outcome"] for p in ledger["posts_without_order"]["bad-1"]] == ["refused:422"]
    (row,) = ledger["orders"]
    assert [p["outcome"] for p in row["posts"]] == ["accepted", "duplicate"]
    assert row["posts"][0]["body"]["client_order_id"] == "good-1"


def test_sdk_submits_of_bad_qty_surface_as_api_error_422(sim: Sim) -> None:
    """What the SDK lets through (qty 0, negative, fractional gtc) comes back as APIError 422."""
    for kwargs in (
        {"qty": 0},
        {"qty": -2},
        {"qty": 1.5, "time_in_force": TimeInForce.GTC},
    ):
        fields: dict[str, Any] = {
            "symbol": "AAPL",
            "side": OrderSide.BUY,
            "time_in_force": TimeInForce.DAY,
        }
        fields.update(kwargs)
        with pytest.raises(APIError) as err:
            sim.client.submit_order(MarketOrderRequest(**fields))
        assert err.value.status_code == 422
        assert err.value.code == 40010001
    with pytest.raises(requests.exceptions.InvalidJSONError):
        # requests refuses to encode NaN: it never reaches the server.
        sim.client.submit_order(
            MarketOrderRequest(
                symbol="AAPL", qty=float("nan"), side=OrderSide.BUY, time_in_force=TimeInForce.DAY
            )
        )
    order = sim.client.submit_order(
        LimitOrderRequest(
            symbol="AAPL",
            qty=2,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.DAY,
            limit_price=99,
        )
    )
    assert order.status == "accepted"


def test_raw_posts_through_the_sdk_session_get_422(sim: Sim) -> None:
    """Raw bodies posted with the client's own session get 422 JSON, then a good one works."""
    session = sim.client._session
    for raw in (
        b"{not json",
        b'{"symbol":"AAPL","side":"buy","type":"market","time_in_force":"day","qty":NaN}',
        b'{"symbol":"AAPL","side":"buy","type":"market","time_in_force":"day","qty":-Infinity}',
        json.dumps(order_body(type="limit")).encode(),
        json.dumps(order_body(side="up")).encode(),
        json.dumps(order_body(type="iceberg")).encode(),
    ):
        resp = session.post(f"{URL}/v2/orders", data=raw, headers=SDK_AUTH)
        assert_alpaca_error(resp.status_code, resp.json(), 422)
    resp = session.post(f"{URL}/v2/orders", json=order_body(), headers=SDK_AUTH)
    assert resp.status_code == 200
    assert Order(**resp.json()).status == "accepted"


def test_auth_errors_401_and_403(sim: Sim) -> None:
    """No or unknown key is 401; the right key with a wrong secret is 403; nothing applies."""
    for headers in (
        {},
        {"apca-api-key-id": "SIMKEY"},
        {"apca-api-key-id": "OTHER", "apca-api-secret-key": "SIMSECRET"},
    ):
        resp = sim.handle("POST", "/v2/orders", order_body(), headers=headers)
        assert_alpaca_error(resp.status, resp.json(), 401, 40110000)
    resp = sim.handle(
        "GET", "/v2/account", headers={"apca-api-key-id": "SIMKEY", "apca-api-secret-key": "x"}
    )
    assert_alpaca_error(resp.status, resp.json(), 403, 40310000)
    assert not sim.broker.orders
    assert not sim.broker.posts


def test_auth_errors_through_the_sdk(sim: Sim) -> None:
    """The SDK with a wrong key sees APIError 401, with a wrong secret APIError 403."""
    for key, secret, status in (("WRONG", "SIMSECRET", 401), ("SIMKEY", "WRONG", 403)):
        client = TradingClient(key, secret, url_override=URL)
        client._session.mount(URL, SimAdapter(sim.api))
        with pytest.raises(APIError) as err:
            client.get_account()
        assert err.value.status_code == status
    assert sim.client.get_account().status == "ACTIVE"


def test_unknown_paths_are_404_and_wrong_methods_405(sim: Sim) -> None:
    """Unknown paths get 404 with Alpaca's JSON error body; a known path with a bad method 405."""
    for path in ("/v2/nothing", "/v3/orders", "/", "/v2/orders/a/b", "/v2/account/x"):
        resp = sim.handle("GET", path)
        assert resp.status == 404, path
        assert_alpaca_error(resp.status, resp.json(), 404, 40410000)
    resp = sim.handle("POST", "/v2/account")
    assert_alpaca_error(resp.status, resp.json(), 405)
    resp = sim.handle("PUT", "/v2/orders/abc", b"{}")
    assert resp.status == 405
    resp = sim.handle("PATCH", "/v2/orders/no-such-order", b"{}")
    assert_alpaca_error(resp.status, resp.json(), 404, 40410000)
    resp = sim.handle("GET", "/v2/orders/no-such-order")
    assert_alpaca_error(resp.status, resp.json(), 404, 40410000)
    resp = sim.handle("DELETE", "/v2/orders/no-such-order")
    assert_alpaca_error(resp.status, resp.json(), 404, 40410000)
    resp = sim.handle("GET", "/v2/positions/AAPL")
    assert resp.json() == {"code": 40410000, "message": "position does not exist"}
    resp = sim.handle("GET", "/v2/orders:by_client_order_id")
    assert_alpaca_error(resp.status, resp.json(), 422)
    resp = sim.handle("GET", "//v2/account")
    assert resp.status == 200, "a doubled leading slash is normalised"


def populate(sim: Sim) -> dict[str, dict[str, Any]]:
    """Four orders one second apart: filled AAPL, open MSFT, open AAPL, canceled AAPL."""
    out = {}
    for name, body in (
        ("filled", order_body(client_order_id="o-filled")),
        ("msft", order_body(symbol="MSFT", type="limit", limit_price="300", time_in_force="gtc")),
        ("open", order_body(type="limit", limit_price="90", client_order_id="o-open")),
        ("canceled", order_body(type="limit", limit_price="80")),
    ):
        resp = sim.handle("POST", "/v2/orders", body)
        assert resp.status == 200
        out[name] = resp.json()
        sim.advance(1)
    assert sim.handle("DELETE", f"/v2/orders/{out['canceled']['id']}").status == 204
    sim.advance(1)
    return out


def ids(resp_body: Any) -> list[str]:
    """Order ids of a list response."""
    return [o["id"] for o in resp_body]


def list_orders(sim: Sim, **query: str) -> list[str]:
    """GET /v2/orders with a query; assert 200 and return the ids."""
    resp = sim.handle("GET", "/v2/orders", query=query)
    assert resp.status == 200, resp.body
    for o in resp.json():
        Order(**o)
    return ids(resp.json())


def test_list_orders_status_filter(sim: Sim) -> None:
    """status=open (the default), closed and all select the right orders, newest first."""
    o = populate(sim)
    open_ids = [o["open"]["id"], o["msft"]["id"]]
    assert list_orders(sim) == open_ids
    assert list_orders(sim, status="open") == open_ids
    assert list_orders(sim, status="closed") == [o["canceled"]["id"], o["filled"]["id"]]
    assert len(list_orders(sim, status="all")) == 4
    resp = sim.handle("GET", "/v2/orders", query={"status": "pending"})
    assert_alpaca_error(resp.status, resp.json(), 422)


def test_list_orders_limit_bounds(sim: Sim) -> None:
    """limit takes 1..500; 0, 501 and non-numbers are 422."""
    populate(sim)
    assert len(list_orders(sim, status="all", limit="1")) == 1
    assert len(list_orders(sim, status="all", limit="500")) == 4
    for bad in ("0", "501", "-1", "ten", "1.5", ""):
        resp = sim.handle("GET", "/v2/orders", query={"status": "all", "limit": bad})
        if bad == "":
            assert resp.status == 200  # blank means the default
            continue
        assert_alpaca_error(resp.status, resp.json(), 422)


def test_list_orders_after_until_are_exclusive(sim: Sim) -> None:
    """after and until compare created_at strictly."""
    o = populate(sim)
    msft_at = o["msft"]["created_at"]
    open_at = o["open"]["created_at"]
    assert list_orders(sim, status="all", after=msft_at) == [o["canceled"]["id"], o["open"]["id"]]
    assert list_orders(sim, status="all", until=open_at) == [o["msft"]["id"], o["filled"]["id"]]
    assert list_orders(sim, status="all", after=msft_at, until=open_at) == []
    naive = datetime.fromisoformat(msft_at.replace("Z", "")) - timedelta(microseconds=1)
    assert o["msft"]["id"] in list_orders(sim, status="all", after=naive.isoformat())
    resp = sim.handle("GET", "/v2/orders", query={"after": "yesterday"})
    assert_alpaca_error(resp.status, resp.json(), 422)


def test_list_orders_direction_symbols_nested(sim: Sim) -> None:
    """direction sorts by created_at; symbols filters; nested accepts True/true/False/false."""
    o = populate(sim)
    asc = list_orders(sim, status="all", direction="asc")
    assert asc == [o[k]["id"] for k in ("filled", "msft", "open", "canceled")]
    assert list_orders(sim, status="all", direction="desc") == asc[::-1]
    assert list_orders(sim, status="all", direction="ASC") == asc
    resp = sim.handle("GET", "/v2/orders", query={"direction": "up"})
    assert_alpaca_error(resp.status, resp.json(), 422)
    assert list_orders(sim, status="all", symbols="MSFT") == [o["msft"]["id"]]
    assert len(list_orders(sim, status="all", symbols="AAPL,MSFT")) == 4
    assert len(list_orders(sim, status="all", symbols="aapl")) == 3
    assert list_orders(sim, status="all", symbols="TSLA") == []
    for nested in ("True", "true", "False", "false", "1", "0"):
        assert len(list_orders(sim, status="all", nested=nested)) == 4
    resp = sim.handle("GET", "/v2/orders", query={"nested": "maybe"})
    assert_alpaca_error(resp.status, resp.json(), 422)
    resp = sim.handle("GET", f"/v2/orders/{o['msft']['id']}", query={"nested": "True"})
    assert resp.status == 200


def test_list_orders_filters_through_the_sdk(sim: Sim) -> None:
    """GetOrdersRequest's status/limit/after/until/direction/symbols/nested reach the filters."""
    o = populate(sim)
    got = sim.client.get_orders(
        GetOrdersRequest(status=QueryOrderStatus.CLOSED, limit=10, nested=True)
    )
    assert [str(x.id) for x in got] == [o["canceled"]["id"], o["filled"]["id"]]
    after = datetime.fromisoformat(o["filled"]["created_at"].replace("Z", "+00:00"))
    got = sim.client.get_orders(
        GetOrdersRequest(
            status=QueryOrderStatus.ALL, after=after, direction=Sort.ASC, symbols=["AAPL"]
        )
    )
    assert [str(x.id) for x in got] == [o["open"]["id"], o["canceled"]["id"]]
    with pytest.raises(APIError) as err:
        sim.client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, limit=501))
    assert err.value.status_code == 422


def test_sim_ledger_and_events_endpoints(sim: Sim) -> None:
    """/_sim/ledger agrees with the broker; /_sim/events returns every event as on the wire."""
    populate(sim)
    check_ledger_json(sim.api)
    events = sim.handle("GET", "/_sim/events").json()
    assert len(events) == len(sim.broker.events)
    for message in events:
        assert message["stream"] == "trade_updates"
        TradeUpdate(**message["data"])


def test_sim_reset_endpoint(sim: Sim) -> None:
    """POST /_sim/reset forgets all state and can switch the fault profile."""
    populate(sim)
    resp = sim.handle("POST", "/_sim/reset", b"")
    assert resp.status == 200
    assert resp.json()["reset"] is True
    assert not sim.broker.orders
    assert sim.handle("GET", "/_sim/ledger").json()["orders"] == []
    resp = sim.handle("POST", "/_sim/reset", {"faults": "rough"})
    assert resp.json()["faults"]["name"] == "rough"
    assert sim.broker.faults.name == "rough"
    resp = sim.handle("POST", "/_sim/reset", {"faults": "nonsense"})
    assert_alpaca_error(resp.status, resp.json(), 422)


def test_sim_faults_endpoint_get_and_put(sim: Sim) -> None:
    """GET/PUT /_sim/faults read and set the profile by name or knobs; bad input is 422."""
    assert sim.handle("GET", "/_sim/faults").json()["name"] == "calm"
    resp = sim.handle("PUT", "/_sim/faults", '"hostile"')
    assert resp.status == 200
    assert resp.json()["name"] == "hostile"
    resp = sim.handle("PUT", "/_sim/faults", {"reject_rate": 0.5, "latency": [0.1, 0.2]})
    assert resp.json()["reject_rate"] == 0.5
    assert resp.json()["latency"] == {"kind": "uniform", "a": 0.1, "b": 0.2}
    assert sim.broker.faults.reject_rate == 0.5
    assert sim.broker.faults.http_error_rate == 0.0, "knobs start from calm"
    resp = sim.handle("POST", "/_sim/faults", {"base": "rough", "reject_rate": 0.0})
    assert resp.json()["http_error_rate"] == 0.03
    before = sim.broker.faults
    for bad in (
        {"no_such_knob": 1},
        {"reject_rate": 2},
        {"reject_rate": "often"},
        {"max_partial_fills": 2.5},
        {"rate_limit_burst_length": "3"},
        {"latency": "slow"},
        {"latency": {"kind": "gamma", "a": 1}},
        {"lost_submit_modes": ["504", "explode"]},
        {"lost_submit_modes": 5},
        {"hang_seconds": float("inf")},
        '"volcanic"',
        "7",
        "[1]",
        "{bad json",
    ):
        resp = sim.handle("PUT", "/_sim/faults", bad)
        assert_alpaca_error(resp.status, resp.json(), 422)
        assert sim.broker.faults == before
    msg = sim.handle("PUT", "/_sim/faults", {"no_such_knob": 1}).json()["message"]
    assert "no_such_knob" in msg


def test_sim_prices_endpoint(sim: Sim) -> None:
    """GET/PUT /_sim/prices/{symbol} read and pin prices; bad prices are 422."""
    assert sim.handle("GET", "/_sim/prices/AAPL").json() == {"symbol": "AAPL", "price": "100"}
    resp = sim.handle("PUT", "/_sim/prices/aapl", {"price": "123.45"})
    assert resp.json() == {"symbol": "AAPL", "price": "123.45"}
    assert sim.broker.price("AAPL") == Decimal("123.45")
    assert sim.handle("PUT", "/_sim/prices/AAPL", "99").json()["price"] == "99"
    for bad in (
        {"price": "0"},
        {"price": -1},
        {"price": "abc"},
        {"price": "1e40"},
        {"price": "0.00001"},
        "NaN",
        "[]",
        "{}",
    ):
        resp = sim.handle("PUT", "/_sim/prices/AAPL", bad)
        assert_alpaca_error(resp.status, resp.json(), 422)
    assert sim.broker.price("AAPL") == Decimal(99)


def test_sim_price_move_fills_a_resting_limit(sim: Sim) -> None:
    """A price set through /_sim/prices crosses a resting limit, which then fills."""
    order = sim.handle("POST", "/v2/orders", order_body(type="limit", limit_price="95")).json()
    sim.advance(2)
    sim.handle("PUT", "/_sim/prices/AAPL", {"price": "94"})
    sim.advance(2)
    got = sim.handle("GET", f"/v2/orders/{order['id']}").json()
    assert got["status"] == "filled"
    assert Decimal(got["filled_avg_price"]) <= 95


def test_sim_close_session_endpoint(sim: Sim) -> None:
    """POST /_sim/close_session expires open day orders, puts GTC ones done_for_day and says
    how many; POST /_sim/open_session resumes them."""
    o = populate(sim)
    resp = sim.handle("POST", "/_sim/close_session", b"")
    assert resp.json() == {"expired": 1, "done_for_day": 1}
    assert sim.handle("GET", f"/v2/orders/{o['open']['id']}").json()["status"] == "expired"
    msft = f"/v2/orders/{o['msft']['id']}"
    assert sim.handle("GET", msft).json()["status"] == "done_for_day"
    assert sim.handle("POST", "/_sim/open_session", b"").json() == {"resumed": 1}
    assert sim.handle("GET", msft).json()["status"] == "new"
    assert sim.handle("GET", "/_sim/nothing").status == 404
    assert sim.handle("DELETE", "/_sim/ledger").status == 404
    check_ledger(sim.broker)


def test_cancel_all_and_close_position(sim: Sim) -> None:
    """DELETE /v2/orders answers 207 per order; DELETE /v2/positions/{symbol} sells it off."""
    o = populate(sim)
    resp = sim.handle("DELETE", "/v2/orders")
    assert resp.status == 207
    assert {r["id"] for r in resp.json()} == {o["open"]["id"], o["msft"]["id"]}
    resp = sim.handle("DELETE", "/v2/positions/AAPL", query={"percentage": "100"})
    assert resp.status == 200
    assert resp.json()["side"] == "sell"
    sim.advance(2)
    assert sim.handle("GET", "/v2/positions").json() == []
    resp = sim.handle("DELETE", "/v2/positions/AAPL")
    assert_alpaca_error(resp.status, resp.json(), 404, 40410000)
    for query in (
        {"qty": "0"},
        {"qty": "abc"},
        {"qty": "1e-99999"},
        {"qty": "0.0000000001"},
        {"percentage": "150"},
        {"qty": "1", "percentage": "1"},
    ):
        sim.handle("POST", "/v2/orders", order_body())
        sim.advance(2)
        resp = sim.handle("DELETE", "/v2/positions/AAPL", query=query)
        assert 400 <= resp.status < 500
        assert_alpaca_error(resp.status, resp.json(), resp.status)
        assert len(resp.body) < 200
    check_ledger(sim.broker)
