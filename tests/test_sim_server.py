"""Conformance of the simulator server through the real alpaca-py SDK over loopback."""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any

import pytest
import requests
from alpaca.common.enums import Sort
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, OrderStatus, QueryOrderStatus, TimeInForce
from alpaca.trading.models import Asset, Clock, Order, Position, TradeAccount
from alpaca.trading.requests import (
    CancelOrderResponse,
    ClosePositionRequest,
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
)

from fillguard.sim import DEFAULT_KEY_ID, DEFAULT_SECRET_KEY, SimServer, run_simulator
from tests import sim_support

pytestmark = pytest.mark.integration


wait_for = partial(sim_support.wait_for, timeout=3.0)


def market(symbol: str = "AAPL", qty: float = 1, side: OrderSide = OrderSide.BUY, **kw: Any) -> Any:
    return MarketOrderRequest(
        symbol=symbol, qty=qty, side=side, time_in_force=TimeInForce.DAY, **kw
    )


def resting(symbol: str = "AAPL", qty: float = 1, **kw: Any) -> Any:
    # A buy limit far below any simulated price: stays open.
    return LimitOrderRequest(
        symbol=symbol,
        qty=qty,
        side=OrderSide.BUY,
        time_in_force=TimeInForce.GTC,
        limit_price=1.0,
        **kw,
    )


def filled(client: Any, order_id: Any) -> Order:
    order: Order = wait_for(
        lambda: (o := client.get_order_by_id(order_id)).status == OrderStatus.FILLED and o
    )
    return order


def canceled(client: Any, order_id: Any) -> bool:
    status: OrderStatus = client.get_order_by_id(order_id).status
    return status == OrderStatus.CANCELED


def api_error(call: Callable[[], Any]) -> APIError:
    with pytest.raises(APIError) as info:
        call()
    return info.value


def raw(sim: SimServer, method: str, path: str, **kw: Any) -> requests.Response:
    headers = {"APCA-API-KEY-ID": sim.key_id, "APCA-API-SECRET-KEY": sim.secret_key}
    return requests.request(method, sim.base_url + path, headers=headers, timeout=10, **kw)


# ---------------------------------------------------------------------- models through the SDK


def test_orders_parse_into_sdk_models(sim: SimServer) -> None:
    client = sim.trading_client()
    submitted = client.submit_order(market(client_order_id="conf-1"))
    assert isinstance(submitted, Order)
    assert submitted.client_order_id == "conf-1"
    assert submitted.status in (OrderStatus.ACCEPTED, OrderStatus.PENDING_NEW, OrderStatus.NEW)
    done = filled(client, submitted.id)
    assert done.filled_qty == "1"
    assert done.filled_avg_price is not None
    by_coid = client.get_order_by_client_id("conf-1")
    assert isinstance(by_coid, Order)
    assert by_coid.id == submitted.id
    nested = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, nested=True))
    assert [o.id for o in nested] == [submitted.id]


def test_get_orders_filters(sim: SimServer) -> None:
    client = sim.trading_client()
    a1 = client.submit_order(resting("AAPL"))
    m1 = client.submit_order(resting("MSFT"))
    a2 = client.submit_order(resting("AAPL"))
    done = filled(client, client.submit_order(market("TSLA")).id)

    def ids(**kw: Any) -> list[Any]:
        return [o.id for o in client.get_orders(GetOrdersRequest(**kw))]

    assert ids() == [a2.id, m1.id, a1.id]  # default: open, newest first
    assert ids(status=QueryOrderStatus.CLOSED) == [done.id]
    assert ids(status=QueryOrderStatus.ALL, direction=Sort.ASC) == [a1.id, m1.id, a2.id, done.id]
    assert ids(status=QueryOrderStatus.ALL, limit=2) == [done.id, a2.id]
    assert ids(symbols=["AAPL"]) == [a2.id, a1.id]
    assert ids(symbols=["AAPL", "MSFT"], direction=Sort.ASC) == [a1.id, m1.id, a2.id]
    # after / until are exclusive, on submission time.
    assert ids(after=a1.submitted_at, direction=Sort.ASC) == [m1.id, a2.id]
    assert ids(until=a2.submitted_at, direction=Sort.ASC) == [a1.id, m1.id]
    assert ids(after=a1.submitted_at, until=a2.submitted_at) == [m1.id]
    assert ids(until=a1.submitted_at - timedelta(seconds=1)) == []
    assert ids(side=OrderSide.SELL) == []


def test_positions_account_clock_asset_activities(sim: SimServer) -> None:
    client = sim.trading_client()
    order = filled(client, client.submit_order(market("AAPL", qty=3)).id)
    position = client.get_open_position("AAPL")
    assert isinstance(position, Position)
    assert position.qty == "3"
    assert position.avg_entry_price == order.filled_avg_price
    positions = client.get_all_positions()
    assert [p.symbol for p in positions] == ["AAPL"]
    assert all(isinstance(p, Position) for p in positions)
    account = client.get_account()
    assert isinstance(account, TradeAccount)
    assert float(account.cash or "inf") < 1_000_000
    assert isinstance(client.get_clock(), Clock)
    asset = client.get_asset("AAPL")
    assert isinstance(asset, Asset)
    assert asset.symbol == "AAPL"
    fills = client.get("/account/activities/FILL")
    assert [f["order_id"] for f in fills] == [str(order.id)]
    assert uuid.UUID(fills[0]["execution_id"])
    closing = client.close_position("AAPL", ClosePositionRequest(qty="1"))
    assert isinstance(closing, Order)
    assert closing.side == OrderSide.SELL
    assert closing.qty == "1"
    filled(client, closing.id)
    wait_for(lambda: client.get_open_position("AAPL").qty == "2")
    closing = client.close_position("AAPL")
    filled(client, closing.id)
    assert client.get_all_positions() == []


def test_cancel_orders_and_cancel_by_id(sim: SimServer) -> None:
    client = sim.trading_client()
    first = client.submit_order(resting("AAPL"))
    second = client.submit_order(resting("MSFT"))
    assert client.cancel_order_by_id(first.id) is None
    statuses = {
        o.id: o.status for o in client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL))
    }
    assert statuses[first.id] in (OrderStatus.PENDING_CANCEL, OrderStatus.CANCELED)
    responses = client.cancel_orders()
    assert [r.id for r in responses] == [second.id]
    assert all(isinstance(r, CancelOrderResponse) and r.status == 200 for r in responses)
    wait_for(lambda: canceled(client, first.id) and canceled(client, second.id))
    assert client.get_orders() == []


def test_trailing_slash_url_override(sim: SimServer) -> None:
    client = TradingClient(sim.key_id, sim.secret_key, url_override=sim.base_url + "/")
    assert isinstance(client.get_account(), TradeAccount)
    assert isinstance(client.submit_order(resting()), Order)


def test_raw_data_client_gets_dicts(sim: SimServer) -> None:
    client = sim.trading_client(raw_data=True)
    order = client.submit_order(resting())
    assert isinstance(order, dict)
    assert order["qty"] == "1"
    assert order["limit_price"] == "1"


# ---------------------------------------------------------------------- errors


def test_bad_keys(sim: SimServer) -> None:
    missing = requests.get(sim.base_url + "/v2/account", timeout=10)
    assert missing.status_code == 401
    assert missing.json() == {"code": 40110000, "message": "request is not authorized"}
    wrong_key = api_error(
        TradingClient("NOPE", sim.secret_key, url_override=sim.base_url).get_account
    )
    assert wrong_key.status_code == 401
    assert wrong_key.code == 40110000
    wrong_secret = api_error(
        TradingClient(sim.key_id, "NOPE", url_override=sim.base_url).get_account
    )
    assert wrong_secret.status_code == 403
    assert wrong_secret.code == 40310000


def test_refusals(sim: SimServer) -> None:
    client = sim.trading_client()
    broke = api_error(lambda: client.submit_order(market("AAPL", qty=1_000_000)))
    assert broke.status_code == 403
    assert broke.code == 40310000
    assert broke.message == "insufficient buying power"
    assert "buying_power" in json.loads(str(broke))

    bought = filled(client, client.submit_order(market("AAPL", qty=2)).id)
    oversold = api_error(lambda: client.submit_order(market("AAPL", qty=5, side=OrderSide.SELL)))
    assert oversold.status_code == 403
    assert oversold.code == 40310000
    assert oversold.message.startswith("insufficient qty available for order")

    no_order = api_error(lambda: client.get_order_by_id(uuid.uuid4()))
    assert (no_order.status_code, no_order.code, no_order.message) == (
        404,
        40410000,
        "order not found",
    )
    no_coid = api_error(lambda: client.get_order_by_client_id("nobody"))
    assert (no_coid.status_code, no_coid.code) == (404, 40410000)
    no_position = api_error(lambda: client.get_open_position("MSFT"))
    assert (no_position.status_code, no_position.code, no_position.message) == (
        404,
        40410000,
        "position does not exist",
    )
    too_late = api_error(lambda: client.cancel_order_by_id(bought.id))
    assert (too_late.status_code, too_late.code, too_late.message) == (
        422,
        42210000,
        'order is already in "filled" state',
    )
    client.submit_order(resting(client_order_id="twice"))
    dup = api_error(lambda: client.submit_order(resting(client_order_id="twice")))
    assert (dup.status_code, dup.code, dup.message) == (
        422,
        40010001,
        "client_order_id must be unique",
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"symbol": "AAPL", "qty": 0, "side": "buy", "type": "market", "time_in_force": "day"},
            "qty",
        ),
        (
            {
                "symbol": "AAPL",
                "qty": "abc",
                "side": "buy",
                "type": "market",
                "time_in_force": "day",
            },
            "qty",
        ),
        (
            {"symbol": "AAPL", "qty": 1, "side": "buy", "type": "limit", "time_in_force": "day"},
            "limit_price",
        ),
        (
            {"symbol": "AAPL", "qty": 1, "side": "up", "type": "market", "time_in_force": "day"},
            "side",
        ),
        (
            {"symbol": "AAPL", "qty": 1, "side": "buy", "type": "wild", "time_in_force": "day"},
            "type",
        ),
    ],
)
def test_invalid_input_is_422(sim: SimServer, body: dict[str, Any], message: str) -> None:
    response = raw(sim, "POST", "/v2/orders", json=body)
    assert response.status_code == 422
    assert response.json()["code"] == 40010001
    assert message in response.json()["message"]
    assert sim.ledger()["orders"] == []


def test_malformed_json_then_keeps_serving(sim: SimServer) -> None:
    response = raw(sim, "POST", "/v2/orders", data=b"{not json")
    assert response.status_code == 422
    assert response.json() == {"code": 40010000, "message": "request body format is invalid"}
    assert isinstance(sim.trading_client().get_account(), TradeAccount)


def test_random_requests_never_500(sim: SimServer) -> None:
    rng = random.Random(7)
    paths = [
        "/v2/orders",
        "/v2/orders/x",
        "/v2/positions/AAPL",
        "/v2/account",
        "//v2/clock",
        "/v2/orders:by_client_order_id",
        "/v2/assets/??",
        "/v3/nothing",
        "/v2/orders?limit=abc",
        "/v2/orders?status=nope&after=yesterday",
        "/v2/positions/%00",
    ]
    values: list[Any] = [None, 0, -1, "1e400", "NaN", 1.5, "x", [], {}, True, "a" * 300]
    session = requests.Session()
    session.headers.update({"APCA-API-KEY-ID": sim.key_id, "APCA-API-SECRET-KEY": sim.secret_key})
    for _ in range(80):
        method = rng.choice(["GET", "POST", "DELETE", "PATCH", "PUT"])
        keys = ["symbol", "qty", "side", "type", "time_in_force", "limit_price", "client_order_id"]
        body = {k: rng.choice(values) for k in rng.sample(keys, rng.randint(0, len(keys)))}
        data = json.dumps(body).encode() if rng.random() < 0.8 else bytes(rng.randbytes(12))
        response = session.request(method, sim.base_url + rng.choice(paths), data=data, timeout=10)
        assert response.status_code < 500, (method, response.text)
    ledger = sim.ledger()
    for entry in ledger["orders"]:
        assert float(entry["order"]["filled_qty"]) <= float(entry["order"]["qty"])


def test_rate_limit_429_with_headers(sim: SimServer) -> None:
    sim.api.rate_limit = 3
    client = sim.trading_client()
    client._retry = 0  # the SDK would sleep 3 s and retry a 429
    for _ in range(3):
        client.get_clock()
    limited = api_error(client.get_clock)
    assert limited.status_code == 429
    assert limited.code == 42910000
    headers = limited.response.headers
    assert headers["X-Ratelimit-Limit"] == "3"
    assert headers["X-Ratelimit-Remaining"] == "0"
    assert int(headers["X-Ratelimit-Reset"]) >= int(time.time())


def test_rate_limit_headers_on_success(sim: SimServer) -> None:
    sim.api.rate_limit = 200
    response = raw(sim, "GET", "/v2/account")
    assert response.status_code == 200
    assert response.headers["X-Ratelimit-Limit"] == "200"
    assert response.headers["X-Ratelimit-Remaining"] == "199"


# ---------------------------------------------------------------------- transport faults


def test_reset_fault_is_connection_error(sim: SimServer) -> None:
    client = sim.trading_client()
    sim.set_faults({"reset_rate": 1.0})
    with pytest.raises(requests.exceptions.ConnectionError):
        client.get_account()
    sim.set_faults("calm")
    assert isinstance(client.get_account(), TradeAccount)


def test_lost_submit_reset_leaves_the_order_placed(sim: SimServer) -> None:
    client = sim.trading_client()
    sim.set_faults({"lost_submit_rate": 1.0, "lost_submit_modes": ["reset"]})
    with pytest.raises(requests.exceptions.ConnectionError):
        client.submit_order(resting(client_order_id="lost-1"))
    sim.set_faults("calm")
    assert client.get_order_by_client_id("lost-1").status in (
        OrderStatus.ACCEPTED,
        OrderStatus.PENDING_NEW,
        OrderStatus.NEW,
    )
    (entry,) = sim.ledger()["orders"]
    assert entry["posts"][0]["outcome"] == "applied, response lost (reset)"


def test_hang_fault_is_read_timeout(sim: SimServer) -> None:
    client = sim.trading_client()
    request = client._session.request

    def with_timeout(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", (2.0, 0.3))
        return request(*args, **kwargs)

    client._session.request = with_timeout
    sim.set_faults({"hang_rate": 1.0, "hang_seconds": 1.0})
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        client.get_account()
    assert time.monotonic() - started < 0.9
    sim.set_faults("calm")
    assert isinstance(client.get_account(), TradeAccount)


def test_http_error_fault(sim: SimServer) -> None:
    client = sim.trading_client()
    client._retry = 0
    sim.set_faults({"http_error_rate": 1.0})
    statuses = {api_error(client.get_clock).status_code for _ in range(12)}
    assert statuses <= {500, 502, 503, 504}
    assert len(statuses) > 1
    assert sim.errors.count == 0  # injected, not a bug


# ---------------------------------------------------------------------- the context manager


def test_run_simulator_frees_port_and_thread() -> None:
    import socket
    import threading

    before = set(threading.enumerate())
    with run_simulator(port=0, key_id="K2", secret_key="S2", seed=3) as server:
        assert server.key_id == "K2"
        assert server.base_url == f"http://127.0.0.1:{server.port}"
        assert server.stream_url == f"ws://127.0.0.1:{server.port}/stream"
        assert isinstance(server.trading_client().get_clock(), Clock)
        port = server.port
    assert set(threading.enumerate()) <= before
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))  # free again
    assert DEFAULT_KEY_ID == "FILLGUARD-SIM-KEY"
    assert DEFAULT_SECRET_KEY == "FILLGUARD-SIM-SECRET"


def test_a_handler_bug_is_a_500_json_and_is_counted() -> None:
    with run_simulator(port=0) as server:

        def broken(request: Any) -> Any:
            raise KeyError("boom")

        server.api.handle = broken  # type: ignore[method-assign,assignment]
        response = requests.get(server.base_url + "/v2/clock", timeout=10)
        assert response.status_code == 500
        assert response.json() == {
            "code": 50010000,
            "message": "internal server error: KeyError('boom')",
        }
        assert server.errors.count == 1


# ---------------------------------------------------------------------- trickle over sockets


def test_trickle_beats_a_per_read_timeout_and_stops_when_the_client_goes(
    sim: SimServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A trickled answer sends its headers at once, then a byte every interval: a requests GET
    with timeout=(1, 1) keeps getting bytes past 1 s in all; when the client closes, the
    server's body task stops quietly (nothing logged, no error counted)."""
    caplog.set_level(logging.WARNING)
    stats = sim.api.trickles
    before = dataclasses.replace(stats)
    sim.set_faults({"trickle_rate": 1.0, "trickle_seconds_per_byte": 0.25})
    headers = {"APCA-API-KEY-ID": sim.key_id, "APCA-API-SECRET-KEY": sim.secret_key}
    started = time.monotonic()
    response = requests.get(
        sim.base_url + "/v2/account", headers=headers, timeout=(1, 1), stream=True
    )
    assert response.status_code == 200
    assert time.monotonic() - started < 0.9, "status and headers come at once"
    size = int(response.headers["content-length"])
    got = b""
    for chunk in response.iter_content(chunk_size=1):
        got += chunk
        if len(got) == 7:
            break
    assert got == b'{"id":"'
    assert time.monotonic() - started > 1.5, "7 bytes took longer than the read timeout"
    assert stats.active == before.active + 1
    response.close()
    wait_for(lambda: stats.active == before.active)
    assert (stats.started, stats.abandoned) == (before.started + 1, before.abandoned + 1)
    assert size > 100
    sim.set_faults({"trickle_rate": 1.0, "trickle_seconds_per_byte": 0.0005})
    whole = requests.get(sim.base_url + "/v2/clock", headers=headers, timeout=(1, 1))
    assert whole.json()["is_open"] is True
    wait_for(lambda: stats.finished == before.finished + 1)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
