"""Every fault knob on its own: observable, reproducible from the seed, independent of the others."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from functools import partial
from typing import Any

import pytest
import requests
from alpaca.common.exceptions import APIError
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest

from fillguard.sim.api import ApiResponse
from fillguard.sim.core import BrokerConfig
from fillguard.sim.faults import (
    CALM,
    HOSTILE,
    PROFILES,
    ROUGH,
    FaultProfile,
    FaultRng,
    Latency,
    profile_from,
)
from fillguard.sim.orders import SimOrder, vwap
from tests.sim_support import (
    SDK_AUTH,
    URL,
    Sim,
    check_ledger,
    make_sim,
    order_body,
    order_request,
    request,
    with_timeout,
)

FLAT = BrokerConfig(
    price_volatility=0.0,
    initial_prices=(("AAPL", Decimal("100")), ("MSFT", Decimal("400"))),
)


def sim_with(seed: int = 1, rate_limit: int | None = None, **knobs: Any) -> Sim:
    """A simulator with flat prices and the given knobs on."""
    return make_sim(seed=seed, faults=knobs, rate_limit=rate_limit, config=FLAT)


def market(qty: float = 1, coid: str | None = None, symbol: str = "AAPL") -> MarketOrderRequest:
    """An SDK market buy day order."""
    return MarketOrderRequest(
        symbol=symbol,
        qty=qty,
        side=OrderSide.BUY,
        time_in_force=TimeInForce.DAY,
        client_order_id=coid,
    )


def run_until(sim: Sim, done: Callable[[], bool], limit: float = 30.0) -> None:
    """Step fake time from one scheduled action to the next until ``done()`` (or ``limit`` s)."""
    start = sim.broker.t()
    while not done():
        due = sim.broker.next_due()
        assert due is not None, "nothing left to happen"
        assert due - start <= limit, "condition not reached in time"
        sim.advance(max(0.0, due - sim.broker.t()) + 1e-9)


def is_filled(order: SimOrder) -> bool:
    """Whether the order is filled."""
    return order.status == "filled"


def get_statuses(sim: Sim, n: int, path: str = "/v2/account") -> list[tuple[int, str | None]]:
    """Status and fired knob of ``n`` identical GETs through ``api.handle``."""
    out = []
    for _ in range(n):
        r = sim.handle("GET", path)
        out.append((r.status, r.fault_name))
    return out


# ------------------------------------------------------------------------------ REST knobs
def test_http_error_rate_gives_500_502_503_504_alone() -> None:
    """http_error_rate answers some requests 500/502/503/504 (502 as HTML) and nothing else."""
    sim = sim_with(http_error_rate=0.3)
    seen: dict[int, ApiResponse] = {}
    hits = 0
    for _ in range(300):
        r = sim.handle("GET", "/v2/account")
        if r.status != 200:
            hits += 1
            assert r.fault_name == "http_error"
            seen.setdefault(r.status, r)
        else:
            assert r.fault_name is None
    assert set(seen) == {500, 502, 503, 504}
    assert 45 <= hits <= 135
    assert seen[502].body.startswith(b"<html>")
    assert ("content-type", "text/html") in seen[502].headers
    assert json.loads(seen[500].body)["code"] == 50010000


def test_http_errors_surface_through_the_sdk_as_api_error() -> None:
    """Through alpaca-py the 5xx faults are APIError with those status codes; 502 has HTML."""
    sim = sim_with(http_error_rate=0.5)
    errors: list[APIError] = []
    ok = 0
    for _ in range(80):
        try:
            sim.client.get_account()
            ok += 1
        except APIError as err:
            errors.append(err)
    assert ok > 10
    codes = {int(e.status_code or 0): e for e in errors}
    assert set(codes) == {500, 502, 503, 504}
    assert str(codes[502]).startswith("<html>")
    with pytest.raises(json.JSONDecodeError):
        _ = codes[502].code
    assert codes[500].code == 50010000
    assert codes[503].code == 50310000


def test_http_error_on_submit_applies_nothing() -> None:
    """A 5xx fault on POST /v2/orders happens before the broker: no order, the POST recorded."""
    sim = sim_with(http_error_rate=1.0)
    resp = sim.handle("POST", "/v2/orders", order_body(client_order_id="e-1"))
    assert resp.status >= 500
    assert not sim.broker.orders
    ledger = sim.handle("GET", "/_sim/ledger").json()
    assert ledger["posts_without_order"]["e-1"][0]["outcome"] == f"fault:{resp.status}"


def test_rate_limit_bursts_have_the_configured_length() -> None:
    """rate_limit_burst_rate starts bursts of exactly rate_limit_burst_length 429s."""
    sim = sim_with(rate_limit_burst_rate=0.05, rate_limit_burst_length=4)
    statuses = get_statuses(sim, 600)
    runs: list[int] = []
    length = 0
    for status, name in [*statuses, (200, None)]:
        if status == 429:
            assert name == "rate_limit_burst"
            length += 1
        else:
            assert status == 200
            if length:
                runs.append(length)
            length = 0
    assert len(runs) >= 3
    assert all(n % 4 == 0 for n in runs), runs
    resp = sim_with(rate_limit_burst_rate=1.0).handle("GET", "/v2/account")
    assert resp.json() == {"code": 42910000, "message": "rate limit exceeded"}


def test_rate_limit_burst_through_the_sdk() -> None:
    """A 429 burst reaches the SDK (retries off) as APIError 429 with Alpaca's code."""
    sim = sim_with(rate_limit_burst_rate=1.0, rate_limit_burst_length=2)
    with pytest.raises(APIError) as err:
        sim.client.get_account()
    assert err.value.status_code == 429
    assert err.value.code == 42910000


def test_reset_rate_raises_connection_error_and_applies_nothing() -> None:
    """reset_rate drops the connection: requests ConnectionError, and a reset POST applies nothing."""
    sim = sim_with(reset_rate=0.3)
    resets: list[requests.exceptions.ConnectionError] = []
    for _ in range(60):
        try:
            sim.client.get_account()
        except requests.exceptions.ConnectionError as exc:
            resets.append(exc)
    assert 6 <= len(resets) <= 35
    assert all(isinstance(exc.args[0], ConnectionResetError) for exc in resets)
    sim.broker.set_faults(profile_from({"reset_rate": 1.0}))
    with pytest.raises(requests.exceptions.ConnectionError):
        sim.client.submit_order(market(coid="r-1"))
    assert not sim.broker.orders
    sim.broker.set_faults(CALM)
    with pytest.raises(APIError) as err:
        sim.client.get_order_by_client_id("r-1")
    assert err.value.status_code == 404
    posts = sim.handle("GET", "/_sim/ledger").json()["posts_without_order"]["r-1"]
    assert [p["outcome"] for p in posts] == ["fault:reset"]


def test_latency_advances_the_fake_clock_by_the_drawn_latency() -> None:
    """Each SDK call takes exactly the latency the seed draws (same draws as via api.handle)."""
    knobs: dict[str, Any] = {"latency": {"kind": "uniform", "a": 0.2, "b": 0.4}}
    twin = sim_with(seed=9, **knobs)
    expected = [twin.handle("GET", "/v2/account").delay for _ in range(20)]
    assert all(0.2 <= d <= 0.4 for d in expected)
    assert len(set(expected)) == 20
    sim = sim_with(seed=9, **knobs)
    took = []
    for _ in range(20):
        before = sim.clock.monotonic()
        sim.client.get_account()
        took.append(sim.clock.monotonic() - before)
    assert took == pytest.approx(expected, abs=1e-9)
    lognormal = sim_with(latency=Latency("lognormal", 0.01, 0.05))
    delays = [lognormal.handle("GET", "/v2/account").delay for _ in range(200)]
    assert all(0 < d <= 0.2 for d in delays)
    assert 0.005 < sorted(delays)[100] < 0.02  # the median is near a


def test_hang_raises_read_timeout_for_a_session_with_a_timeout() -> None:
    """hang_rate: a client with a read timeout gets ReadTimeout after exactly that timeout."""
    sim = sim_with(hang_rate=1.0, hang_seconds=15.0)
    with_timeout(sim.client, 5.0)
    before = sim.clock.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        sim.client.get_account()
    assert sim.clock.monotonic() - before == pytest.approx(5.0)
    before = sim.clock.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        sim.client._session.get(f"{URL}/v2/account", headers=SDK_AUTH, timeout=(1.0, 2.5))
    assert sim.clock.monotonic() - before == pytest.approx(2.5)
    with pytest.raises(requests.exceptions.ReadTimeout):
        sim.client.submit_order(market(coid="h-1"))
    assert not sim.broker.orders, "a hang happens before anything is applied"


def test_hang_without_a_timeout_waits_then_answers_504() -> None:
    """Without a client timeout a hang ends after hang_seconds with a 504."""
    sim = sim_with(hang_rate=1.0, hang_seconds=15.0)
    before = sim.clock.monotonic()
    with pytest.raises(APIError) as err:
        sim.client.get_account()
    assert err.value.status_code == 504
    assert sim.clock.monotonic() - before == pytest.approx(15.0)


def test_stale_read_shows_an_older_status_or_404_right_after_submit() -> None:
    """stale_read_rate: GET of an order shows it as it was stale_read_seconds ago."""
    sim = sim_with(stale_read_rate=1.0, stale_read_seconds=0.3)
    order = sim.client.submit_order(
        LimitOrderRequest(
            symbol="AAPL",
            qty=3,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.DAY,
            limit_price=95,
            client_order_id="s-1",
        )
    )
    with pytest.raises(APIError) as err:
        sim.client.get_order_by_id(order.id)
    assert err.value.status_code == 404
    with pytest.raises(APIError) as err:
        sim.client.get_order_by_client_id("s-1")
    assert err.value.status_code == 404
    broker_order = sim.broker.orders[str(order.id)]
    sim.advance(1)
    sim.broker.set_price("AAPL", Decimal(94))
    run_until(sim, lambda: broker_order.status == "filled")
    sim.advance(0.1)
    stale = sim.client.get_order_by_id(order.id)
    assert stale.status == "new"
    assert stale.filled_qty == "0"
    assert sim.client.get_order_by_client_id("s-1").status == "new"
    assert sim.handle("GET", "/_sim/ledger").json()["orders"][0]["order"]["status"] == "filled"
    resp = sim.handle("GET", f"/v2/orders/{order.id}")
    assert resp.fault_name == "stale_read"
    sim.advance(0.25)
    assert sim.client.get_order_by_id(order.id).status == "filled"
    listed = sim.handle("GET", "/v2/orders", query={"status": "all"}).json()
    assert listed[0]["status"] == "filled", "list reads are not stale"


def test_stale_read_keeps_working_for_orders_with_many_versions() -> None:
    """A stale read of an old order with many recent changes shows an older version, never 404."""
    for seed in range(1, 20):
        sim = sim_with(
            seed=seed, partial_fill_rate=1.0, max_partial_fills=40, stale_read_seconds=2.0
        )
        order = sim.broker.submit(
            order_request(type="limit", qty=Decimal(500), limit_price=Decimal(90))
        )
        sim.advance(5)
        assert order.status == "new"
        sim.broker.set_price("AAPL", Decimal(89))
        run_until(sim, partial(is_filled, order))
        if len(order.executions) >= 12:
            break
    assert len(order.executions) >= 12, "more versions than the core used to keep"
    sim.broker.set_faults(sim.broker.faults.with_(stale_read_rate=1.0))
    resp = sim.handle("GET", f"/v2/orders/{order.id}")
    assert resp.status == 200, "the order existed long before the stale cutoff"
    assert resp.fault_name == "stale_read"
    cutoff = sim.broker.t() - 2.0
    expected = [e for e in sim.broker.events if e.order["id"] == order.id and e.mono <= cutoff]
    assert resp.json() == expected[-1].order
    assert resp.json()["status"] == "new"


@pytest.mark.parametrize("mode", ["504", "reset", "hang"])
def test_lost_submit_applies_the_order_but_the_client_sees_an_error(mode: str) -> None:
    """lost_submit_rate: the order exists at the broker though the client got 504/reset/hang."""
    sim = sim_with(lost_submit_rate=1.0, lost_submit_modes=[mode], hang_seconds=15.0)
    with_timeout(sim.client, 5.0)
    expected: type[Exception] = {
        "504": APIError,
        "reset": requests.exceptions.ConnectionError,
        "hang": requests.exceptions.ReadTimeout,
    }[mode]
    with pytest.raises(expected) as err:
        sim.client.submit_order(market(qty=2, coid=f"lost-{mode}"))
    if mode == "504":
        assert isinstance(err.value, APIError)
        assert err.value.status_code == 504
    assert len(sim.broker.orders) == 1
    sim.broker.set_faults(CALM)
    found = sim.client.get_order_by_client_id(f"lost-{mode}")
    assert found.client_order_id == f"lost-{mode}"
    (row,) = sim.handle("GET", "/_sim/ledger").json()["orders"]
    assert row["order"]["client_order_id"] == f"lost-{mode}"
    assert [p["outcome"] for p in row["posts"]] == [f"applied, response lost ({mode})"]
    sim.advance(2)
    assert sim.client.get_order_by_id(found.id).status == "filled"


def test_lost_submit_without_client_order_id_is_recorded_on_the_minted_id() -> None:
    """A lost submit without client_order_id is recorded on the order's own ledger row."""
    sim = sim_with(lost_submit_rate=1.0, lost_submit_modes=["504"])
    sim.handle("POST", "/v2/orders", order_body(qty="0", side="buy"))  # refused, no coid
    resp = sim.handle("POST", "/v2/orders", order_body())
    assert (resp.status, resp.fault_name) == (504, "lost_submit")
    ledger = sim.handle("GET", "/_sim/ledger").json()
    (row,) = ledger["orders"]
    assert [p["outcome"] for p in row["posts"]] == ["applied, response lost (504)"]
    assert [p["outcome"] for p in ledger["posts_without_order"][""]] == ["refused:422"]


def test_missing_price_shows_filled_without_price_for_a_while() -> None:
    """missing_price_rate: status filled with filled_avg_price null, then the price appears."""
    sim = sim_with(missing_price_rate=1.0, missing_price_seconds=0.3)
    order = sim.client.submit_order(market(qty=4))
    broker_order = sim.broker.orders[str(order.id)]
    run_until(sim, lambda: broker_order.status == "filled")
    got = sim.client.get_order_by_id(order.id)
    assert got.status == "filled"
    assert got.filled_qty == "4"
    assert got.filled_avg_price is None
    fill_event = sim.broker.events[-1]
    assert fill_event.event == "fill"
    assert fill_event.order["filled_avg_price"] is not None, "the stream has the price"
    truth = sim.handle("GET", "/_sim/ledger").json()["orders"][0]["order"]
    assert truth["filled_avg_price"] is not None
    sim.advance(0.2)
    assert sim.client.get_order_by_id(order.id).filled_avg_price is None
    sim.advance(0.11)
    price = sim.client.get_order_by_id(order.id).filled_avg_price
    assert price is not None
    assert Decimal(price) == vwap(broker_order.executions)


def test_cancel_race_fills_during_pending_cancel() -> None:
    """cancel_race_rate=1: a cancel (204) on a routed, fillable order ends filled; with 0, canceled.

    Fills are slow (5 s) and cancels quick (1 s), so without the race the cancel always wins.
    A resting limit the market never reached ends canceled whatever the rate.
    """
    slow = replace(FLAT, fill_latency=Latency("fixed", 5.0), cancel_latency=Latency("fixed", 1.0))
    outcomes = {}
    for rate in (0.0, 1.0):
        sim = make_sim(seed=1, faults={"cancel_race_rate": rate}, config=slow)
        order = sim.client.submit_order(market(qty=5))
        resting = sim.client.submit_order(
            LimitOrderRequest(
                symbol="AAPL",
                qty=5,
                side=OrderSide.BUY,
                time_in_force=TimeInForce.GTC,
                limit_price=90,
            )
        )
        sim.advance(0.5)
        for o in (order, resting):
            assert sim.client.cancel_order_by_id(o.id) is None
            assert sim.client.get_order_by_id(o.id).status == "pending_cancel"
        sim.advance(2)
        outcomes[rate] = sim.client.get_order_by_id(order.id).status
        assert sim.client.get_order_by_id(resting.id).status == "canceled"
        check_ledger(sim.broker)
    assert outcomes == {0.0: "canceled", 1.0: "filled"}


def test_partial_fill_rate_fills_in_several_executions() -> None:
    """partial_fill_rate=1: an order reads partially_filled, then filled, over several executions."""
    sim = sim_with(partial_fill_rate=1.0)
    order = sim.client.submit_order(market(qty=50))
    broker_order = sim.broker.orders[str(order.id)]
    run_until(sim, lambda: broker_order.status == "partially_filled")
    got = sim.client.get_order_by_id(order.id)
    assert got.status == "partially_filled"
    assert 0 < Decimal(got.filled_qty) < 50
    run_until(sim, lambda: broker_order.status == "filled")
    fills = sim.handle("GET", "/v2/account/activities/FILL").json()
    assert len(fills) >= 2
    assert sum(Decimal(f["qty"]) for f in fills) == 50
    calm = sim_with()
    calm_order = calm.broker.submit(order_request(qty=Decimal(50)))
    calm.advance(2)
    assert len(calm_order.executions) == 1


def test_reject_rate_rejects_without_executions() -> None:
    """reject_rate=1: the order is accepted, then rejected, and never executes."""
    sim = sim_with(reject_rate=1.0)
    order = sim.client.submit_order(market(qty=2))
    assert order.status == "accepted"
    sim.advance(2)
    got = sim.client.get_order_by_id(order.id)
    assert got.status == "rejected"
    assert got.failed_at is not None
    assert got.filled_qty == "0"
    assert sim.broker.executions == []
    assert sim.client.get_all_positions() == []


def test_position_lag_shows_positions_late_then_catches_up() -> None:
    """position_lag_seconds: GET positions shows the position as it was that long ago."""
    sim = sim_with(position_lag_seconds=0.5)
    order = sim.client.submit_order(market(qty=3))
    broker_order = sim.broker.orders[str(order.id)]
    run_until(sim, lambda: broker_order.status == "filled")
    assert sim.client.get_all_positions() == []
    with pytest.raises(APIError):
        sim.client.get_open_position("AAPL")
    sim.advance(0.51)
    (pos,) = sim.client.get_all_positions()
    assert pos.qty == "3"
    second = sim.broker.submit(order_request(qty=Decimal(2)))
    run_until(sim, lambda: second.status == "filled")
    assert sim.client.get_open_position("AAPL").qty == "3"
    sim.advance(0.51)
    assert sim.client.get_open_position("AAPL").qty == "5"


def test_position_lag_with_many_quick_fills_shows_the_lagged_position() -> None:
    """With many fills inside the lag window the lagged view is the position at now - lag."""
    sim = sim_with(partial_fill_rate=1.0, max_partial_fills=10, position_lag_seconds=2.0)
    sim.broker.submit(order_request(qty=Decimal(7)))
    sim.advance(5)
    orders = [
        sim.broker.submit(order_request(type="limit", qty=Decimal(40), limit_price=Decimal(90)))
        for _ in range(8)
    ]
    sim.advance(3)
    sim.broker.set_price("AAPL", Decimal(89))
    run_until(sim, lambda: all(o.status == "filled" for o in orders))
    assert len(sim.broker.executions) >= 17
    cutoff = sim.broker.t() - 2.0
    assert all(e.mono > cutoff for o in orders for e in o.executions)
    rows = sim.handle("GET", "/v2/positions").json()
    assert [r["qty"] for r in rows] == ["7"]
    sim.advance(2)
    assert [r["qty"] for r in sim.handle("GET", "/v2/positions").json()] == ["327"]


# ------------------------------------------------------------------------------ rate limiter
def test_rate_limiter_answers_429_past_n_per_window_with_headers() -> None:
    """rate_limit=N: N requests pass with X-Ratelimit-* headers, the N+1th is 429; then it resets."""
    sim = sim_with(rate_limit=5)
    remaining = []
    for _ in range(5):
        r = sim.handle("GET", "/v2/account")
        assert r.status == 200
        h = dict(r.headers)
        assert h["x-ratelimit-limit"] == "5"
        remaining.append(h["x-ratelimit-remaining"])
    assert remaining == ["4", "3", "2", "1", "0"]
    r = sim.handle("GET", "/v2/account")
    assert r.status == 429
    h = dict(r.headers)
    assert h["x-ratelimit-limit"] == "5"
    assert h["x-ratelimit-remaining"] == "0"
    reset = int(h["x-ratelimit-reset"])
    assert reset == math.ceil(sim.clock.now().timestamp() + 60)
    assert r.json() == {"code": 42910000, "message": "rate limit exceeded"}
    with pytest.raises(APIError) as err:
        sim.client.get_account()
    assert err.value.status_code == 429
    assert err.value.response is not None
    assert err.value.response.headers["X-Ratelimit-Limit"] == "5"
    sim.advance(60)
    assert sim.handle("GET", "/v2/account").status == 200


def test_rate_limit_window_restarts_after_a_sim_reset() -> None:
    """After /_sim/reset (the broker clock restarts at 0) the limit window is at most a minute."""
    sim = sim_with(rate_limit=3)
    sim.advance(130)
    assert sim.handle("GET", "/v2/account").status == 200
    assert sim.handle("POST", "/_sim/reset").status == 200
    for _ in range(3):
        assert sim.handle("GET", "/v2/account").status == 200
    r = sim.handle("GET", "/v2/account")
    assert r.status == 429
    assert int(dict(r.headers)["x-ratelimit-reset"]) <= math.ceil(sim.clock.now().timestamp() + 60)
    sim.advance(60)
    assert sim.handle("GET", "/v2/account").status == 200


def test_rate_limit_none_is_off() -> None:
    """rate_limit=None: no 429 and no X-Ratelimit headers, however many requests."""
    sim = sim_with(rate_limit=None)
    for _ in range(400):
        r = sim.handle("GET", "/v2/account")
        assert r.status == 200
        assert not any(k.startswith("x-ratelimit") for k, _ in r.headers)


def test_default_rate_limit_is_200_per_minute() -> None:
    """The default SimApi rate limit is 200 requests a minute."""
    from fillguard.sim.api import SimApi

    sim = sim_with()
    api = SimApi(sim.broker, key_id="SIMKEY", secret_key="SIMSECRET")
    statuses = [api.handle(request("GET", "/v2/account")).status for _ in range(201)]
    assert statuses[:200] == [200] * 200
    assert statuses[200] == 429


# ------------------------------------------------------------------------------ reproducibility
REST_KNOBS: dict[str, Any] = {
    "http_error_rate": 0.15,
    "reset_rate": 0.1,
    "hang_rate": 0.05,
    "stale_read_rate": 0.3,
    "rate_limit_burst_rate": 0.02,
    "lost_submit_rate": 0.3,
    "latency": [0.001, 0.05],
}
KNOB_NAME = {
    "http_error_rate": "http_error",
    "reset_rate": "reset",
    "hang_rate": "hang",
    "stale_read_rate": "stale_read",
    "rate_limit_burst_rate": "rate_limit_burst",
    "lost_submit_rate": "lost_submit",
}
# Which knobs answer a request before each knob gets to act on it.
PREEMPTED_BY = {
    "rate_limit_burst": set(),
    "reset": {"rate_limit_burst"},
    "http_error": {"rate_limit_burst", "reset"},
    "hang": {"rate_limit_burst", "reset", "http_error"},
    "stale_read": {"rate_limit_burst", "reset", "http_error", "hang"},
    "lost_submit": {"rate_limit_burst", "reset", "http_error", "hang"},
}


def rest_script(seed: int, knobs: dict[str, Any]) -> list[ApiResponse]:
    """A fixed mix of 320 requests (GETs of one order, account reads, submits)."""
    sim = sim_with(seed=seed, **knobs)
    base = sim.broker.submit(order_request(client_order_id="base"))
    sim.advance(1)
    out = []
    for i in range(320):
        k = i % 4
        if k == 0:
            r = sim.handle("GET", "/v2/account")
        elif k == 1:
            r = sim.handle("GET", f"/v2/orders/{base.id}")
        elif k == 2:
            r = sim.handle("POST", "/v2/orders", order_body(client_order_id=f"c-{i}"))
        else:
            r = sim.handle(
                "GET", "/v2/orders:by_client_order_id", query={"client_order_id": "base"}
            )
        out.append(r)
        sim.advance(0.01)
    check_ledger(sim.broker)
    return out


def test_rest_faults_are_reproducible_from_the_seed() -> None:
    """The same seed gives the same requests the same faults, delays and bodies; another does not."""
    first = rest_script(5, REST_KNOBS)
    again = rest_script(5, REST_KNOBS)
    other = rest_script(6, REST_KNOBS)
    fired = {r.fault_name for r in first}
    assert set(KNOB_NAME.values()) <= fired
    assert [(r.status, r.fault_name, r.delay, r.body) for r in again] == [
        (r.status, r.fault_name, r.delay, r.body) for r in first
    ]
    assert [r.fault_name for r in other] != [r.fault_name for r in first]


@pytest.mark.parametrize("knob", sorted(KNOB_NAME))
def test_each_rest_knob_hits_the_same_requests_whatever_the_other_knobs(knob: str) -> None:
    """Turning the other knobs on does not change which requests this knob hits."""
    name = KNOB_NAME[knob]
    alone = rest_script(8, {knob: REST_KNOBS[knob]})
    combined = rest_script(8, REST_KNOBS)
    hits = [i for i, r in enumerate(alone) if r.fault_name == name]
    assert len(hits) >= 3, "the knob is observable on its own"
    assert all(r.fault_name in (name, None) for r in alone)
    for i, (a, c) in enumerate(zip(alone, combined, strict=True)):
        if c.fault_name == name:
            assert a.fault_name == name, f"request {i}: hit only with the other knobs on"
        if a.fault_name == name:
            assert c.fault_name == name or c.fault_name in PREEMPTED_BY[name], (
                f"request {i}: {name} lost to {c.fault_name}"
            )


def test_latency_draws_do_not_depend_on_other_knobs() -> None:
    """The latency each request gets is the same with or without the other knobs on."""
    alone = rest_script(8, {"latency": REST_KNOBS["latency"]})
    combined = rest_script(8, REST_KNOBS)
    compared = 0
    for a, c in zip(alone, combined, strict=True):
        if c.fault_name in ("hang", "rate_limit_burst") or c.delay >= 15:
            continue
        assert c.delay == pytest.approx(a.delay)
        compared += 1
    assert compared > 200


ORDER_KNOBS: dict[str, Any] = {
    "reject_rate": 0.2,
    "partial_fill_rate": 0.4,
    "missing_price_rate": 0.4,
    "cancel_race_rate": 0.5,
}


def order_script(seed: int, knobs: dict[str, Any]) -> dict[str, set[str]]:
    """40 market orders, every third canceled right after routing; which orders each knob hit."""
    sim = sim_with(seed=seed, **knobs)
    orders = []
    for i in range(40):
        o = sim.broker.submit(order_request(qty=Decimal(20), client_order_id=f"o-{i}"))
        orders.append(o)
        sim.advance(0.011)
        if i % 3 == 0 and o.status in ("new", "pending_new", "accepted"):
            sim.broker.cancel(o.id)
    sim.advance(5)
    check_ledger(sim.broker)
    cancel_requested = set()
    for o in orders:
        statuses = [e.order["status"] for e in sim.broker.events if e.order["id"] == o.id]
        if "pending_cancel" in statuses:
            cancel_requested.add(o.client_order_id)
    return {
        "reject_rate": {o.client_order_id for o in orders if o.status == "rejected"},
        # The first execution of a partial plan is less than the order; any other is all of it.
        "partial_fill_rate": {
            o.client_order_id for o in orders if o.executions and o.executions[0].qty < o.qty
        },
        "missing_price_rate": {o.client_order_id for o in orders if o.hide_price_until is not None},
        "cancel_race_rate": {
            o.client_order_id
            for o in orders
            if o.client_order_id in cancel_requested and o.status == "filled"
        },
        "filled": {o.client_order_id for o in orders if o.status == "filled"},
        "cancel_requested": cancel_requested,
    }


def test_order_knobs_are_reproducible_from_the_seed() -> None:
    """reject, partial fill, missing price and cancel race hit the same orders for the same seed."""
    first = order_script(21, ORDER_KNOBS)
    assert order_script(21, ORDER_KNOBS) == first
    assert all(first[k] for k in ORDER_KNOBS), first
    assert order_script(22, ORDER_KNOBS) != first


@pytest.mark.parametrize("seed", [23, 24, 25])
def test_order_knobs_hit_the_same_orders_whatever_the_other_knobs(seed: int) -> None:
    """Turning the other order knobs on does not change which orders a knob picks."""
    combined = order_script(seed, ORDER_KNOBS)
    reject = order_script(seed, {"reject_rate": ORDER_KNOBS["reject_rate"]})
    assert reject["reject_rate"]
    assert combined["reject_rate"] == reject["reject_rate"]
    partial = order_script(seed, {"partial_fill_rate": ORDER_KNOBS["partial_fill_rate"]})
    hit = partial["partial_fill_rate"]
    assert hit
    # An order rejected, or canceled before its first fill, cannot show its partial plan.
    masked = combined["reject_rate"] | combined["cancel_requested"] | partial["cancel_requested"]
    assert hit - masked
    assert hit - masked == combined["partial_fill_rate"] - masked
    missing = order_script(seed, {"missing_price_rate": ORDER_KNOBS["missing_price_rate"]})
    assert missing["missing_price_rate"]
    both_filled = missing["filled"] & combined["filled"]
    assert missing["missing_price_rate"] & both_filled == combined["missing_price_rate"] & (
        both_filled
    )


# ------------------------------------------------------------------------------ profiles
def test_profiles_load_and_calm_is_calm() -> None:
    """calm, rough and hostile load by name; only calm is calm; all round-trip through a dict."""
    assert set(PROFILES) == {"calm", "rough", "hostile"}
    assert profile_from("calm") is CALM
    assert profile_from("rough") is ROUGH
    assert profile_from("hostile") is HOSTILE
    assert profile_from(None) is CALM
    assert CALM.is_calm
    assert FaultProfile(name="whatever").is_calm
    assert not ROUGH.is_calm
    assert not HOSTILE.is_calm
    assert not CALM.with_(reject_rate=0.1).is_calm
    for p in (CALM, ROUGH, HOSTILE):
        assert profile_from(p.to_dict()) == p
        assert profile_from(json.loads(json.dumps(p.to_dict()))) == p
    assert HOSTILE.http_error_rate > ROUGH.http_error_rate > 0


def test_profile_from_rejects_unknown_names_and_knobs_clearly() -> None:
    """Unknown profile names and knobs are a ValueError that names them."""
    with pytest.raises(ValueError, match="unknown fault profile 'stormy'"):
        profile_from("stormy")
    with pytest.raises(ValueError, match="unknown fault knobs: bogus, wobble"):
        profile_from({"wobble": 1, "bogus": 2})
    bad: dict[str, Any]
    for bad in (
        {"reject_rate": 1.5},
        {"reject_rate": -0.1},
        {"reject_rate": float("nan")},
        {"reject_rate": "0.1"},
        {"hang_seconds": -1},
        {"max_partial_fills": 1},
        {"max_partial_fills": 3.5},
        {"rate_limit_burst_length": 0},
        {"lost_submit_modes": []},
        {"lost_submit_modes": ["boom"]},
        {"lost_submit_modes": "504"},
        {"latency": [0.5, 0.1]},
        {"latency": {"kind": "weird"}},
        {"latency": {"a": [1]}},
    ):
        with pytest.raises(ValueError, match=r"\S"):
            profile_from(bad)


def test_latency_parse_forms() -> None:
    """Latency.parse reads a number (fixed), a pair (uniform), a dict and a Latency."""
    assert Latency.parse(0.5) == Latency("fixed", 0.5, 0.5)
    assert Latency.parse([0.1, 0.2]) == Latency("uniform", 0.1, 0.2)
    assert Latency.parse({"kind": "lognormal", "a": 0.01, "b": 0.1}) == Latency(
        "lognormal", 0.01, 0.1
    )
    assert Latency.parse(Latency()) == Latency()
    with pytest.raises(ValueError, match="cannot read a latency"):
        Latency.parse(True)


def test_fault_rng_streams_are_independent_and_seeded() -> None:
    """FaultRng: one stream per knob, seeded by (seed, name); rates 0 and 1 draw nothing."""
    a, b = FaultRng(1), FaultRng(1)
    draws_a = [a.chance("x", 0.5) for _ in range(50)]
    for _ in range(30):
        b.chance("y", 0.5)
        b.chance("x", 0.0)
        b.chance("x", 1.0)
    assert [b.chance("x", 0.5) for _ in range(50)] == draws_a
    assert [FaultRng(2).chance("x", 0.5) for _ in range(50)] != draws_a


def test_switching_rate_limit_bursts_off_ends_a_burst_under_way() -> None:
    """A 429 burst stops as soon as the knob is set back to 0."""
    sim = sim_with(rate_limit_burst_rate=1.0, rate_limit_burst_length=50)
    with pytest.raises(APIError) as info:
        sim.client.get_account()
    assert info.value.status_code == 429
    sim.broker.set_faults(sim.broker.faults.with_(rate_limit_burst_rate=0.0))
    assert sim.client.get_account().status == "ACTIVE"
