"""The broker at scale: listing and the account read O(result); events and versions bounded."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fillguard.sim.orders import SimOrder
from fillguard.sim.queries import select_orders
from tests.sim_support import FLAT, check_ledger, flat_sim, make_sim, order_body, request, run_until


def _resting(sim: Any, n: int, *, side: str = "buy", symbol: str = "AAPL") -> list[str]:
    ids = []
    for _ in range(n):
        price = "50" if side == "buy" else "150"
        body = order_body(type="limit", limit_price=price, time_in_force="gtc", side=side)
        sim.clock.advance(0.0001)  # distinct creation times (ties list in creation order)
        resp = sim.handle("POST", "/v2/orders", {**body, "symbol": symbol})
        assert resp.status == 200, resp.body
        ids.append(resp.json()["id"])
    return ids


def _counting_scan(sim: Any) -> tuple[list[int], Any]:
    seen = [0]
    inner = sim.broker.orders.scan

    def scan(status: str, *, newest_first: bool) -> Iterator[SimOrder]:
        for order in inner(status, newest_first=newest_first):
            seen[0] += 1
            yield order

    sim.broker.orders.scan = scan
    return seen, scan


def test_listing_open_orders_reads_only_the_answer() -> None:
    """2,000 finished orders and 300 open ones: the default listing (50) reads about 50."""
    sim = flat_sim()
    for _ in range(40):  # finished: filled market orders
        for _ in range(50):
            sim.handle("POST", "/v2/orders", order_body())
        run_until(sim, lambda: not sim.broker.orders.open_orders())
    open_ids = _resting(sim, 300)
    seen, _ = _counting_scan(sim)
    resp = sim.handle("GET", "/v2/orders")
    assert [o["id"] for o in resp.json()] == open_ids[::-1][:50]
    assert seen[0] <= 51
    seen[0] = 0
    resp = sim.handle("GET", "/v2/orders", query={"direction": "asc", "limit": "10"})
    assert [o["id"] for o in resp.json()] == open_ids[:10]
    assert seen[0] <= 11
    check_ledger(sim.broker)


def test_the_account_read_does_not_walk_every_order() -> None:
    """Buying power is the same as a full recomputation, with 500 open limit buys held at
    their limit; the account read touches none of them."""
    sim = flat_sim()
    _resting(sim, 500)
    account = sim.handle("GET", "/v2/account").json()
    assert Decimal(account["buying_power"]) == Decimal(1_000_000) - 500 * 50
    visited: list[str] = []
    for order in sim.broker.orders.values():
        original = type(order).remaining_qty

        def spy(self: SimOrder, original: Any = original) -> Decimal:
            visited.append(self.id)
            return original.fget(self)  # type: ignore[no-any-return]

        break
    else:
        raise AssertionError("no orders")
    saved = SimOrder.remaining_qty
    try:
        SimOrder.remaining_qty = property(spy)  # type: ignore[method-assign,assignment]
        sim.handle("GET", "/v2/account")
    finally:
        SimOrder.remaining_qty = saved  # type: ignore[method-assign]
    assert visited == []
    check_ledger(sim.broker)


def test_replace_cancel_and_fill_keep_the_running_holds_exact() -> None:
    sim = flat_sim(partial_fill_rate=1.0)
    ids = _resting(sim, 6)
    sim.handle("PATCH", f"/v2/orders/{ids[0]}", {"limit_price": "60"})
    sim.handle("PATCH", f"/v2/orders/{ids[1]}", {"qty": "3", "limit_price": "101"})
    sim.handle("DELETE", f"/v2/orders/{ids[2]}")
    sim.handle("POST", "/v2/orders", order_body(qty="5"))
    check_ledger(sim.broker)
    run_until(sim, lambda: sim.broker.next_due() is None or sim.broker.t() > 3, limit=5)
    check_ledger(sim.broker)
    assert sim.broker.buying_power() == sim.broker.buying_power()


def test_trade_events_are_bounded_and_counted() -> None:
    config = replace(FLAT, retain_events=50)
    sim = make_sim(seed=2, config=config)
    for _ in range(60):
        sim.handle("POST", "/v2/orders", order_body())
    run_until(sim, lambda: not sim.broker.orders.open_orders())
    events = sim.broker.events
    assert 50 <= len(events) < 100
    assert events.total == 60 * 4  # accepted, pending_new, new, fill
    assert events[-1].seq == events.total
    assert sim.handle("GET", "/_sim/ledger").json()["events"] == events.total
    assert len(sim.handle("GET", "/_sim/events").json()) == len(events)


def test_finished_orders_keep_their_last_version_after_the_horizon() -> None:
    config = replace(FLAT, retain_versions_seconds=1.0)
    sim = make_sim(
        seed=2, config=config, faults={"stale_read_rate": 1.0, "stale_read_seconds": 0.2}
    )
    first = sim.handle("POST", "/v2/orders", order_body()).json()["id"]
    run_until(sim, lambda: not sim.broker.orders.open_orders())
    assert len(sim.broker.orders[first].versions) == 4
    sim.advance(2.0)
    sim.handle("POST", "/v2/orders", order_body())  # an event: retirement runs
    assert len(sim.broker.orders[first].versions) == 1
    # A stale read of the finished order still finds the version current at its cutoff.
    stale = sim.handle("GET", f"/v2/orders/{first}").json()
    assert stale["status"] == "filled"


@settings(max_examples=100, deadline=None)
@given(
    statuses=st.lists(st.sampled_from(["new", "filled", "canceled", "accepted"]), max_size=40),
    ticks=st.lists(st.integers(0, 3), min_size=40, max_size=40),
    status=st.sampled_from(["open", "closed", "all"]),
    direction=st.sampled_from(["asc", "desc"]),
    limit=st.integers(1, 12),
    side=st.sampled_from([None, "buy", "sell"]),
)
def test_a_scan_lists_exactly_what_a_full_sort_lists(
    statuses: list[str],
    ticks: list[int],
    status: str,
    direction: str,
    limit: int,
    side: str | None,
) -> None:
    """With ties in created_at (several orders at one instant), in either direction."""
    sim = make_sim(seed=1, config=FLAT)
    clock = sim.clock
    for i, target in enumerate(statuses):
        clock.advance(ticks[i] * 0.001)  # 0: the same instant as the order before
        body = order_body(type="limit", limit_price="50", time_in_force="gtc")
        body["side"] = "sell" if i % 3 == 0 else "buy"
        if body["side"] == "sell":
            body["limit_price"] = "150"
        order_id = sim.handle("POST", "/v2/orders", body).json()["id"]
        order = sim.broker.orders[order_id]
        order.status = target  # shape the book directly: this is about listing only
    query = {"status": status, "direction": direction, "limit": str(limit)}
    if side:
        query["side"] = side
    req = request("GET", "/v2/orders", query=query)
    everything = select_orders(req, list(sim.broker.orders.values()))
    scanned = select_orders(req, sim.broker.scan_orders)
    assert [o.id for o in scanned] == [o.id for o in everything]
