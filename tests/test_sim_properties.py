"""Ledger invariants as Hypothesis properties over random operations and random fault knobs."""

from __future__ import annotations

import contextlib
import random
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from fillguard.sim.core import BrokerConfig, OrderRequest, ReplaceRequest, SimError, split_qty
from fillguard.sim.orders import CANCELABLE, REPLACEABLE, TERMINAL, SimPosition, vwap
from fillguard.sim.prices import round_price
from tests.sim_support import (
    Sim,
    check_ledger,
    check_ledger_json,
    make_sim,
    order_body,
    reference_avg_entry,
)

SYMBOLS = ("AAPL", "MSFT", "XYZ")
DUPLICATE_MESSAGES = ("client_order_id must be unique", "client order id must be unique")
RATES = st.sampled_from([0.0, 0.0, 0.2, 0.5, 1.0])
WHOLE = st.integers(1, 40).map(Decimal)
FRACTIONAL = st.decimals(
    min_value=Decimal("0.000000001"), max_value=Decimal(20), places=9, allow_nan=False
)
QTY = st.one_of(WHOLE, FRACTIONAL)
ORDER_ARGS = st.tuples(
    st.sampled_from(SYMBOLS),
    st.sampled_from(["buy", "sell"]),
    st.sampled_from(["market", "limit"]),
    QTY,
    st.integers(-4, 4),
    st.sampled_from(["day", "gtc", "ioc", "fok"]),
)


class BrokerLedgerMachine(RuleBasedStateMachine):
    """Random submits, cancels, price moves, time steps and session closes on one broker."""

    sim: Sim

    def __init__(self) -> None:
        super().__init__()
        self.last_status: dict[str, str] = {}

    @initialize(
        seed=st.integers(0, 2**32 - 1),
        partial=RATES,
        race=RATES,
        reject=RATES,
        missing=RATES,
        max_partials=st.integers(2, 6),
        volatility=st.sampled_from([0.0, 0.001, 0.01]),
        shorting=st.booleans(),
        misbehaviour=st.fixed_dictionaries(
            {
                "done_for_day_rate": RATES,
                "done_for_day_after_seconds": st.sampled_from([0.0, 0.2, 1.0]),
                "done_for_day_seconds": st.sampled_from([0.1, 0.5, 2.0]),
                "external_replace_rate": RATES,
                "external_replace_after_seconds": st.sampled_from([0.0, 0.3]),
                "half_update_rate": RATES,
                "lookup_refused_rate": RATES,
                "not_found_lag_rate": RATES,
                "not_found_lag_seconds": st.sampled_from([0.5, 8.0]),
                "duplicate_message_variant_rate": RATES,
                "duplicate_refused_as_funds_rate": RATES,
                "position_long_lag_rate": RATES,
                "timestamp_style": st.sampled_from(["micro", "nanos", "offset", "mixed"]),
            }
        ),
    )
    def setup(
        self,
        seed: int,
        partial: float,
        race: float,
        reject: float,
        missing: float,
        max_partials: int,
        volatility: float,
        shorting: bool,
        misbehaviour: dict[str, Any],
    ) -> None:
        """A fresh broker with random order knobs, issue-7 knobs included."""
        config = BrokerConfig(
            price_volatility=volatility,
            allow_shorting=shorting,
            initial_prices=(("AAPL", Decimal(100)), ("MSFT", Decimal("412.5"))),
        )
        self.sim = make_sim(
            seed=seed,
            config=config,
            faults={
                "partial_fill_rate": partial,
                "cancel_race_rate": race,
                "reject_rate": reject,
                "missing_price_rate": missing,
                "max_partial_fills": max_partials,
                **misbehaviour,
            },
        )
        self.terminal_at: dict[str, float] = {}

    def _request(
        self, symbol: str, side: str, kind: str, qty: Decimal, offset: int, tif: str
    ) -> OrderRequest:
        price = self.sim.broker.price(symbol)
        limit = round_price(price * (1 + Decimal(offset) / 100)) if kind == "limit" else None
        if qty != qty.to_integral_value():
            tif = "day"  # fractional orders must be day orders
        return OrderRequest(
            symbol=symbol,
            side=side,
            type=kind,
            time_in_force=tif,
            qty=qty,
            limit_price=limit,
        )

    @rule(orders=st.lists(ORDER_ARGS, min_size=1, max_size=5))
    def submit(self, orders: list[tuple[str, str, str, Decimal, int, str]]) -> None:
        """Submit a few orders straight to the broker; only 403 refusals are allowed."""
        for args in orders:
            try:
                self.sim.broker.submit(self._request(*args))
            except SimError as err:
                if (err.status, err.code) != (403, 40310000):
                    raise

    @rule(
        symbol=st.sampled_from(SYMBOLS),
        side=st.sampled_from(["buy", "sell"]),
        kind=st.sampled_from(["market", "limit"]),
        qty=QTY,
        offset=st.integers(-4, 4),
        tif=st.sampled_from(["day", "gtc", "ioc", "fok"]),
        coid=st.one_of(st.none(), st.sampled_from(["c-1", "c-2", "c-3"])),
    )
    def submit_via_api(
        self,
        symbol: str,
        side: str,
        kind: str,
        qty: Decimal,
        offset: int,
        tif: str,
        coid: str | None,
    ) -> None:
        """Submit through POST /v2/orders; the answer is 200, 403 or a duplicate 422."""
        req = self._request(symbol, side, kind, qty, offset, tif)
        body = order_body(
            symbol=symbol,
            side=side,
            type=kind,
            qty=str(qty),
            time_in_force=req.time_in_force,
            limit_price=str(req.limit_price) if req.limit_price is not None else None,
            client_order_id=coid,
        )
        resp = self.sim.handle("POST", "/v2/orders", body)
        assert resp.status in (200, 403, 422), resp.body
        if resp.status == 422:
            assert resp.json()["code"] == 40010001
            assert resp.json()["message"] in DUPLICATE_MESSAGES
        if resp.status == 200:
            assert resp.json()["status"] == "accepted"

    @precondition(lambda self: bool(self.sim.broker.orders))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        """Cancel a random order: accepted only while cancelable, else 422."""
        order_id = data.draw(st.sampled_from(sorted(self.sim.broker.orders)))
        self.sim.broker.advance()
        status = self.sim.broker.orders[order_id].status
        if status in CANCELABLE:
            self.sim.broker.cancel(order_id)
            assert self.sim.broker.orders[order_id].status == "pending_cancel"
        else:
            with pytest.raises(SimError) as err:
                self.sim.broker.cancel(order_id)
            assert (err.value.status, err.value.code) == (422, 42210000)

    @precondition(lambda self: bool(self.sim.broker.orders))
    @rule(data=st.data())
    def cancel_via_api(self, data: st.DataObject) -> None:
        """DELETE /v2/orders/{id} is 204 or 422 for a known order (404 while REST hides it)."""
        order_id = data.draw(st.sampled_from(sorted(self.sim.broker.orders)))
        resp = self.sim.handle("DELETE", f"/v2/orders/{order_id}")
        assert resp.status in (204, 422) or (resp.status, resp.fault_name) == (
            404,
            "not_found_lag",
        )

    @precondition(lambda self: bool(self.sim.broker.orders))
    @rule(
        data=st.data(),
        qty=st.one_of(st.none(), WHOLE, FRACTIONAL),
        offset=st.one_of(st.none(), st.integers(-4, 4)),
        tif=st.one_of(st.none(), st.sampled_from(["day", "gtc"])),
        coid=st.one_of(st.none(), st.sampled_from(["c-1", "r-1", "r-2"])),
    )
    def replace(
        self,
        data: st.DataObject,
        qty: Decimal | None,
        offset: int | None,
        tif: str | None,
        coid: str | None,
    ) -> None:
        """Replace a random order at the broker: open and not pending gives the replacement,
        anything else a 4xx, and nothing changes on a refusal."""
        broker = self.sim.broker
        order_id = data.draw(st.sampled_from(sorted(broker.orders)))
        broker.advance()
        order = broker.orders[order_id]
        limit = None
        if offset is not None and order.type == "limit":
            limit = round_price(broker.price(order.symbol) * (1 + Decimal(offset) / 100))
        before = (order.status, len(broker.orders))
        refused: SimError | None = None
        try:
            new = broker.replace(
                order_id,
                ReplaceRequest(qty=qty, limit_price=limit, time_in_force=tif, client_order_id=coid),
            )
        except SimError as err:
            refused = err
        if refused is not None:
            assert refused.status in (403, 422)
            if order.status not in REPLACEABLE or order.awaiting_replace:
                assert refused.status == 422
            assert (order.status, len(broker.orders)) == before
            return
        assert before[0] in REPLACEABLE
        assert order.status == "pending_replace"
        assert (new.status, new.replaces) == ("accepted", order_id)

    @precondition(lambda self: bool(self.sim.broker.orders))
    @rule(
        data=st.data(),
        body=st.fixed_dictionaries(
            {},
            optional={
                "qty": st.sampled_from(["1", "2.5", 3, "0", "x"]),
                "limit_price": st.sampled_from(["99.5", "101", "0.5", "1.001", 100]),
                "time_in_force": st.sampled_from(["day", "gtc", "ioc", "week"]),
                "client_order_id": st.sampled_from(["c-1", "p-1", ""]),
                "stop_price": st.just("90"),
            },
        ),
    )
    def replace_via_api(self, data: st.DataObject, body: dict[str, Any]) -> None:
        """PATCH /v2/orders/{id}: 200 with the replacement, or Alpaca's 403/404/422."""
        order_id = data.draw(st.sampled_from(sorted(self.sim.broker.orders)))
        resp = self.sim.handle("PATCH", f"/v2/orders/{order_id}", body)
        assert resp.status in (200, 403, 404, 422), resp.body
        if resp.status == 200:
            assert resp.json()["replaces"] == order_id
            assert resp.json()["status"] == "accepted"
        if resp.status == 404:
            assert resp.fault_name == "not_found_lag"

    @precondition(lambda self: bool(self.sim.broker.orders))
    @rule(data=st.data())
    def read_via_api(self, data: st.DataObject) -> None:
        """GET /v2/orders/{id}: 200, or a read fault's 401/403/404."""
        order_id = data.draw(st.sampled_from(sorted(self.sim.broker.orders)))
        resp = self.sim.handle("GET", f"/v2/orders/{order_id}")
        assert resp.status in (200, 401, 403, 404)
        if resp.status != 200:
            assert resp.fault_name in ("lookup_refused", "not_found_lag")

    @rule()
    def open_session(self) -> None:
        """Start a day: done_for_day orders resume."""
        self.sim.broker.open_session()

    @rule(symbol=st.sampled_from(SYMBOLS), pct=st.integers(-6, 6))
    def set_price(self, symbol: str, pct: int) -> None:
        """Move a price by a few percent, pinning it from now on."""
        price = self.sim.broker.price(symbol)
        self.sim.broker.set_price(symbol, max(Decimal("0.01"), price * (1 + Decimal(pct) / 100)))

    @rule(seconds=st.one_of(st.floats(0, 0.2), st.floats(0, 3)))
    def advance(self, seconds: float) -> None:
        """Let time pass."""
        self.sim.advance(seconds)

    @rule()
    def close_session(self) -> None:
        """End the day: open day orders expire."""
        self.sim.broker.close_session()

    @rule()
    def ledger_json_agrees(self) -> None:
        """GET /_sim/ledger agrees with the broker."""
        check_ledger_json(self.sim.api)

    @invariant()
    def ledger_invariants(self) -> None:
        """Every ledger invariant holds after every step."""
        check_ledger(self.sim.broker)

    @invariant()
    def terminal_orders_stay_terminal(self) -> None:
        """A status seen terminal never changes, no order fills beyond its qty, and no fill
        lands after a final cancel or replace."""
        for order in self.sim.broker.orders.values():
            before = self.last_status.get(order.id)
            if before in TERMINAL:
                assert order.status == before
            assert order.filled_qty <= order.qty
            self.last_status[order.id] = order.status
            if order.status in ("canceled", "replaced") and order.id not in self.terminal_at:
                self.terminal_at[order.id] = order.versions[-1][0]
            if order.id in self.terminal_at:
                assert all(e.mono <= self.terminal_at[order.id] for e in order.executions)

    def teardown(self) -> None:
        """Run everything out and check once more, including the ledger JSON."""
        if hasattr(self, "sim"):
            self.sim.advance(60)
            check_ledger(self.sim.broker)
            check_ledger_json(self.sim.api)


def test_ledger_invariants_hold_over_random_operations() -> None:
    """Over random operations and fault knobs, every ledger invariant holds after every step."""
    run_state_machine_as_test(
        BrokerLedgerMachine,
        settings=settings(
            max_examples=150,
            stateful_step_count=50,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


OPS = st.lists(
    st.tuples(
        st.sampled_from(["submit", "cancel", "advance", "price"]),
        st.integers(0, 10_000),
    ),
    min_size=1,
    max_size=25,
)


def replay(seed: int, ops: list[tuple[str, int]], knobs: dict[str, Any]) -> list[dict[str, Any]]:
    """Apply ``ops`` to a fresh broker and return every trade event message."""
    sim = make_sim(seed=seed, faults=knobs)
    for op, n in ops:
        broker = sim.broker
        if op == "submit":
            kind = "limit" if n % 2 else "market"
            price = broker.price("AAPL")
            with contextlib.suppress(SimError):
                broker.submit(
                    OrderRequest(
                        symbol="AAPL",
                        side="buy" if n % 3 else "sell",
                        type=kind,
                        time_in_force="gtc" if n % 5 else "day",
                        qty=Decimal(1 + n % 7),
                        limit_price=round_price(price * Decimal("0.99"))
                        if kind == "limit"
                        else None,
                    )
                )
        elif op == "cancel" and broker.orders:
            order_id = list(broker.orders)[n % len(broker.orders)]
            with contextlib.suppress(SimError):
                broker.cancel(order_id)
        elif op == "advance":
            sim.advance(n / 5000)
        elif op == "price":
            broker.set_price("AAPL", Decimal(90 + n % 20))
    sim.advance(30)
    check_ledger(sim.broker)
    return [e.message() for e in sim.broker.events]


@settings(max_examples=100, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    ops=OPS,
    partial=RATES,
    race=RATES,
    reject=RATES,
)
def test_same_seed_and_operations_replay_identically(
    seed: int, ops: list[tuple[str, int]], partial: float, race: float, reject: float
) -> None:
    """The same seed and operations give the identical event sequence, ids and times included."""
    knobs = {"partial_fill_rate": partial, "cancel_race_rate": race, "reject_rate": reject}
    assert replay(seed, ops, knobs) == replay(seed, ops, knobs)


@settings(max_examples=200, deadline=None)
@given(
    qty=st.one_of(WHOLE, FRACTIONAL, st.integers(1, 10**6).map(Decimal)),
    parts=st.integers(2, 12),
    seed=st.integers(0, 2**16),
)
def test_split_qty_pieces_sum_exactly(qty: Decimal, parts: int, seed: int) -> None:
    """split_qty gives at most ``parts`` positive pieces that sum exactly to the quantity."""
    pieces = split_qty(qty, parts, random.Random(seed))
    assert sum(pieces, Decimal(0)) == qty
    assert 1 <= len(pieces) <= parts
    assert all(p > 0 for p in pieces)


FILL = st.tuples(
    st.sampled_from(["buy", "sell"]),
    QTY,
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal(1000), places=2),
)


@settings(max_examples=200, deadline=None)
@given(fills=st.lists(FILL, min_size=1, max_size=30))
def test_position_apply_tracks_qty_and_average_entry(
    fills: list[tuple[str, Decimal, Decimal]],
) -> None:
    """A position is the signed sum of its fills; its entry price matches an independent model."""
    from datetime import UTC, datetime

    from fillguard.sim.orders import Execution

    pos = SimPosition("AAPL", "asset")
    executions = []
    for i, (side, qty, price) in enumerate(fills):
        pos.apply(side, qty, price)
        executions.append(
            Execution(
                execution_id=str(i),
                order_id=str(i),
                symbol="AAPL",
                side=side,
                qty=qty,
                price=price,
                timestamp=datetime(2026, 1, 5, tzinfo=UTC),
                mono=float(i),
                cum_qty=qty,
                leaves_qty=Decimal(0),
                order_status="filled",
                position_qty=pos.qty,
            )
        )
    assert pos.qty == sum((q if s == "buy" else -q for s, q, _ in fills), Decimal(0))
    assert abs(pos.avg_entry_price - reference_avg_entry(executions, "AAPL")) < Decimal("1e-6")
    if pos.qty == 0:
        assert pos.avg_entry_price == 0
    else:
        assert pos.avg_entry_price > 0
    assert vwap(executions) is not None
