"""How brokers really misbehave (issue 7): each knob firing through alpaca-py, and not when off."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from typing import Any

import pytest
import requests
from alpaca.common.exceptions import APIError
from alpaca.trading.enums import OrderSide, QueryOrderStatus, TimeInForce
from alpaca.trading.models import Order, TradeUpdate
from alpaca.trading.requests import GetOrdersRequest, LimitOrderRequest, MarketOrderRequest

from fillguard.clock import FakeClock
from fillguard.sim.api import SimApi
from fillguard.sim.core import Broker, BrokerConfig
from fillguard.sim.faults import CALM, HOSTILE, ROUGH, FaultProfile, FaultRng, Latency, profile_from
from fillguard.sim.inprocess import in_process_client
from fillguard.sim.orders import SimOrder
from fillguard.snapshot import parse_timestamp
from tests.sim_support import (
    FLAT,
    KEY,
    SDK_AUTH,
    SECRET,
    URL,
    Sim,
    check_ledger,
    check_ledger_json,
    events_of,
    flat_sim,
    order_body,
    order_request,
    run_until,
    with_timeout,
)


def raw_client(sim: Sim) -> Any:
    """A raw_data alpaca-py client on the same simulator (dicts, so nulls stay visible)."""
    client = in_process_client(sim.api, raw_data=True)
    client._retry = 0
    return client


def market(qty: float = 3, coid: str | None = None) -> MarketOrderRequest:
    """An SDK market buy day order of AAPL."""
    return MarketOrderRequest(
        symbol="AAPL",
        qty=qty,
        side=OrderSide.BUY,
        time_in_force=TimeInForce.DAY,
        client_order_id=coid,
    )


def resting(coid: str | None = None, tif: TimeInForce = TimeInForce.GTC) -> LimitOrderRequest:
    """An SDK limit buy of AAPL at 95 (the flat price is 100): it rests."""
    return LimitOrderRequest(
        symbol="AAPL",
        qty=5,
        side=OrderSide.BUY,
        time_in_force=tif,
        limit_price=95,
        client_order_id=coid,
    )


def api_error(call: Any) -> APIError:
    """The APIError ``call()`` raises."""
    with pytest.raises(APIError) as info:
        call()
    return info.value


def is_filled(order: SimOrder) -> bool:
    """Whether the order is filled."""
    return order.status == "filled"


def order_of(sim: Sim, sdk_order: Any) -> SimOrder:
    """The broker's own order for an SDK answer (model or raw dict)."""
    order_id = sdk_order["id"] if isinstance(sdk_order, dict) else str(sdk_order.id)
    return sim.broker.orders[order_id]


# ------------------------------------------------------------------------------ half_update
def test_half_update_shows_each_half_written_variant_right_after_a_fill() -> None:
    """half_update_rate=1: for half_update_seconds after a fill, every REST read of the order
    (by id, by client_order_id, in lists) shows the order's half-written variant; the stream
    event and the ledger carry the complete order; then reads are complete."""
    sim = flat_sim(half_update_rate=1.0, half_update_seconds=0.3)
    raw = raw_client(sim)
    seen: set[str] = set()
    qty_forms: set[str | None] = set()
    for i in range(12):
        placed = raw.submit_order(market(coid=f"h-{i}"))
        order = order_of(sim, placed)
        run_until(sim, partial(is_filled, order))
        variant = sim.broker.half_update_variant(order)
        seen.add(variant)
        truth = sim.handle("GET", "/_sim/ledger").json()["orders"][-1]["order"]
        by_id = raw.get_order_by_id(order.id)
        by_coid = raw.get_order_by_client_id(f"h-{i}")
        (listed,) = [
            o
            for o in raw.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL))
            if o["id"] == order.id
        ]
        for view in (by_id, by_coid, listed):
            Order(**view)  # the SDK model still parses it
            if variant == "status_first":
                assert (view["status"], view["filled_avg_price"]) == (
                    "filled",
                    truth["filled_avg_price"],
                )
                assert view["filled_qty"] in (None, "0")
                assert view["filled_at"] is None
                qty_forms.add(view["filled_qty"])
            elif variant == "qty_first":
                assert view["filled_qty"] == "3"
                assert (view["status"], view["filled_avg_price"], view["filled_at"]) == (
                    "new",
                    None,
                    None,
                )
            else:
                assert (view["status"], view["filled_qty"]) == ("filled", "3")
                assert view["filled_avg_price"] is None
        assert sim.handle("GET", f"/v2/orders/{order.id}").fault_name == "half_update"
        fill_event = events_of(sim.broker, order.id)[-1]
        assert fill_event.event == "fill"
        assert fill_event.order == truth, "the stream carries the complete order"
        assert truth["filled_qty"] == "3"
        assert truth["filled_avg_price"] is not None
        sim.advance(0.31)
        complete = raw.get_order_by_id(order.id)
        assert complete == truth
    assert seen == {"status_first", "qty_first", "price_last"}
    assert qty_forms == {None, "0"}
    check_ledger(sim.broker)


def test_half_update_off_reads_are_complete() -> None:
    """half_update_rate=0: a read right after the fill is the complete order."""
    sim = flat_sim()
    raw = raw_client(sim)
    for i in range(5):
        order = order_of(sim, raw.submit_order(market(coid=f"c-{i}")))
        run_until(sim, partial(is_filled, order))
        resp = sim.handle("GET", f"/v2/orders/{order.id}")
        assert resp.fault_name is None
        assert resp.json()["filled_qty"] == "3"
        assert resp.json()["filled_avg_price"] is not None


# ------------------------------------------------------------------------------ lookup_refused
def test_lookup_refused_refuses_the_first_read_of_each_order_once() -> None:
    """lookup_refused_rate=1: the first read of an order (by id or by client_order_id) is 403
    forbidden or 401 not authorized; every later read succeeds; lists are never refused."""
    sim = flat_sim(lookup_refused_rate=1.0)
    refusals: dict[int, dict[str, Any]] = {}
    for i in range(10):
        placed = sim.client.submit_order(market(coid=f"r-{i}"))
        listed = sim.client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL))
        assert str(placed.id) in {str(o.id) for o in listed}
        first = (
            (lambda p=placed: sim.client.get_order_by_id(p.id))
            if i % 2
            else (lambda n=i: sim.client.get_order_by_client_id(f"r-{n}"))
        )
        err = api_error(first)
        assert err.status_code in (401, 403)
        refusals[int(err.status_code or 0)] = json.loads(str(err))
        assert sim.client.get_order_by_client_id(f"r-{i}").id == placed.id
        assert sim.client.get_order_by_id(placed.id).id == placed.id
    assert refusals == {
        403: {"code": 40310000, "message": "forbidden"},
        401: {"code": 40110000, "message": "request is not authorized"},
    }
    order = sim.broker.submit(order_request(client_order_id="direct"))
    resp = sim.handle("GET", f"/v2/orders/{order.id}")
    assert (resp.status, resp.fault_name) in ((401, "lookup_refused"), (403, "lookup_refused"))


def test_lookup_refused_off_never_refuses() -> None:
    """lookup_refused_rate=0: first reads succeed."""
    sim = flat_sim()
    for i in range(5):
        placed = sim.client.submit_order(market(coid=f"r-{i}"))
        assert sim.client.get_order_by_id(placed.id).id == placed.id


# ------------------------------------------------------------------------------ not_found_lag
def test_not_found_lag_answers_404_for_a_placed_order_until_the_lag_passes() -> None:
    """not_found_lag_rate=1: the POST answer has the order, then every REST read, DELETE and
    PATCH 404s, lists and FILL activities leave it out, until not_found_lag_seconds after it
    was accepted; a duplicate POST still gets the 422; the ledger has it all along."""
    sim = flat_sim(not_found_lag_rate=1.0, not_found_lag_seconds=8.0)
    raw = raw_client(sim)
    placed = raw.submit_order(market(coid="nf-1"))
    assert placed["status"] == "accepted"
    order = order_of(sim, placed)
    run_until(sim, lambda: order.status == "filled")
    for call in (
        lambda: raw.get_order_by_id(order.id),
        lambda: raw.get_order_by_client_id("nf-1"),
        lambda: raw.cancel_order_by_id(order.id),
    ):
        err = api_error(call)
        assert err.status_code == 404
        assert json.loads(str(err)) == {"code": 40410000, "message": "order not found"}
    resp = sim.handle("PATCH", f"/v2/orders/{order.id}", {"qty": "1"})
    assert (resp.status, resp.fault_name) == (404, "not_found_lag")
    assert raw.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL)) == []
    assert sim.handle("GET", "/v2/account/activities/FILL").json() == []
    dup = sim.handle("POST", "/v2/orders", order_body(client_order_id="nf-1"))
    assert (dup.status, dup.json()["message"]) == (422, "client_order_id must be unique")
    (row,) = sim.handle("GET", "/_sim/ledger").json()["orders"]
    assert row["order"]["status"] == "filled"
    assert [p["outcome"] for p in row["posts"]] == ["accepted", "duplicate"]
    assert [p["outcome"] for p in row["patches"]] == ["refused:404"]
    assert raw.get_all_positions()[0]["qty"] == "3", "positions are not hidden"
    sim.advance(8.0 - sim.broker.t() + order.created_mono)
    assert raw.get_order_by_id(order.id)["status"] == "filled"
    assert raw.get_order_by_client_id("nf-1")["id"] == order.id
    assert [o["id"] for o in raw.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL))] == [
        order.id
    ]
    assert len(sim.handle("GET", "/v2/account/activities/FILL").json()) == 1


def test_not_found_lag_off_and_other_orders_are_visible_at_once() -> None:
    """not_found_lag_rate=0: an order reads at once after the POST."""
    sim = flat_sim()
    placed = sim.client.submit_order(market(coid="v-1"))
    assert sim.client.get_order_by_id(placed.id).client_order_id == "v-1"


# ------------------------------------------------------------------------------ duplicates
def test_duplicate_message_variant_spells_client_order_id_differently() -> None:
    """duplicate_message_variant_rate=1: a duplicate POST is 422 40010001 "client order id must
    be unique"; recorded as a duplicate; nothing new created. Off: Alpaca's usual spelling."""
    sim = flat_sim(duplicate_message_variant_rate=1.0)
    sim.client.submit_order(market(coid="d-1"))
    err = api_error(lambda: sim.client.submit_order(market(coid="d-1")))
    assert (err.status_code, err.code, err.message) == (
        422,
        40010001,
        "client order id must be unique",
    )
    resp = sim.handle("POST", "/v2/orders", order_body(client_order_id="d-1"))
    assert resp.fault_name == "duplicate_message_variant"
    assert len(sim.broker.orders) == 1
    (row,) = sim.handle("GET", "/_sim/ledger").json()["orders"]
    assert [p["outcome"] for p in row["posts"]] == ["accepted", "duplicate", "duplicate"]
    sim.broker.set_faults(CALM)
    err = api_error(lambda: sim.client.submit_order(market(coid="d-1")))
    assert err.message == "client_order_id must be unique"


def test_duplicate_refused_as_funds_while_the_original_is_open() -> None:
    """duplicate_refused_as_funds_rate=1: a duplicate of a still-open order is 403 insufficient
    buying power (funds come first; the live order holds them); nothing is created; once the
    original is done the duplicate is the usual 422. Off: always the 422."""
    sim = flat_sim(duplicate_refused_as_funds_rate=1.0)
    first = sim.client.submit_order(resting(coid="f-1"))
    sim.advance(1)
    err = api_error(lambda: sim.client.submit_order(resting(coid="f-1")))
    assert (err.status_code, err.code, err.message) == (403, 40310000, "insufficient buying power")
    body = json.loads(str(err))
    assert set(body) == {"code", "message", "buying_power", "cost_basis"}
    assert Decimal(body["buying_power"]) < Decimal(body["cost_basis"]) == Decimal("475")
    assert sim.handle("POST", "/v2/orders", order_body(client_order_id="f-1")).fault_name == (
        "duplicate_refused_as_funds"
    )
    assert list(sim.broker.orders) == [str(first.id)]
    sim.client.cancel_order_by_id(first.id)
    run_until(sim, lambda: sim.broker.orders[str(first.id)].status == "canceled")
    err = api_error(lambda: sim.client.submit_order(resting(coid="f-1")))
    assert (err.status_code, err.message) == (422, "client_order_id must be unique")
    (row,) = sim.handle("GET", "/_sim/ledger").json()["orders"]
    assert [p["outcome"] for p in row["posts"]] == [
        "accepted",
        "refused:403",
        "refused:403",
        "duplicate",
    ]
    off = flat_sim()
    off.client.submit_order(resting(coid="f-1"))
    assert api_error(lambda: off.client.submit_order(resting(coid="f-1"))).status_code == 422


# ------------------------------------------------------------------------------ positions
def test_position_long_lag_hides_an_execution_for_longer() -> None:
    """position_long_lag_rate=1: positions show an execution only position_long_lag_seconds
    (plus position_lag_seconds) after it; the ledger has it at once."""
    sim = flat_sim(
        position_long_lag_rate=1.0, position_long_lag_seconds=5.0, position_lag_seconds=0.5
    )
    order = order_of(sim, sim.client.submit_order(market(qty=4)))
    run_until(sim, lambda: order.status == "filled")
    fill_t = order.executions[0].mono
    sim.advance(fill_t + 5.4 - sim.broker.t())
    assert sim.client.get_all_positions() == []
    assert api_error(lambda: sim.client.get_open_position("AAPL")).status_code == 404
    assert sim.handle("GET", "/_sim/ledger").json()["positions"]["AAPL"]["qty"] == "4"
    sim.advance(0.11)
    assert sim.client.get_open_position("AAPL").qty == "4"


def test_position_long_lag_is_per_execution_and_a_later_visible_entry_wins() -> None:
    """With the first execution long-lagged and the second not, the position shows nothing,
    then both at once when the second becomes visible (positions are cumulative)."""
    seed = next(
        s
        for s in range(200)
        if FaultRng(s).chance_for("position_long_lag", 0.5, 1)
        and not FaultRng(s).chance_for("position_long_lag", 0.5, 2)
    )
    sim = flat_sim(seed=seed, position_long_lag_rate=0.5, position_long_lag_seconds=5.0)
    first = sim.broker.submit(order_request(qty=Decimal(2)))
    run_until(sim, lambda: first.status == "filled")
    sim.advance(1)
    assert sim.handle("GET", "/v2/positions").json() == []
    second = sim.broker.submit(order_request(qty=Decimal(3)))
    run_until(sim, lambda: second.status == "filled")
    assert [p["qty"] for p in sim.handle("GET", "/v2/positions").json()] == ["5"]
    off = flat_sim(seed=seed)
    done = off.broker.submit(order_request(qty=Decimal(2)))
    run_until(off, lambda: done.status == "filled")
    assert [p["qty"] for p in off.handle("GET", "/v2/positions").json()] == ["2"]


# ------------------------------------------------------------------------------ trickle
class Deadline(tuple[float, float]):
    """A (connect, read) timeout carrying the request's total deadline, as fillguard sends it."""

    total_seconds: float

    def __new__(cls, connect: float, read: float, total_seconds: float) -> Deadline:
        self = super().__new__(cls, (connect, read))
        self.total_seconds = total_seconds
        return self


def test_trickle_takes_a_byte_per_interval_and_beats_a_per_read_timeout() -> None:
    """trickle_rate=1: the answer's body takes len(body) * trickle_seconds_per_byte of fake
    time; a per-read timeout never fires on it, however long it takes in all."""
    sim = flat_sim(trickle_rate=1.0, trickle_seconds_per_byte=0.5)
    resp = sim.handle("GET", "/v2/clock")
    assert (resp.fault_name, resp.trickle_seconds) == ("trickle", 0.5)
    with_timeout(sim.client, 3.0)
    before = sim.clock.monotonic()
    account = sim.client.get_account()
    took = sim.clock.monotonic() - before
    size = len(sim.handle("GET", "/v2/account").body)
    assert account.status == "ACTIVE"
    assert took == pytest.approx(size * 0.5)
    assert took > 3.0 * 10


def test_trickle_past_the_total_deadline_is_a_read_timeout_after_applying() -> None:
    """A timeout with total_seconds ends a trickle at the deadline with ReadTimeout; the
    request was applied (the order exists)."""
    sim = flat_sim(trickle_rate=1.0, trickle_seconds_per_byte=0.5)
    session = sim.client._session
    before = sim.clock.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        session.post(
            f"{URL}/v2/orders",
            json=order_body(client_order_id="t-1"),
            headers=SDK_AUTH,
            timeout=Deadline(3.05, 3.0, total_seconds=10.0),
        )
    assert sim.clock.monotonic() - before == pytest.approx(10.0)
    assert sim.broker.by_client_id.keys() == {"t-1"}
    fast = session.get(
        f"{URL}/v2/clock", headers=SDK_AUTH, timeout=Deadline(3.05, 3.0, total_seconds=1000.0)
    )
    assert fast.json()["is_open"] is True


def test_total_deadline_also_bounds_a_plain_delay_and_the_per_read_rule_stays() -> None:
    """Without trickle, a latency past total_seconds times out at the deadline; a latency past
    the read timeout still times out at the read timeout, whichever comes first."""
    sim = flat_sim(latency=Latency("fixed", 12.0, 12.0))
    session = sim.client._session
    for timeout, waited in (
        (Deadline(3.05, 20.0, total_seconds=10.0), 10.0),
        (Deadline(3.05, 5.0, total_seconds=10.0), 5.0),
        ((3.05, 5.0), 5.0),
    ):
        before = sim.clock.monotonic()
        with pytest.raises(requests.exceptions.ReadTimeout):
            session.get(f"{URL}/v2/clock", headers=SDK_AUTH, timeout=timeout)
        assert sim.clock.monotonic() - before == pytest.approx(waited)
    before = sim.clock.monotonic()
    session.get(
        f"{URL}/v2/clock", headers=SDK_AUTH, timeout=Deadline(3.05, 20.0, total_seconds=13.0)
    )
    assert sim.clock.monotonic() - before == pytest.approx(12.0)


def test_trickle_off_answers_at_once() -> None:
    """trickle_rate=0: no trickle time at all."""
    sim = flat_sim()
    resp = sim.handle("GET", "/v2/account")
    assert (resp.trickle_seconds, resp.fault_name) == (0.0, None)
    before = sim.clock.monotonic()
    sim.client.get_account()
    assert sim.clock.monotonic() == before


# ------------------------------------------------------------------------------ done_for_day
def test_done_for_day_parks_a_gtc_order_then_it_resumes_and_fills() -> None:
    """done_for_day_rate=1: a routed open GTC order goes done_for_day after
    done_for_day_after_seconds (no fills while so, even when the price crosses), then after
    done_for_day_seconds resumes (event new) and fills; day orders are untouched."""
    sim = flat_sim(done_for_day_rate=1.0, done_for_day_after_seconds=1.0, done_for_day_seconds=2.0)
    gtc = order_of(sim, sim.client.submit_order(resting(coid="g-1")))
    day = order_of(sim, sim.client.submit_order(resting(coid="d-1", tif=TimeInForce.DAY)))
    sim.advance(1.05)
    assert sim.client.get_order_by_client_id("g-1").status == "done_for_day"
    assert day.status == "new"
    sim.broker.set_price("AAPL", Decimal(94))
    sim.advance(0.5)
    assert day.status == "filled"
    assert gtc.status == "done_for_day"
    assert not gtc.executions, "no fills while done_for_day"
    run_until(sim, lambda: gtc.status == "filled")
    events = [e.event for e in events_of(sim.broker, gtc.id)]
    assert events == ["accepted", "pending_new", "new", "done_for_day", "new", "fill"]
    resumed = next(e for e in events_of(sim.broker, gtc.id) if e.event == "new" and e.mono > 1)
    assert resumed.mono - events_of(sim.broker, gtc.id)[3].mono == pytest.approx(2.0)
    wire_events = [m["data"] for m in sim.handle("GET", "/_sim/events").json()]
    for data in wire_events:
        TradeUpdate(**data)
    assert "done_for_day" in {d["event"] for d in wire_events}
    check_ledger(sim.broker)


def test_done_for_day_keeps_partial_shares_and_a_cancel_is_accepted() -> None:
    """A partially filled GTC order keeps its shares through done_for_day and resumes as
    partially_filled (event new); a cancel while done_for_day ends it canceled."""
    config = BrokerConfig(
        price_volatility=0.0,
        initial_prices=FLAT.initial_prices,
        partial_gap=Latency("fixed", 0.8, 0.8),
    )
    sim = flat_sim(
        config=config,
        partial_fill_rate=1.0,
        max_partial_fills=4,
        done_for_day_rate=1.0,
        done_for_day_seconds=2.0,
    )
    orders = []
    for _i in range(6):
        order = sim.broker.submit(order_request(qty=Decimal(40), time_in_force="gtc"))
        orders.append(order)
    sim.advance(1.5)
    parked = [o for o in orders if o.status == "done_for_day" and o.executions]
    assert parked, "some order was parked with shares filled"
    shares = {o.id: o.filled_qty for o in parked}
    sim.advance(0.5)
    assert {o.id: o.filled_qty for o in parked} == shares
    sim.client.cancel_order_by_id(parked[0].id)
    assert parked[0].status == "pending_cancel"
    run_until(sim, lambda: all(o.status in ("filled", "canceled") for o in orders))
    assert parked[0].status == "canceled"
    assert parked[0].filled_qty == shares[parked[0].id]
    for order in parked[1:]:
        resume = [e for e in events_of(sim.broker, order.id) if e.event == "new"][-1]
        assert resume.order["status"] == "partially_filled"
        assert order.status == "filled"
    check_ledger(sim.broker)


def test_done_for_day_off_and_close_open_session() -> None:
    """done_for_day_rate=0: GTC orders stay new; /_sim/close_session parks them and
    /_sim/open_session resumes them."""
    sim = flat_sim()
    gtc = order_of(sim, sim.client.submit_order(resting(coid="g-1")))
    sim.advance(10)
    assert gtc.status == "new"
    assert sim.handle("POST", "/_sim/close_session").json() == {"expired": 0, "done_for_day": 1}
    assert sim.client.get_order_by_id(gtc.id).status == "done_for_day"
    sim.broker.set_price("AAPL", Decimal(90))
    sim.advance(5)
    assert not gtc.executions
    assert sim.handle("POST", "/_sim/open_session").json() == {"resumed": 1}
    run_until(sim, lambda: gtc.status == "filled")
    check_ledger(sim.broker)


# ------------------------------------------------------------------------------ timestamps
def _stamps(payload: Any) -> list[str]:
    keys = (
        "created_at",
        "updated_at",
        "submitted_at",
        "filled_at",
        "timestamp",
        "transaction_time",
    )
    if isinstance(payload, list):
        return [s for item in payload for s in _stamps(item)]
    if not isinstance(payload, dict):
        return []
    out = [v for k, v in payload.items() if k in keys and isinstance(v, str)]
    for value in payload.values():
        if isinstance(value, dict | list):
            out += _stamps(value)
    return out


NANOS = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$"
MICRO = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$"


@pytest.mark.parametrize(
    ("start", "offset"),
    [
        (datetime(2026, 1, 5, 14, 30, tzinfo=UTC), "-05:00"),
        (datetime(2026, 7, 6, 13, 30, tzinfo=UTC), "-04:00"),
    ],
)
def test_timestamp_styles_in_rest_and_stream_and_micro_in_the_ledger(
    start: datetime, offset: str
) -> None:
    """timestamp_style nanos/offset rewrite every REST and stream timestamp (New York's
    offset in winter and summer); the SDK parses them to the same instant; the ledger stays
    micro."""
    import re

    clock = FakeClock(start)
    broker = Broker(clock=clock, seed=1, config=FLAT)
    api = SimApi(broker, key_id=KEY, secret_key=SECRET, rate_limit=None)
    raw = in_process_client(api, raw_data=True)
    order = raw.submit_order(market(coid="ts-1"))
    clock.advance(1)
    broker.advance()
    truth = api.handle(_get("/_sim/ledger")).json()["orders"][0]["order"]
    for style, pattern in (
        ("nanos", NANOS),
        ("offset", rf"^\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{9}}{offset}$"),
        ("micro", MICRO),
    ):
        broker.set_faults(profile_from({"timestamp_style": style}))
        got = raw.get_order_by_id(order["id"])
        stamps = (
            _stamps(got)
            + _stamps(raw.get_orders())
            + _stamps(api.handle(_get("/v2/account/activities/FILL")).json())
        )
        clock_stamp = raw.get_clock()["timestamp"]
        if style == "micro":
            # The clock is written as Alpaca writes it: New York time with its offset.
            assert re.match(rf"^.*\.\d{{9}}{offset}$", clock_stamp), clock_stamp
        else:
            stamps.append(clock_stamp)
        assert stamps
        assert all(re.match(pattern, s) for s in stamps), (style, stamps)
        for key in ("created_at", "filled_at"):
            assert parse_timestamp(got[key]) == parse_timestamp(truth[key])
        assert Order(**got).filled_at == Order(**truth).filled_at  # the same instant
        ledger = api.handle(_get("/_sim/ledger")).json()
        assert all(re.match(MICRO, s) for s in _stamps(ledger["orders"]))
        broker.submit(order_request())  # an event written in this style
        message = broker.events[-1].message()
        assert all(re.match(pattern, s) for s in _stamps(message["data"]))
        TradeUpdate(**message["data"])
    check_ledger_json(api)


def _get(path: str) -> Any:
    from tests.sim_support import request

    return request("GET", path, headers={} if path.startswith("/_sim") else None)


def test_timestamp_style_mixed_draws_per_response() -> None:
    """timestamp_style=mixed: each response is written in one of the three styles, all seen."""
    import re

    sim = flat_sim(timestamp_style="mixed")
    order = sim.broker.submit(order_request())
    styles = set()
    for _ in range(40):
        stamps = _stamps(sim.handle("GET", f"/v2/orders/{order.id}").json())
        kinds = {
            "micro" if re.match(MICRO, s) else "nanos" if re.match(NANOS, s) else "offset"
            for s in stamps
        }
        assert len(kinds) == 1, "one style per response"
        styles |= kinds
    assert styles == {"micro", "nanos", "offset"}


# ------------------------------------------------------------------------------ validation
NEW_KNOBS: dict[str, Any] = {
    "half_update_rate": 0.5,
    "half_update_seconds": 0.2,
    "lookup_refused_rate": 0.5,
    "not_found_lag_rate": 0.5,
    "not_found_lag_seconds": 3.0,
    "duplicate_message_variant_rate": 0.5,
    "duplicate_refused_as_funds_rate": 0.5,
    "position_long_lag_rate": 0.5,
    "position_long_lag_seconds": 2.0,
    "trickle_rate": 0.5,
    "trickle_seconds_per_byte": 0.01,
    "done_for_day_rate": 0.5,
    "done_for_day_after_seconds": 0.5,
    "done_for_day_seconds": 1.0,
    "external_replace_rate": 0.5,
    "external_replace_after_seconds": 0.3,
    "timestamp_style": "mixed",
}


@pytest.mark.parametrize("knob", sorted(NEW_KNOBS))
def test_new_knobs_validate_and_round_trip(knob: str) -> None:
    """Each new knob takes a good value (and round-trips through a dict); a bad one is a
    ValueError naming it, and PUT /_sim/faults answers 422 naming it."""
    profile = profile_from({knob: NEW_KNOBS[knob]})
    assert getattr(profile, knob) == NEW_KNOBS[knob]
    assert profile_from(profile.to_dict()) == profile
    assert not profile.is_calm
    if knob == "timestamp_style":
        bad: list[Any] = ["millis", 5, None, "MICRO"]
    elif knob.endswith("_rate"):
        bad = [1.5, -0.1, float("nan"), "0.1", True]
    else:
        bad = [-1, float("inf"), float("nan"), "1", True]
    sim = flat_sim()
    for value in bad:
        with pytest.raises(ValueError, match=knob):
            FaultProfile(**{knob: value})
        resp = sim.handle("PUT", "/_sim/faults", json.dumps({knob: value}, allow_nan=True))
        assert resp.status == 422
        assert knob in resp.json()["message"]
    assert sim.broker.faults.is_calm


def test_profiles_carry_the_new_knobs() -> None:
    """calm has none; rough only half_update, the duplicate message variant and nanos;
    hostile every one."""
    assert FaultProfile(name="calm") == CALM
    assert (ROUGH.half_update_rate, ROUGH.duplicate_message_variant_rate) == (0.05, 0.5)
    assert ROUGH.timestamp_style == "nanos"
    for knob in NEW_KNOBS:
        if knob not in ("half_update_rate", "duplicate_message_variant_rate", "timestamp_style"):
            assert getattr(ROUGH, knob) == getattr(CALM, knob), knob
        if knob.endswith("_rate"):
            assert getattr(HOSTILE, knob) > 0, knob
    assert HOSTILE.timestamp_style == "mixed"
    assert HOSTILE.not_found_lag_seconds == 8.0
