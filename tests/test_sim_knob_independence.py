"""The issue-7 knobs: reproducible from the seed, and each hits the same orders or requests
whatever the other knobs do (old and new alike)."""

from __future__ import annotations

from decimal import Decimal
from functools import partial
from typing import Any

import pytest

from fillguard.sim.api import ApiResponse
from fillguard.sim.orders import SimOrder
from tests.sim_support import (
    Sim,
    check_ledger,
    events_of,
    flat_sim,
    order_body,
    order_request,
    run_until,
)

ORDER_KNOBS: dict[str, Any] = {
    "lookup_refused_rate": 0.4,
    "not_found_lag_rate": 0.3,
    "half_update_rate": 0.5,
    "done_for_day_rate": 0.5,
    "external_replace_rate": 0.4,
}
# Knobs that are on in the combined runs but observed elsewhere.
OTHERS: dict[str, Any] = {
    "not_found_lag_seconds": 3.0,
    "partial_fill_rate": 0.3,
    "reject_rate": 0.1,
    "missing_price_rate": 0.3,
    "position_long_lag_rate": 0.5,
    "timestamp_style": "mixed",
}


def is_filled(order: SimOrder) -> bool:
    """Whether the order is done filling (or was rejected)."""
    return order.status in ("filled", "rejected")


def order_script(seed: int, knobs: dict[str, Any]) -> tuple[dict[str, set[str]], list[Any]]:
    """20 GTC market orders (read right after the fill) and 20 resting GTC limits, each read
    twice at once; which client orders each per-order knob hit, and every answer."""
    sim = flat_sim(seed=seed, **{"not_found_lag_seconds": 3.0, **knobs})
    hit: dict[str, set[str]] = {k: set() for k in ORDER_KNOBS}
    answers: list[Any] = []
    limits: list[SimOrder] = []

    def reads(coid: str) -> list[ApiResponse]:
        order_id = sim.broker.by_client_id[coid]
        out = [sim.handle("GET", f"/v2/orders/{order_id}") for _ in range(2)]
        if out[0].status in (401, 403):
            hit["lookup_refused_rate"].add(coid)
        if out[1].fault_name == "not_found_lag":
            hit["not_found_lag_rate"].add(coid)
        return out

    for i in range(20):
        coid = f"m-{i}"
        body = order_body(time_in_force="gtc", qty="2", client_order_id=coid)
        answers.append(sim.handle("POST", "/v2/orders", body).body)
        answers += [(r.status, r.body) for r in reads(coid)]
        order = sim.broker.orders[sim.broker.by_client_id[coid]]
        run_until(sim, partial(is_filled, order))
        after_fill = sim.handle("GET", f"/v2/orders/{order.id}")
        answers.append((after_fill.status, after_fill.body))
        if after_fill.fault_name == "half_update":
            hit["half_update_rate"].add(coid)
        coid = f"l-{i}"
        body = order_body(
            type="limit", limit_price="95", time_in_force="gtc", qty="2", client_order_id=coid
        )
        answers.append(sim.handle("POST", "/v2/orders", body).body)
        answers += [(r.status, r.body) for r in reads(coid)]
        limits.append(sim.broker.orders[sim.broker.by_client_id[coid]])
        sim.advance(0.05)
    sim.advance(5)
    for order in limits:
        if order.replaced_by is not None:
            hit["external_replace_rate"].add(order.client_order_id)
        if "done_for_day" in [e.event for e in events_of(sim.broker, order.id)]:
            hit["done_for_day_rate"].add(order.client_order_id)
    check_ledger(sim.broker)
    answers.append([e.message() for e in sim.broker.events])
    return hit, answers


def test_order_knobs_are_reproducible_from_the_seed() -> None:
    """The same seed gives the same hits and the same answers, bodies included; another seed
    does not."""
    knobs = {**ORDER_KNOBS, **OTHERS}
    first = order_script(31, knobs)
    assert order_script(31, knobs) == first
    assert all(first[0].values()), first[0]
    assert order_script(32, knobs)[0] != first[0]


@pytest.mark.parametrize("knob", sorted(ORDER_KNOBS))
def test_each_order_knob_hits_the_same_orders_whatever_the_others(knob: str) -> None:
    """Turning every other knob on changes nothing about which orders this knob picks (but for
    the orders where another knob hides what it did)."""
    alone = order_script(33, {knob: ORDER_KNOBS[knob]})[0][knob]
    combined_hits = order_script(33, {**ORDER_KNOBS, **OTHERS})[0]
    masked: set[str] = set()
    if knob == "half_update_rate":
        masked = combined_hits["not_found_lag_rate"]  # a 404 hides the half-written read
    elif knob == "done_for_day_rate":
        masked = combined_hits["external_replace_rate"]  # replaced before it would park
    assert alone - masked, "the knob is observable on its own"
    assert alone - masked == combined_hits[knob] - masked


REQUEST_KNOBS: dict[str, Any] = {
    "trickle_rate": 0.3,
    "duplicate_message_variant_rate": 0.4,
    "duplicate_refused_as_funds_rate": 0.4,
}
REST_KNOBS: dict[str, Any] = {
    "http_error_rate": 0.1,
    "reset_rate": 0.05,
    "hang_rate": 0.05,
    "stale_read_rate": 0.3,
    "rate_limit_burst_rate": 0.02,
    "lost_submit_rate": 0.3,
    "latency": [0.001, 0.01],
    "timestamp_style": "mixed",
}
# Answered before the request reaches the broker: no per-request knob of the route can show.
PREEMPTING = {"rate_limit_burst", "reset", "http_error", "hang"}


def request_script(seed: int, knobs: dict[str, Any]) -> tuple[dict[str, set[int]], list[Any]]:
    """240 requests: duplicate POSTs of a filled and of an open order, account and order
    reads; which requests each per-request knob hit (and which were preempted)."""
    sim: Sim = flat_sim(seed=seed, **knobs)
    done = sim.broker.submit(order_request(client_order_id="done"))
    run_until(sim, partial(is_filled, done))
    sim.handle("POST", "/v2/orders", {"symbol": "AAPL"})  # a refused POST, for the ledger
    open_order = sim.broker.submit(
        order_request(
            client_order_id="open", type="limit", limit_price=Decimal(90), time_in_force="gtc"
        )
    )
    hit: dict[str, set[int]] = {k: set() for k in REQUEST_KNOBS}
    hit["preempted"] = set()
    answers = []
    for i in range(240):
        kind = i % 4
        if kind == 0:
            r = sim.handle("POST", "/v2/orders", order_body(client_order_id="done"))
        elif kind == 1:
            r = sim.handle("POST", "/v2/orders", order_body(client_order_id="open"))
        elif kind == 2:
            r = sim.handle("GET", "/v2/account")
        else:
            r = sim.handle("GET", f"/v2/orders/{open_order.id}")
        answers.append((r.status, r.body, r.delay, r.trickle_seconds, r.fault_name))
        if r.fault_name in PREEMPTING:
            hit["preempted"].add(i)
        if r.trickle_seconds > 0:
            hit["trickle_rate"].add(i)
        if r.status == 403:
            hit["duplicate_refused_as_funds_rate"].add(i)
        if r.status == 422 and r.json()["message"] == "client order id must be unique":
            hit["duplicate_message_variant_rate"].add(i)
        sim.advance(0.01)
    check_ledger(sim.broker)
    return hit, answers


def test_request_knobs_are_reproducible_from_the_seed() -> None:
    """The same seed gives the same answers, delays, trickles and fault names; another does not."""
    knobs = {**REQUEST_KNOBS, **REST_KNOBS}
    first = request_script(41, knobs)
    assert request_script(41, knobs) == first
    assert all(first[0][k] for k in REQUEST_KNOBS)
    assert request_script(42, knobs)[1] != first[1]


@pytest.mark.parametrize("knob", sorted(REQUEST_KNOBS))
def test_each_request_knob_hits_the_same_requests_whatever_the_others(knob: str) -> None:
    """With every other REST knob on, a per-request knob hits the same requests, but for those
    answered before reaching the broker, and the duplicate variant where funds came first."""
    alone = request_script(43, {knob: REQUEST_KNOBS[knob]})[0][knob]
    combined = request_script(43, {**REQUEST_KNOBS, **REST_KNOBS})[0]
    masked = combined["preempted"]
    if knob == "duplicate_message_variant_rate":
        masked = masked | combined["duplicate_refused_as_funds_rate"]
    if knob == "trickle_rate":
        # lost_submit replaces an answer (it never trickles): none here, every POST is refused.
        assert not any(a[4] == "lost_submit" for a in request_script(43, REST_KNOBS)[1])
    assert alone - masked, "the knob is observable on its own"
    assert alone - masked == combined[knob] - masked
