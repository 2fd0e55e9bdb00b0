"""Replace (PATCH /v2/orders/{id}) through alpaca-py: pending_replace, replaced, the races."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.models import Order, TradeUpdate
from alpaca.trading.requests import LimitOrderRequest, ReplaceOrderRequest

from fillguard.sim.core import BrokerConfig, ReplaceRequest, SimError
from fillguard.sim.faults import Latency
from tests.sim_support import (
    FLAT,
    Sim,
    check_ledger,
    check_ledger_json,
    events_of,
    flat_sim,
    order_request,
    run_until,
)


def limit(price: float, qty: float = 5, coid: str | None = None, tif: str = "gtc") -> Any:
    """An SDK limit buy of AAPL (the flat price is 100)."""
    return LimitOrderRequest(
        symbol="AAPL",
        qty=qty,
        side=OrderSide.BUY,
        time_in_force=TimeInForce(tif),
        limit_price=price,
        client_order_id=coid,
    )


def fixed(seconds: float) -> Latency:
    """A fixed latency."""
    return Latency("fixed", seconds, seconds)


def config(fill: float = 0.05, gap: float = 0.05, replace: float = 0.1) -> BrokerConfig:
    """Flat prices with fill, partial-gap and replace latencies fixed."""
    return BrokerConfig(
        price_volatility=0.0,
        initial_prices=FLAT.initial_prices,
        fill_latency=fixed(fill),
        partial_gap=fixed(gap),
        replace_latency=fixed(replace),
    )


def patch(sim: Sim, order_id: str, body: Any) -> Any:
    """PATCH /v2/orders/{id} through api.handle."""
    return sim.handle("PATCH", f"/v2/orders/{order_id}", body)


def test_replace_through_the_sdk_pending_replace_then_replaced_and_the_new_order_fills() -> None:
    """replace_order_by_id returns the new order (accepted, replaces = old id, the rest of the
    qty, a minted client_order_id); the old goes pending_replace, then replaced with
    replaced_by; the new one routes and fills; events and ledger show the chain."""
    sim = flat_sim()
    old = sim.client.submit_order(limit(95, coid="orig"))
    sim.advance(1)
    new = sim.client.replace_order_by_id(old.id, ReplaceOrderRequest(limit_price=96))
    assert isinstance(new, Order)
    assert new.id != old.id
    assert str(new.replaces) == str(old.id)
    assert (new.status, new.qty, new.limit_price) == ("accepted", "5", "96")
    assert uuid.UUID(new.client_order_id).version == 4
    assert sim.client.get_order_by_id(old.id).status == "pending_replace"
    assert sim.client.get_order_by_id(new.id).status == "accepted"
    run_until(sim, lambda: sim.broker.orders[str(new.id)].status == "new")
    got_old = sim.client.get_order_by_id(old.id)
    assert got_old.status == "replaced"
    assert str(got_old.replaced_by) == str(new.id)
    assert got_old.replaced_at is not None
    sim.broker.set_price("AAPL", Decimal(96))
    run_until(sim, lambda: sim.broker.orders[str(new.id)].status == "filled")
    assert Decimal(sim.client.get_order_by_id(new.id).filled_avg_price) <= 96
    assert [e.event for e in events_of(sim.broker, str(old.id))] == [
        "accepted",
        "pending_new",
        "new",
        "pending_replace",
        "replaced",
    ]
    assert [e.event for e in events_of(sim.broker, str(new.id))] == [
        "accepted",
        "pending_new",
        "new",
        "fill",
    ]
    for message in sim.handle("GET", "/_sim/events").json():
        TradeUpdate(**message["data"])
    ledger = sim.handle("GET", "/_sim/ledger").json()
    rows = {row["order"]["id"]: row for row in ledger["orders"]}
    assert rows[str(old.id)]["order"]["replaced_by"] == str(new.id)
    assert rows[str(new.id)]["order"]["replaces"] == str(old.id)
    (p,) = rows[str(old.id)]["patches"]
    assert (p["body"], p["outcome"], p["new_order_id"], p["source"]) == (
        {"limit_price": 96.0},
        "accepted",
        str(new.id),
        "client",
    )
    assert sim.broker.positions["AAPL"].qty == 5
    check_ledger(sim.broker)
    check_ledger_json(sim.api)


def test_replace_with_every_field_given() -> None:
    """qty, limit_price, time_in_force and client_order_id given: the new order has them."""
    sim = flat_sim()
    old = sim.broker.submit(
        order_request(type="limit", limit_price=Decimal(95), time_in_force="gtc")
    )
    sim.advance(1)
    resp = patch(
        sim,
        old.id,
        {"qty": 2, "limit_price": "94.5", "time_in_force": "day", "client_order_id": "mine"},
    )
    assert resp.status == 200, resp.body
    body = resp.json()
    assert (body["qty"], body["limit_price"], body["time_in_force"], body["client_order_id"]) == (
        "2",
        "94.5",
        "day",
        "mine",
    )
    assert sim.client.get_order_by_client_id("mine").replaces is not None


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"qty": "0"}, 422, "qty must be > 0"),
        ({"qty": "abc"}, 422, "invalid qty"),
        ({"limit_price": "95.001"}, 422, "sub-penny"),
        ({"limit_price": -1}, 422, "limit_price must be > 0"),
        ({"stop_price": 90}, 422, "stop_price"),
        ({"trail": 1}, 422, "trail"),
        ({"time_in_force": "week"}, 422, "invalid time_in_force"),
        ({"qty": "1.5"}, 422, "fractional orders must be DAY orders"),
        ({"client_order_id": ""}, 422, "client_order_id"),
        ({"client_order_id": "taken"}, 422, "client_order_id must be unique"),
        ({"qty": 10**8}, 403, "insufficient buying power"),
        (b"{nope", 422, "request body format is invalid"),
        (b"[1]", 422, "request body format is invalid"),
    ],
)
def test_replace_validates_like_a_submit(body: Any, status: int, message: str) -> None:
    """A bad PATCH gets Alpaca's 422 (or 403 for funds); nothing changes; it is recorded."""
    sim = flat_sim()
    sim.broker.submit(order_request(client_order_id="taken", type="limit", limit_price=Decimal(90)))
    old = sim.broker.submit(
        order_request(type="limit", limit_price=Decimal(95), time_in_force="gtc")
    )
    sim.advance(1)
    resp = patch(sim, old.id, body)
    assert resp.status == status
    assert message in resp.json()["message"]
    assert old.status == "new"
    assert len(sim.broker.orders) == 2
    (p,) = sim.handle("GET", "/_sim/ledger").json()["orders"][1]["patches"]
    assert p["outcome"] in (f"refused:{status}", "duplicate")


def test_replace_refuses_terminal_pending_unknown_and_market_with_limit() -> None:
    """Terminal: 422 already in state; pending_cancel/pending_replace: 422 order is pending;
    unknown: 404; a limit price on a market order: 422."""
    sim = flat_sim()
    filled = sim.broker.submit(order_request())
    canceling = sim.broker.submit(order_request(type="limit", limit_price=Decimal(90)))
    replacing = sim.broker.submit(order_request(type="limit", limit_price=Decimal(90)))
    market = sim.broker.submit(order_request(time_in_force="gtc", qty=Decimal(3)))
    assert patch(sim, market.id, {"limit_price": "99"}).json()["message"] == (
        "market orders require no stop or limit price"
    )
    run_until(sim, lambda: filled.status == "filled")
    sim.broker.cancel(canceling.id)
    assert patch(sim, replacing.id, {"limit_price": "91"}).status == 200
    for order, message in (
        (filled, 'order is already in "filled" state'),
        (canceling, "order is pending cancel"),
        (replacing, "order is pending replace"),
    ):
        resp = patch(sim, order.id, {"limit_price": "92"})
        assert (resp.status, resp.json()) == (422, {"code": 42210000, "message": message})
    with pytest.raises(APIError) as err:
        sim.client.replace_order_by_id(str(uuid.uuid4()))
    assert err.value.status_code == 404
    assert sim.handle("DELETE", f"/v2/orders/{replacing.id}").status == 422, "no cancel now"
    held = replacing.replacing_with
    assert held is not None
    resp = patch(sim, held, {"limit_price": "93"})
    assert (resp.status, resp.json()["message"]) == (
        422,
        "order is pending until the order it replaces is replaced",
    )
    check_ledger(sim.broker)


def test_a_fill_completing_the_original_first_cancels_the_replacement() -> None:
    """The original fills before the replace completes: it stays filled, the replacement is
    canceled (event canceled) and never fills."""
    sim = flat_sim(config=config(fill=0.1, replace=1.0))
    old = sim.broker.submit(
        order_request(type="limit", limit_price=Decimal(101), time_in_force="gtc")
    )
    run_until(sim, lambda: old.status == "new")
    new = sim.client.replace_order_by_id(old.id, ReplaceOrderRequest(qty=2))
    run_until(sim, lambda: sim.broker.next_due() is None)
    assert old.status == "filled"
    replacement = sim.broker.orders[str(new.id)]
    assert replacement.status == "canceled"
    assert not replacement.executions
    assert [e.event for e in events_of(sim.broker, replacement.id)] == ["accepted", "canceled"]
    assert old.replaced_by is None
    assert sim.broker.buying_power() == sim.broker.cash
    check_ledger(sim.broker)


def test_a_fill_may_land_during_pending_replace_and_the_original_keeps_its_shares() -> None:
    """A partial fill lands while pending_replace (status stays pending_replace); the original
    is then replaced with those shares, and the replacement (no qty given) takes only the rest."""
    sim = flat_sim(
        config=config(fill=0.05, gap=1.0, replace=0.5),
        partial_fill_rate=1.0,
        max_partial_fills=2,
    )
    old = sim.broker.submit(
        order_request(type="limit", qty=Decimal(10), limit_price=Decimal(101), time_in_force="gtc")
    )
    run_until(sim, lambda: old.status == "new")
    new_id = patch(sim, old.id, {}).json()["id"]
    run_until(sim, lambda: bool(old.executions))
    assert old.status == "pending_replace"
    assert events_of(sim.broker, old.id)[-1].event == "partial_fill"
    shares = old.filled_qty
    assert 0 < shares < 10
    run_until(sim, lambda: old.status == "replaced")
    new = sim.broker.orders[new_id]
    assert new.qty == 10 - shares
    run_until(sim, lambda: new.status == "filled")
    sim.advance(5)
    assert old.filled_qty == shares, "no fill lands after replaced"
    assert sim.broker.positions["AAPL"].qty == 10
    check_ledger(sim.broker)


def test_buying_power_counts_the_original_until_replaced_then_the_replacement() -> None:
    """While pending_replace only the original holds buying power; once replaced only the
    replacement does; funds are checked without the original's hold."""
    sim = flat_sim()
    cash = sim.broker.cash
    old = sim.broker.submit(
        order_request(type="limit", qty=Decimal(100), limit_price=Decimal(95), time_in_force="gtc")
    )
    sim.advance(1)
    assert sim.broker.buying_power() == cash - 9500
    near_all = int(cash / 96) - 1
    resp = patch(sim, old.id, {"qty": near_all, "limit_price": "96"})
    assert resp.status == 200, "the original's hold is released by the replace"
    assert sim.broker.buying_power() == cash - 9500
    run_until(sim, lambda: old.status == "replaced")
    assert sim.broker.buying_power() == (cash - near_all * 96).quantize(Decimal("0.01"))
    check_ledger(sim.broker)


def test_replace_of_an_unrouted_or_done_for_day_order() -> None:
    """An accepted order replaced before routing never routes itself; a done_for_day order
    can be replaced and the replacement routes."""
    sim = flat_sim()
    unrouted = sim.broker.submit(
        order_request(type="limit", limit_price=Decimal(95), time_in_force="gtc")
    )
    first = sim.broker.replace(unrouted.id, ReplaceRequest(limit_price=Decimal(96)))
    run_until(sim, lambda: first.status == "new")
    assert [e.event for e in events_of(sim.broker, unrouted.id)] == [
        "accepted",
        "pending_replace",
        "replaced",
    ]
    sim.broker.close_session()
    assert first.status == "done_for_day"
    second = sim.broker.replace(first.id, ReplaceRequest(qty=Decimal(1)))
    run_until(sim, lambda: second.status == "new")
    assert first.status == "replaced"
    check_ledger(sim.broker)


def test_canceling_the_replacement_while_pending_ends_the_chain_canceled() -> None:
    """The client cancels the replacement while the original is pending_replace: the original
    is still replaced, and the replacement ends canceled without routing."""
    sim = flat_sim()
    old = sim.broker.submit(
        order_request(type="limit", limit_price=Decimal(95), time_in_force="gtc")
    )
    sim.advance(1)
    new = sim.broker.replace(old.id, ReplaceRequest(limit_price=Decimal(96)))
    sim.client.cancel_order_by_id(new.id)
    run_until(sim, lambda: sim.broker.next_due() is None)
    assert (old.status, new.status) == ("replaced", "canceled")
    assert "pending_new" not in [e.event for e in events_of(sim.broker, new.id)]
    check_ledger(sim.broker)


def test_stale_read_of_a_replaced_order_shows_an_earlier_version() -> None:
    """stale_read keeps working across replace: the old order reads as it was a moment ago."""
    sim = flat_sim(stale_read_seconds=0.3)
    old = sim.broker.submit(
        order_request(type="limit", limit_price=Decimal(95), time_in_force="gtc")
    )
    sim.advance(1)
    sim.broker.replace(old.id, ReplaceRequest(limit_price=Decimal(96)))
    run_until(sim, lambda: old.status == "replaced")
    sim.broker.set_faults(sim.broker.faults.with_(stale_read_rate=1.0))
    resp = sim.handle("GET", f"/v2/orders/{old.id}")
    assert (resp.fault_name, resp.json()["status"]) == ("stale_read", "new")
    sim.advance(0.3)
    assert sim.handle("GET", f"/v2/orders/{old.id}").json()["status"] == "replaced"


def test_external_replace_moves_a_resting_limit_to_the_price_and_it_fills() -> None:
    """external_replace_rate=1: another client replaces a resting limit after
    external_replace_after_seconds with the same remaining qty at the current price; the
    client can follow replaced_by to the fill. Off: the order rests."""
    sim = flat_sim(external_replace_rate=1.0, external_replace_after_seconds=0.5)
    old = sim.client.submit_order(limit(95, coid="mine"))
    sim.advance(0.4)
    assert sim.client.get_order_by_id(old.id).status == "new"
    run_until(sim, lambda: sim.broker.orders[str(old.id)].status == "replaced")
    got = sim.client.get_order_by_id(old.id)
    new = sim.client.get_order_by_id(got.replaced_by)
    assert (new.qty, new.limit_price, str(new.replaces)) == ("5", "100", str(old.id))
    run_until(sim, lambda: sim.broker.orders[str(new.id)].status == "filled")
    assert sim.client.get_order_by_id(new.id).filled_qty == "5"
    (row,) = [r for r in sim.handle("GET", "/_sim/ledger").json()["orders"] if r["patches"]]
    assert [(p["source"], p["outcome"], p["new_order_id"]) for p in row["patches"]] == [
        ("external", "accepted", str(new.id))
    ]
    check_ledger(sim.broker)
    off = flat_sim()
    resting = off.client.submit_order(limit(95))
    off.advance(5)
    assert off.broker.orders[str(resting.id)].status == "new"


def test_broker_replace_raises_sim_errors() -> None:
    """The broker API raises SimError directly (404 unknown)."""
    sim = flat_sim()
    with pytest.raises(SimError) as err:
        sim.broker.replace("nope", ReplaceRequest())
    assert err.value.status == 404


def test_every_patch_received_is_in_the_ledger_applied_or_not() -> None:
    """A PATCH lost to a 5xx fault is recorded (fault:<status>) as an applied one is; a PATCH of
    an unknown order is kept under patches_without_order."""
    sim = flat_sim(http_error_rate=1.0)
    old = sim.broker.submit(
        order_request(type="limit", limit_price=Decimal(95), time_in_force="gtc")
    )
    resp = patch(sim, old.id, {"limit_price": "96"})
    assert resp.fault_name == "http_error"
    sim.broker.set_faults(sim.broker.faults.with_(http_error_rate=0.0))
    assert patch(sim, old.id, {"limit_price": "96"}).status == 200
    unknown = str(uuid.uuid4())
    assert patch(sim, unknown, {"qty": 1}).status == 404
    ledger = sim.handle("GET", "/_sim/ledger").json()
    outcomes = [p["outcome"] for p in ledger["orders"][0]["patches"]]
    assert outcomes == [f"fault:{resp.status}", "accepted"]
    assert [p["outcome"] for p in ledger["patches_without_order"][unknown]] == ["refused:404"]
