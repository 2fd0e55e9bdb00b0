"""Broker core examples: lifecycle, fills, limits, tif, positions, cancel race, errors, models."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from alpaca.trading.models import Order, TradeUpdate

from fillguard.clock import FakeClock
from fillguard.sim import wire
from fillguard.sim.core import Broker, BrokerConfig, SimError, split_qty
from fillguard.sim.faults import CALM, profile_from
from fillguard.sim.orders import SimPosition
from tests.sim_support import check_ledger, events_of, order_request

FLAT = BrokerConfig(
    price_volatility=0.0,
    initial_prices=(("AAPL", Decimal("100")), ("MSFT", Decimal("400"))),
)


def broker(seed: int = 7, config: BrokerConfig = FLAT, **knobs: Any) -> tuple[FakeClock, Broker]:
    """A broker with a flat price path and the given fault knobs."""
    clock = FakeClock()
    return clock, Broker(clock=clock, seed=seed, config=config, faults=profile_from(knobs))


def run(clock: FakeClock, b: Broker, seconds: float = 5.0) -> None:
    """Let ``seconds`` of fake time pass."""
    clock.advance(seconds)
    b.advance()


def test_market_order_lifecycle_one_event_per_transition() -> None:
    """A market order goes accepted -> pending_new -> new -> filled, one event per step."""
    clock, b = broker()
    order = b.submit(order_request(qty=Decimal(10)))
    assert order.status == "accepted"
    assert [e.event for e in b.events] == ["accepted"]
    run(clock, b)
    evs = events_of(b, order.id)
    assert [e.event for e in evs] == ["accepted", "pending_new", "new", "fill"]
    assert [e.order["status"] for e in evs] == ["accepted", "pending_new", "new", "filled"]
    fill = evs[-1]
    assert fill.qty == Decimal(10)
    assert fill.position_qty == Decimal(10)
    assert fill.price == order.filled_avg_price
    assert fill.execution_id == order.executions[0].execution_id
    uuid.UUID(fill.execution_id or "")
    uuid.UUID(order.id)
    assert order.status == "filled"
    assert order.filled_at is not None
    assert fill.price is not None
    assert Decimal(100) <= fill.price <= Decimal("100.05")  # adverse slippage, at most 5 bps
    assert all(e.execution_id is None for e in evs[:-1])
    check_ledger(b)


def test_partial_fills_carry_per_execution_values_and_cumulative_order() -> None:
    """With partial_fill_rate=1 an order fills in several executions; events carry each one."""
    clock, b = broker(partial_fill_rate=1.0, max_partial_fills=5)
    b.set_price("AAPL", Decimal(100))
    order = b.submit(order_request(qty=Decimal(100)))
    run(clock, b)
    evs = events_of(b, order.id)
    fills = [e for e in evs if e.event in ("partial_fill", "fill")]
    assert len(fills) >= 2
    assert [e.event for e in fills] == ["partial_fill"] * (len(fills) - 1) + ["fill"]
    assert len({e.execution_id for e in fills}) == len(fills)
    cum = Decimal(0)
    for ev, ex in zip(fills, order.executions, strict=True):
        cum += ex.qty
        assert (ev.qty, ev.price, ev.position_qty) == (ex.qty, ex.price, cum)
        assert ev.order["filled_qty"] == wire.num(cum)
        expected_avg = order.executions[: order.executions.index(ex) + 1]
        avg = sum((x.qty * x.price for x in expected_avg), Decimal(0)) / cum
        assert Decimal(ev.order["filled_avg_price"]) == avg.quantize(Decimal("1e-9")).normalize()
        assert ev.order["status"] == ("filled" if cum == 100 else "partially_filled")
    assert cum == order.qty == order.filled_qty
    check_ledger(b)


def test_limit_buy_rests_until_price_crosses_then_fills_at_limit_or_better() -> None:
    """A buy limit below the market rests as new, and fills at or below the limit once crossed."""
    clock, b = broker()
    order = b.submit(order_request(type="limit", limit_price=Decimal(95), time_in_force="gtc"))
    run(clock, b, 30)
    assert order.status == "new"
    assert not order.executions
    b.set_price("AAPL", Decimal("94.50"))
    run(clock, b, 2)
    assert order.status == "filled"
    assert order.executions[0].price <= Decimal(95)
    check_ledger(b)


def test_limit_sell_fills_at_limit_or_better() -> None:
    """A sell limit above the market fills at or above the limit when the price rises to it."""
    clock, b = broker()
    b.submit(order_request(qty=Decimal(5)))
    run(clock, b)
    order = b.submit(
        order_request(side="sell", type="limit", qty=Decimal(5), limit_price=Decimal(105))
    )
    run(clock, b, 10)
    assert order.status == "new"
    b.set_price("AAPL", Decimal(106))
    run(clock, b, 2)
    assert order.status == "filled"
    assert order.executions[0].price >= Decimal(105)
    assert b.positions["AAPL"].qty == 0
    check_ledger(b)


def test_marketable_limit_fills_at_once_never_worse_than_the_limit() -> None:
    """A limit at the market fills right after routing, capped at the limit despite slippage."""
    clock, b = broker()
    order = b.submit(order_request(type="limit", limit_price=Decimal(100)))
    run(clock, b, 1)
    assert order.status == "filled"
    assert order.executions[0].price == Decimal(100)


def test_ioc_limit_that_does_not_cross_is_canceled_without_fills() -> None:
    """An IOC limit away from the market is canceled right after routing."""
    clock, b = broker()
    order = b.submit(order_request(type="limit", limit_price=Decimal(90), time_in_force="ioc"))
    run(clock, b)
    assert [e.event for e in events_of(b, order.id)] == [
        "accepted",
        "pending_new",
        "new",
        "canceled",
    ]
    assert not order.executions
    check_ledger(b)


def test_ioc_with_partial_liquidity_fills_part_and_cancels_the_rest() -> None:
    """An IOC order that would fill in parts takes the first part and cancels the rest."""
    clock, b = broker(partial_fill_rate=1.0)
    order = b.submit(order_request(qty=Decimal(100), time_in_force="ioc"))
    run(clock, b)
    assert [e.event for e in events_of(b, order.id)][-2:] == ["partial_fill", "canceled"]
    assert order.status == "canceled"
    assert 0 < order.filled_qty < 100
    check_ledger(b)


def test_fok_fills_whole_in_one_execution_or_is_canceled() -> None:
    """FOK never fills partially: one execution for all, or canceled when it cannot fill."""
    clock, b = broker(partial_fill_rate=1.0)
    filled = b.submit(order_request(qty=Decimal(100), time_in_force="fok"))
    missed = b.submit(order_request(type="limit", limit_price=Decimal(50), time_in_force="fok"))
    run(clock, b)
    assert filled.status == "filled"
    assert len(filled.executions) == 1
    assert filled.executions[0].qty == 100
    assert missed.status == "canceled"
    assert not missed.executions
    check_ledger(b)


def test_fractional_qty_fills_exactly_including_partials() -> None:
    """Fractional quantities fill to the last of 9 decimals, also in parts."""
    clock, b = broker(partial_fill_rate=1.0)
    order = b.submit(order_request(qty=Decimal("0.123456789")))
    run(clock, b)
    assert order.status == "filled"
    assert sum((e.qty for e in order.executions), Decimal(0)) == Decimal("0.123456789")
    assert b.positions["AAPL"].qty == Decimal("0.123456789")
    assert wire.order_json(order)["filled_qty"] == "0.123456789"
    check_ledger(b)


def test_split_qty_sums_exactly() -> None:
    """split_qty returns positive pieces that sum exactly, whole shares for whole quantities."""
    import random

    rng = random.Random(1)
    for qty in (Decimal(1), Decimal(7), Decimal("0.000000003"), Decimal("2.5"), Decimal(1000)):
        for k in (2, 3, 4, 9):
            parts = split_qty(qty, k, rng)
            assert sum(parts, Decimal(0)) == qty
            assert all(p > 0 for p in parts)
            if qty >= k and qty == qty.to_integral_value():
                assert all(p == p.to_integral_value() for p in parts)


def test_long_position_average_entry_adds_and_reduces() -> None:
    """Adding to a long averages the entry price; reducing keeps it; closing resets to zero."""
    clock, b = broker()
    b.submit(order_request(type="limit", qty=Decimal(10), limit_price=Decimal(100)))
    run(clock, b)
    b.set_price("AAPL", Decimal(110))
    b.submit(order_request(type="limit", qty=Decimal(10), limit_price=Decimal(110)))
    run(clock, b)
    pos = b.positions["AAPL"]
    assert (pos.qty, pos.avg_entry_price) == (Decimal(20), Decimal(105))
    b.submit(order_request(side="sell", type="limit", qty=Decimal(5), limit_price=Decimal(110)))
    run(clock, b)
    assert (pos.qty, pos.avg_entry_price) == (Decimal(15), Decimal(105))
    b.submit(order_request(side="sell", type="limit", qty=Decimal(15), limit_price=Decimal(110)))
    run(clock, b)
    assert (pos.qty, pos.avg_entry_price) == (Decimal(0), Decimal(0))
    check_ledger(b)


def test_short_position_and_flip_across_orders() -> None:
    """A sell from flat opens a short; a resting buy filling later flips it long at its price."""
    clock, b = broker()
    resting = b.submit(
        order_request(type="limit", qty=Decimal(10), limit_price=Decimal(90), time_in_force="gtc")
    )
    b.submit(order_request(side="sell", type="limit", qty=Decimal(4), limit_price=Decimal(100)))
    run(clock, b)
    pos = b.positions["AAPL"]
    assert (pos.qty, pos.avg_entry_price) == (Decimal(-4), Decimal(100))
    b.submit(order_request(side="sell", type="limit", qty=Decimal(2), limit_price=Decimal(100)))
    run(clock, b)
    b.set_price("AAPL", Decimal(103))
    b.submit(order_request(side="sell", type="limit", qty=Decimal(3), limit_price=Decimal(103)))
    run(clock, b)
    assert pos.qty == Decimal(-9)
    assert pos.avg_entry_price == ((Decimal(600) + Decimal(309)) / 9).quantize(Decimal("1e-9"))
    b.set_price("AAPL", Decimal(90))
    run(clock, b)
    assert resting.status == "filled"
    assert (pos.qty, pos.avg_entry_price) == (Decimal(1), Decimal(90))
    assert resting.executions[0].position_qty == Decimal(1)
    check_ledger(b)


def test_position_apply_flip_within_one_execution() -> None:
    """SimPosition.apply: a fill larger than the position flips it at the fill price."""
    pos = SimPosition("AAPL", "x", Decimal(-5), Decimal(50))
    pos.apply("buy", Decimal(8), Decimal(40))
    assert (pos.qty, pos.avg_entry_price) == (Decimal(3), Decimal(40))
    pos.apply("sell", Decimal(3), Decimal(41))
    assert (pos.qty, pos.avg_entry_price) == (Decimal(0), Decimal(0))


def test_cancel_is_pending_then_canceled_after_the_latency() -> None:
    """Cancel gives pending_cancel at once and canceled only after the cancel latency."""
    clock, b = broker()
    order = b.submit(order_request(type="limit", limit_price=Decimal(90), time_in_force="gtc"))
    run(clock, b, 1)
    b.cancel(order.id)
    assert order.status == "pending_cancel"
    assert events_of(b, order.id)[-1].event == "pending_cancel"
    clock.advance(0.029)  # below the minimum cancel latency of 0.03 s
    b.advance()
    assert order.status == "pending_cancel"
    run(clock, b, 1)
    assert order.status == "canceled"
    assert order.canceled_at is not None
    assert [e.event for e in events_of(b, order.id)][-2:] == ["pending_cancel", "canceled"]
    with pytest.raises(SimError) as err:
        b.cancel(order.id)
    assert (err.value.status, err.value.code) == (422, 42210000)
    check_ledger(b)


def test_cancel_of_filled_or_unknown_order_is_refused() -> None:
    """Cancel of a filled order is 422 'already in filled state'; of an unknown one 404."""
    clock, b = broker()
    order = b.submit(order_request())
    run(clock, b)
    with pytest.raises(SimError) as err:
        b.cancel(order.id)
    assert err.value.body() == {"code": 42210000, "message": 'order is already in "filled" state'}
    with pytest.raises(SimError) as err:
        b.cancel(str(uuid.uuid4()))
    assert (err.value.status, err.value.code) == (404, 40410000)


def test_cancel_before_routing_never_fills() -> None:
    """An order canceled while accepted goes pending_cancel -> canceled and never routes."""
    clock, b = broker()
    order = b.submit(order_request())
    b.cancel(order.id)
    run(clock, b)
    assert [e.event for e in events_of(b, order.id)] == ["accepted", "pending_cancel", "canceled"]
    assert not order.executions
    check_ledger(b)


def race_run(seed: int, **knobs: Any) -> list[dict[str, Any]]:
    """Submit, cancel while filling, and return every event message."""
    clock, b = broker(seed=seed, cancel_race_rate=1.0, **knobs)
    orders = []
    for i in range(6):
        o = b.submit(order_request(qty=Decimal(50 + i), client_order_id=f"race-{i}"))
        orders.append(o)
        clock.advance(0.015 * i)
        b.advance()
        if o.status in ("accepted", "pending_new", "new", "partially_filled"):
            b.cancel(o.id)
    resting = b.submit(
        order_request(type="limit", limit_price=Decimal(80), time_in_force="gtc", qty=Decimal(3))
    )
    run(clock, b, 1)
    b.cancel(resting.id)
    run(clock, b, 5)
    check_ledger(b)
    for o in [*orders, resting]:
        assert o.status in ("filled", "canceled")
        evs = events_of(b, o.id)
        end = next(i for i, e in enumerate(evs) if e.event in ("filled", "fill", "canceled"))
        assert end == len(evs) - 1, "nothing after the terminal event"
    # A limit the price never reached cannot fill, race or not.
    assert resting.status == "canceled", "a limit far from the market never fills"
    raced = [
        o
        for o in orders
        if [e.event for e in events_of(b, o.id)][-2:] == ["pending_cancel", "fill"]
    ]
    assert raced, "a routed market order's fill lands during pending_cancel"
    return [e.message() for e in b.events]


def test_cancel_race_fill_lands_during_pending_cancel() -> None:
    """With cancel_race_rate=1 a fill lands in pending_cancel: filled, or canceled with a partial."""
    for seed in range(8):
        race_run(seed, partial_fill_rate=0.5)


def test_cancel_during_partial_fills_ends_filled_or_canceled_with_a_partial() -> None:
    """Canceling a partially filled order ends filled or canceled-with-partial, never beyond."""
    statuses = set()
    for seed in range(30):
        clock, b = broker(seed=seed, cancel_race_rate=0.5, partial_fill_rate=1.0)
        o = b.submit(order_request(qty=Decimal(100)))
        for _ in range(20):
            due = b.next_due()
            if o.status in ("partially_filled", "filled") or due is None:
                break
            clock.advance(max(0.0, due - b.t()) + 1e-9)
            b.advance()
        if o.status == "partially_filled":
            b.cancel(o.id)
            run(clock, b)
            statuses.add(o.status)
            if o.status == "canceled":
                assert 0 < o.filled_qty < o.qty
            check_ledger(b)
    assert statuses == {"filled", "canceled"}


def test_cancel_race_is_reproducible_from_the_seed() -> None:
    """The same seed gives the identical event sequence, ids included; another seed does not."""
    first = race_run(11, partial_fill_rate=0.5)
    assert race_run(11, partial_fill_rate=0.5) == first
    assert race_run(12, partial_fill_rate=0.5) != first


def test_whole_run_without_client_order_ids_is_reproducible() -> None:
    """Minted client_order_ids come from the seed too, so whole runs replay identically."""

    def once(seed: int) -> list[dict[str, Any]]:
        clock, b = broker(seed=seed, partial_fill_rate=0.5, reject_rate=0.2)
        for qty in (1, 2, 3, 4):
            b.submit(order_request(qty=Decimal(qty)))
            run(clock, b, 0.05)
        run(clock, b)
        return [e.message() for e in b.events]

    assert once(3) == once(3)
    assert once(3) != once(4)


def test_day_orders_expire_at_close_session_and_gtc_go_done_for_day() -> None:
    """close_session expires every open day order; routed gtc orders go done_for_day."""
    clock, b = broker()
    day = b.submit(order_request(type="limit", limit_price=Decimal(90)))
    gtc = b.submit(order_request(type="limit", limit_price=Decimal(90), time_in_force="gtc"))
    run(clock, b, 1)
    unrouted = b.submit(order_request(type="limit", limit_price=Decimal(90)))
    assert b.close_session() == 2
    assert day.status == "expired"
    assert day.expired_at is not None
    assert unrouted.status == "expired"
    assert gtc.status == "done_for_day"
    assert events_of(b, day.id)[-1].event == "expired"
    assert events_of(b, gtc.id)[-1].event == "done_for_day"
    run(clock, b)
    assert unrouted.status == "expired", "routing after expiry changes nothing"
    assert b.close_session() == 0
    assert b.open_session() == 1
    assert gtc.status == "new"
    assert events_of(b, gtc.id)[-1].event == "new"
    check_ledger(b)


def test_session_seconds_expires_day_orders_by_itself() -> None:
    """With session_seconds set, resting day orders expire when the session ends."""
    clock = FakeClock()
    config = BrokerConfig(price_volatility=0.0, session_seconds=60.0)
    b = Broker(clock=clock, seed=1, config=config)
    b.set_price("AAPL", Decimal(100))
    order = b.submit(order_request(type="limit", limit_price=Decimal(90)))
    run(clock, b, 59)
    assert order.status == "new"
    run(clock, b, 2)
    assert order.status == "expired"
    check_ledger(b)


def test_insufficient_buying_power_is_403() -> None:
    """A buy costing more than the buying power is refused with Alpaca's 403 body."""
    _, b = broker()
    with pytest.raises(SimError) as err:
        b.submit(order_request(qty=Decimal(20000)))
    e = err.value
    assert (e.status, e.code, e.message) == (403, 40310000, "insufficient buying power")
    assert set(e.body()) == {"code", "message", "buying_power", "cost_basis"}
    assert not b.orders


def test_open_buys_hold_buying_power() -> None:
    """Open buy orders hold buying power, so a second large order is refused."""
    _, b = broker()
    b.submit(order_request(type="limit", qty=Decimal(9000), limit_price=Decimal(100)))
    assert b.buying_power() == Decimal(100000)
    with pytest.raises(SimError) as err:
        b.submit(order_request(type="limit", qty=Decimal(1001), limit_price=Decimal(100)))
    assert err.value.status == 403


def test_insufficient_qty_to_close_is_403() -> None:
    """Selling more than a long position (no flip in one order) is 403 insufficient qty."""
    clock, b = broker()
    b.submit(order_request(qty=Decimal(10)))
    run(clock, b)
    b.submit(order_request(side="sell", type="limit", qty=Decimal(4), limit_price=Decimal(200)))
    with pytest.raises(SimError) as err:
        b.submit(order_request(side="sell", qty=Decimal(7)))
    e = err.value
    assert (e.status, e.code) == (403, 40310000)
    assert e.message == "insufficient qty available for order (requested: 7, available: 6)"
    assert e.body()["held_for_orders"] == "4"
    assert e.body()["existing_qty"] == "10"


def test_fractional_short_and_disabled_shorting_are_403() -> None:
    """Fractional short sells, and any short when shorting is off, are refused."""
    _, b = broker()
    with pytest.raises(SimError) as err:
        b.submit(order_request(side="sell", qty=Decimal("1.5")))
    assert (err.value.status, err.value.code) == (403, 40310000)
    _, b2 = broker(config=BrokerConfig(allow_shorting=False, price_volatility=0.0))
    with pytest.raises(SimError) as err:
        b2.submit(order_request(side="sell", qty=Decimal(1)))
    assert err.value.status == 403


def test_duplicate_client_order_id_is_422() -> None:
    """A client_order_id may be used once per account: the second submit is 422 40010001."""
    _, b = broker()
    b.submit(order_request(client_order_id="dup-1"))
    with pytest.raises(SimError) as err:
        b.submit(order_request(client_order_id="dup-1", qty=Decimal(2)))
    assert err.value.body() == {"code": 40010001, "message": "client_order_id must be unique"}
    assert len(b.orders) == 1


def test_client_order_id_minted_as_uuid_when_absent() -> None:
    """Without a client_order_id the broker mints a UUID, and finds the order by it."""
    _, b = broker()
    order = b.submit(order_request())
    other = b.submit(order_request())
    assert uuid.UUID(order.client_order_id).version == 4
    assert order.client_order_id != other.client_order_id
    assert b.get_order_by_client_id(order.client_order_id)["id"] == order.id


def test_rejected_order_has_no_executions() -> None:
    """reject_rate=1 rejects at routing: accepted, pending_new, rejected, no fill."""
    clock, b = broker(reject_rate=1.0)
    order = b.submit(order_request())
    run(clock, b)
    assert [e.event for e in events_of(b, order.id)] == ["accepted", "pending_new", "rejected"]
    assert order.failed_at is not None
    assert not order.executions
    check_ledger(b)


def test_every_event_and_order_parses_into_alpaca_models() -> None:
    """Every event's data parses as TradeUpdate and every order JSON as Order."""
    clock, b = broker(seed=5, partial_fill_rate=0.5, cancel_race_rate=0.5, reject_rate=0.2)
    for i in range(12):
        side = "buy" if i % 3 else "sell"
        kind = "limit" if i % 2 else "market"
        try:
            o = b.submit(
                order_request(
                    side=side,
                    type=kind,
                    qty=Decimal("2.5") if side == "buy" and i % 4 == 1 else Decimal(3),
                    limit_price=Decimal(99) if kind == "limit" else None,
                    time_in_force="day",
                )
            )
        except SimError as err:
            if err.status != 403:
                raise
            continue
        run(clock, b, 0.05)
        if i % 5 == 0 and o.status in ("new", "accepted", "pending_new"):
            b.cancel(o.id)
    b.close_session()
    run(clock, b)
    statuses = {o.status for o in b.orders.values()}
    assert {"filled", "expired"} <= statuses
    for ev in b.events:
        update = TradeUpdate(**ev.message()["data"])
        assert update.event == ev.event
        assert str(update.order.id) == ev.order["id"]
        if ev.execution_id is not None:
            assert str(update.execution_id) == ev.execution_id
            assert update.qty == float(ev.qty or 0)
    for o in b.orders.values():
        parsed = Order(**wire.order_json(o))
        assert parsed.status == o.status
        assert parsed.filled_qty == wire.num(o.filled_qty)
    check_ledger(b)


def test_reset_forgets_everything_and_replays() -> None:
    """reset() clears orders, positions and cash, and the same run replays identically."""
    clock, b = broker(seed=2)
    b.submit(order_request(qty=Decimal(3)))
    run(clock, b)
    first = [(e.event, e.order["id"]) for e in b.events]
    b.reset()
    assert not b.orders
    assert not b.events
    assert b.cash == b.config.starting_cash
    assert b.faults == profile_from({})
    b.submit(order_request(qty=Decimal(3)))
    run(clock, b)
    assert [(e.event, e.order["id"]) for e in b.events] == first
    b.reset(CALM)
    assert b.faults.is_calm
