"""Fuzz the request layer (calm profile): it never raises, never answers 5xx, ledger stays sound."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fillguard.sim.api import ApiRequest, ApiResponse
from fillguard.sim.core import BrokerConfig
from tests.sim_support import (
    AUTH,
    Sim,
    check_ledger,
    check_ledger_json,
    make_sim,
    order_request,
)

CONFIG = BrokerConfig(initial_prices=(("AAPL", Decimal(100)), ("MSFT", Decimal(400))))

JSON_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),  # NaN and Infinity included: json.dumps writes them, the server must cope
    st.text(max_size=12),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
)
JSON_VALUE = st.recursive(
    JSON_LEAF,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)


def field_value(valid: list[Any]) -> st.SearchStrategy[Any]:
    """A field value: usually one of the valid ones, sometimes anything at all."""
    return st.one_of(st.sampled_from(valid), JSON_VALUE)


ORDER_LIKE = st.fixed_dictionaries(
    {},
    optional={
        "symbol": field_value(["AAPL", "MSFT", "aapl", "BRK.B", "", "A" * 11, "ÄPPL"]),
        "side": field_value(["buy", "sell", "BUY", "short"]),
        "type": field_value(["market", "limit", "stop", "stop_limit", "trailing_stop"]),
        "order_type": field_value(["market", "limit"]),
        "time_in_force": field_value(["day", "gtc", "ioc", "fok", "opg", "cls"]),
        "qty": field_value(
            ["1", "2", "0.5", "0", "-1", "1e3", "1e30", "1e-12", 3, 0.25, "NaN", "Infinity", "0x10"]
        ),
        "notional": field_value([None, "100"]),
        "limit_price": field_value(["100", "99.99", "0.5", "0.12345", "0", "-3", 101.5, "1e9"]),
        "stop_price": field_value([None, "90"]),
        "client_order_id": field_value(["c-1", "c-2", "", "x" * 200, "ü-ñ", None]),
        "extended_hours": field_value([False, True, "false"]),
        "order_class": field_value(["", "simple", "bracket", "oco"]),
    },
)

REPLACE_LIKE = st.fixed_dictionaries(
    {},
    optional={
        "qty": field_value(["1", "2", "0.5", "0", "-1", "1e30", 3, "NaN"]),
        "limit_price": field_value(["100", "99.99", "0.12345", "0", 101.5, "1e9"]),
        "stop_price": field_value([None, "90"]),
        "trail": field_value([None, "1"]),
        "time_in_force": field_value(["day", "gtc", "ioc", "opg"]),
        "client_order_id": field_value(["c-1", "r-1", "", "x" * 200, None]),
    },
)
REPLACE_BODY = st.one_of(
    REPLACE_LIKE.map(lambda v: json.dumps(v).encode()), st.just(b""), st.binary(max_size=16)
)

BODY = st.one_of(
    st.just(b""),
    st.binary(max_size=64),
    JSON_VALUE.map(lambda v: json.dumps(v).encode()),
    ORDER_LIKE.map(lambda v: json.dumps(v).encode()),
    st.text(max_size=40).map(str.encode),
)

SEGMENT = st.one_of(
    st.text(max_size=16),
    st.uuids().map(str),
    st.sampled_from(["AAPL", "MSFT", "", "%2F", "..", "ÄPPL", "\x00", "💥", "a/b"]),
)
PATH = st.one_of(
    st.sampled_from(
        [
            "/v2/account",
            "/v2/clock",
            "/v2/orders",
            "/v2/orders/",
            "//v2/orders",
            "/v2/orders//",
            "/v2/orders:by_client_order_id",
            "/v2/positions",
            "/v2/account/activities/FILL",
            "/v2/account/activities",
            "/_sim/ledger",
            "/_sim/events",
            "/_sim/close_session",
            "/_sim",
            "/",
            "",
        ]
    ),
    SEGMENT.map(lambda s: f"/v2/orders/{s}"),
    SEGMENT.map(lambda s: f"/v2/orders:by_client_order_id/{s}"),
    SEGMENT.map(lambda s: f"/v2/positions/{s}"),
    SEGMENT.map(lambda s: f"/v2/assets/{s}"),
    SEGMENT.map(lambda s: f"/_sim/prices/{s}"),
    SEGMENT.map(lambda s: f"/v2/{s}"),
    st.text(max_size=30),
    st.text(max_size=30).map(lambda s: "/" + s),
).filter(lambda p: not p.strip("/").startswith(("_sim/faults", "_sim/reset")))
# /_sim/faults and /_sim/reset switch faults on by design: they are tested in test_sim_api.

QUERY_KEY = st.one_of(
    st.sampled_from(
        [
            "status",
            "limit",
            "after",
            "until",
            "direction",
            "symbols",
            "nested",
            "side",
            "client_order_id",
            "qty",
            "percentage",
            "cancel_orders",
            "page_size",
            "activity_types",
        ]
    ),
    st.text(max_size=8),
)
QUERY_VALUE = st.one_of(
    st.sampled_from(
        [
            "open",
            "closed",
            "all",
            "0",
            "1",
            "500",
            "501",
            "-1",
            "asc",
            "desc",
            "true",
            "True",
            "false",
            "AAPL,MSFT",
            "2026-01-05T14:30:00Z",
            "2026-01-05T14:30:00.5+00:00",
            "9999-12-31T23:59:59-23:59",
            "0001-01-01T00:00:00+23:59",
            "1e-99999",
            "1" * 5000,
            "FILL",
            "c-1",
            "50",
            "100",
            "NaN",
        ]
    ),
    st.text(max_size=20),
)
QUERY = st.dictionaries(QUERY_KEY, st.lists(QUERY_VALUE, min_size=1, max_size=2), max_size=4)
METHOD = st.one_of(
    st.sampled_from(["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"]),
    st.text(max_size=8),
)
HEADERS: st.SearchStrategy[dict[str, str]] = st.one_of(
    st.just(AUTH),
    st.just(AUTH),
    st.just(AUTH),
    st.just({}),
    st.dictionaries(
        st.sampled_from(["apca-api-key-id", "apca-api-secret-key", "content-type"]),
        st.text(max_size=12),
    ),
)
REQUEST = st.builds(ApiRequest, METHOD, PATH, QUERY, BODY, HEADERS)


def interesting_request(sim: Sim, data: st.DataObject) -> ApiRequest:
    """Mostly random requests; some aimed at real orders and positions of this broker."""
    kind = data.draw(st.integers(0, 9))
    if kind <= 5 or not sim.broker.orders:
        return data.draw(REQUEST)
    order_id = data.draw(st.sampled_from(sorted(sim.broker.orders)))
    order = sim.broker.orders[order_id]
    method = data.draw(st.sampled_from(["GET", "DELETE", "PATCH"]))
    if kind == 6:
        body = data.draw(REPLACE_BODY) if method == "PATCH" else b""
        return ApiRequest(method, f"/v2/orders/{order_id}", data.draw(QUERY), body, AUTH)
    if kind == 7:
        query = {"client_order_id": [order.client_order_id]}
        return ApiRequest("GET", "/v2/orders:by_client_order_id", query, b"", AUTH)
    if kind == 8:
        return ApiRequest(method, f"/v2/positions/{order.symbol}", data.draw(QUERY), b"", AUTH)
    body = json.dumps(
        {
            "symbol": order.symbol,
            "side": data.draw(st.sampled_from(["buy", "sell"])),
            "type": "market",
            "time_in_force": "day",
            "qty": str(data.draw(st.integers(1, 5))),
            "client_order_id": data.draw(st.sampled_from([order.client_order_id, None])),
        }
    ).encode()
    return ApiRequest("POST", "/v2/orders", {}, body, AUTH)


def check_response(resp: ApiResponse) -> None:
    """Calm: no 5xx, no fault, a well-formed answer; JSON bodies parse."""
    assert isinstance(resp, ApiResponse)
    assert 200 <= resp.status < 500, (resp.status, resp.body[:200])
    assert resp.fault is None
    assert resp.fault_name is None
    assert resp.delay == 0.0
    headers = dict(resp.headers)
    if headers.get("content-type", "").startswith("application/json"):
        body = json.loads(resp.body)
        if resp.status >= 400:
            assert isinstance(body["code"], int)
            assert isinstance(body["message"], str)


@settings(
    max_examples=350,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(
    seed=st.integers(0, 2**16),
    rate_limit=st.sampled_from([None, None, 200, 3]),
    steps=st.integers(1, 8),
    data=st.data(),
)
def test_fuzzed_requests_never_raise_never_5xx_and_keep_the_ledger_sound(
    seed: int, rate_limit: int | None, steps: int, data: st.DataObject
) -> None:
    """Random methods, paths, queries, bodies and headers: no exception, no 5xx, sound ledger."""
    sim = make_sim(seed=seed, rate_limit=rate_limit, config=CONFIG)
    # Some state to aim at: an open order, a filled one, a position.
    sim.handle(
        "POST",
        "/v2/orders",
        {"symbol": "AAPL", "side": "buy", "type": "market", "time_in_force": "day", "qty": "3"},
    )
    sim.handle(
        "POST",
        "/v2/orders",
        {
            "symbol": "MSFT",
            "side": "buy",
            "type": "limit",
            "time_in_force": "gtc",
            "qty": "2",
            "limit_price": "300",
        },
    )
    sim.advance(1)
    for _ in range(steps):
        req = interesting_request(sim, data)
        resp = sim.api.handle(req)
        check_response(resp)
        sim.advance(data.draw(st.sampled_from([0.0, 0.01, 0.2, 1.0])))
    assert sim.broker.faults.is_calm
    check_ledger(sim.broker)
    check_ledger_json(sim.api)


@settings(max_examples=100, deadline=None)
@given(body=ORDER_LIKE)
def test_fuzzed_order_bodies_are_200_403_or_422(body: dict[str, Any]) -> None:
    """Any order-like body gets 200, an Alpaca 403 or an Alpaca 422, and the ledger records it."""
    sim = make_sim(config=CONFIG)
    resp = sim.handle("POST", "/v2/orders", json.dumps(body).encode())
    assert resp.status in (200, 403, 422), resp.body
    if resp.status != 200:
        err = resp.json()
        assert isinstance(err["code"], int)
        assert isinstance(err["message"], str)
        assert not sim.broker.orders
    else:
        assert len(sim.broker.orders) == 1
    posts = sim.broker.posts
    assert sum(len(v) for v in posts.values()) == 1
    sim.advance(5)
    check_ledger(sim.broker)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(seed=st.integers(0, 2**16), steps=st.integers(1, 10), data=st.data())
def test_hostile_faults_give_5xx_only_as_injected_faults(
    seed: int, steps: int, data: st.DataObject
) -> None:
    """Under the hostile profile a 5xx or reset always names the knob that fired; ledger sound."""
    sim = make_sim(seed=seed, faults="hostile", rate_limit=None, config=CONFIG)
    sim.broker.submit(order_request(qty=Decimal(5)))
    sim.broker.submit(order_request(symbol="MSFT", type="limit", limit_price=Decimal(390)))
    sim.advance(1)
    for _ in range(steps):
        resp = sim.api.handle(interesting_request(sim, data))
        if resp.status >= 500 or resp.fault is not None:
            assert resp.fault_name in ("http_error", "hang", "reset", "lost_submit"), resp
        sim.advance(data.draw(st.sampled_from([0.0, 0.05, 0.5, 2.0])))
    sim.advance(30)
    check_ledger(sim.broker)
    check_ledger_json(sim.api)
