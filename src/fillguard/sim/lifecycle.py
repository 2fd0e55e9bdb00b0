"""The order lifecycle: submit, funds, routing, fills, cancel, expiry and done_for_day.

Alpaca's order lifecycle as the paper broker plays it: ``accepted`` at submit, ``pending_new``
and ``new`` after a routing latency, fills after a fill latency (in several executions when the
partial-fill fault fires), limit orders filling when the seeded price path crosses, and cancel
as a *request* (``pending_cancel`` first, ``canceled`` after a cancel latency unless a fill lands
first). A GTC order can go ``done_for_day`` (the done_for_day knob, or the session closing) and
resume to ``new`` or ``partially_filled`` later; planned fills never land while it is so.
"""

from __future__ import annotations

import random
from decimal import ROUND_DOWN, Decimal
from typing import Any

from fillguard.sim import wire
from fillguard.sim.funds import Funds
from fillguard.sim.orders import CANCELABLE, FILLABLE, QTY_QUANTUM, Execution, SimOrder, SimPosition
from fillguard.sim.prices import round_price
from fillguard.sim.state import (
    Action,
    DuplicateClientOrderIdError,
    OrderRequest,
    PositionEntry,
    SimError,
    asset_id_for,
)
from fillguard.sim.triggers import marketable, observe

__all__ = ["Lifecycle", "split_qty"]

# Live, unrouted or routed, and able to expire or be canceled by the broker itself.
_LIVE = frozenset({"accepted", "pending_new", "new", "partially_filled"})
_RESTING = frozenset({"new", "partially_filled"})


class Lifecycle(Funds):
    """Submit, route, fill, cancel, expire and the trading session."""

    # ------------------------------------------------------------------ actions
    def _run(self, action: Action) -> None:
        order = self.orders.get(action.order_id)
        kind = action.kind
        if kind == "tick":
            self._tick_scheduled = False
            self._check_limits(action.due)
        elif order is None:
            return
        elif kind == "route":
            self._route(order, action.due)
        elif kind == "fill":
            if action.gen != order.fill_gen:
                return  # planned before a done_for_day or replace: it never happens
            self._fills_pending[order.id] = self._fills_pending.get(order.id, 1) - 1
            self._execute(order, action.qty, action.due)
        elif kind == "cancel_done":
            if order.status == "pending_cancel":
                self._transition(order, "canceled", action.due)
        elif kind == "ioc_cancel":
            if order.status in _LIVE:
                self._transition(order, "canceled", action.due)
        elif kind == "expire":
            if order.status in _LIVE:
                self._transition(order, "expired", action.due)
        elif kind == "done_for_day":
            if order.status in _RESTING:
                self._done_for_day(order, action.due)
                self._schedule(
                    action.due + self.faults.done_for_day_seconds,
                    "resume",
                    order.id,
                    gen=order.session_gen,
                )
        # A resume of an earlier done_for_day (session_gen moved on) does nothing.
        elif (
            kind == "resume" and order.status == "done_for_day" and action.gen == order.session_gen
        ):
            self._resume(order, action.due)

    # ------------------------------------------------------------------ submit
    def submit(self, req: OrderRequest) -> SimOrder:
        """Accept an order or raise :class:`SimError` (403 funds/qty, 422 duplicate id)."""
        with self.lock:
            self.advance()
            t = self.t()
            coid = req.client_order_id or self._mint_client_order_id()
            existing = self.by_client_id.get(coid)
            if existing is not None:
                raise DuplicateClientOrderIdError(self.orders[existing])
            self._check_funds(req)
            self._check_submit(req, t)
            order = self._new_order(req, coid, t)
            self._schedule(
                t + self.config.route_latency.sample(self.rng.stream("route")), "route", order.id
            )
            return order

    def _check_submit(self, req: OrderRequest, t: float) -> None:
        """Checks of later layers (sessions, order classes) before an order exists."""

    def _new_order(
        self,
        req: OrderRequest,
        coid: str,
        t: float,
        *,
        external: bool = False,
        replaces: str | None = None,
        status: str = "accepted",
        parent_id: str | None = None,
    ) -> SimOrder:
        """Create, register and announce (``accepted``) an order; nothing is scheduled but expiry.

        A leg is created ``held`` under ``parent_id``: no event (Alpaca sends none), a version.
        """
        now = self._wall(t)
        order = SimOrder(
            id=self._new_id(),
            client_order_id=coid,
            asset_id=asset_id_for(req.symbol),
            symbol=req.symbol,
            side=req.side,
            type=req.type,
            time_in_force=req.time_in_force,
            qty=req.qty,
            limit_price=req.limit_price,
            extended_hours=req.extended_hours,
            created_at=now,
            created_mono=t,
            updated_at=now,
            replaces=replaces,
            asset_class=self.asset(req.symbol).asset_class,
            stop_price=req.stop_price,
            trail_price=req.trail_price,
            trail_percent=req.trail_percent,
            notional=req.notional,
            order_class=req.order_class,
            position_intent=self.position_intent(req),
            status=status,
            parent_id=parent_id,
        )
        self._number(order.id, external=external)
        self.orders[order.id] = order
        self.by_client_id[coid] = order.id
        if status == "accepted":
            self._emit(order, "accepted", t)
        else:
            order.versions.append((t, wire.order_json(order)))
        self._schedule_expiry(order, t)
        return order

    def _schedule_expiry(self, order: SimOrder, t: float) -> None:
        session = self.config.session_seconds
        if order.time_in_force == "day" and session is not None:
            self._schedule(max(session, t), "expire", order.id)

    def record_post(self, client_order_id: str | None, body: Any, outcome: str) -> None:
        """Ground truth: remember every POST /v2/orders received, per client_order_id."""
        with self.lock:
            key = client_order_id or ""
            self.posts.setdefault(key, []).append(
                {
                    "t": self.t(),
                    "received_at": wire.ts(self.clock.now()),
                    "body": body,
                    "outcome": outcome,
                }
            )

    # ------------------------------------------------------------------ routing and fills
    def _route(self, order: SimOrder, t: float) -> None:
        if order.status != "accepted":
            return  # canceled or being replaced before routing
        self._transition(order, "pending_new", t)
        if self.rng.chance_for("reject", self.faults.reject_rate, self._order_no[order.id]):
            self._transition(order, "rejected", t)
            return
        self._transition(order, "new", t)
        faults = self.faults
        if order.time_in_force == "gtc" and self.hits(
            order, "done_for_day", faults.done_for_day_rate
        ):
            self._schedule(t + faults.done_for_day_after_seconds, "done_for_day", order.id)
        self._observe(order, t)
        crosses = self._crosses(order, t)
        if order.type == "market" or crosses:
            self._plan_fills(order, t)
        elif order.time_in_force in ("ioc", "fok"):
            self._schedule(t, "ioc_cancel", order.id)
        else:
            self._ensure_tick(t)
            if self.hits(order, "external_replace", faults.external_replace_rate):
                self._schedule(
                    t + faults.external_replace_after_seconds, "external_replace", order.id
                )

    def _crosses(self, order: SimOrder, t: float) -> bool:
        """Whether the market may fill ``order`` at ``t`` (a stop only once triggered)."""
        return marketable(order, self.prices.price(order.symbol, t))

    def _observe(self, order: SimOrder, t: float) -> None:
        # A stop's trigger and a trailing stop's hwm move with the price; the order's JSON
        # shows them (a version is recorded, with no trade event: Alpaca sends none).
        if observe(order, self.prices.price(order.symbol, t)):
            order.updated_at = self._wall(t)
            order.versions.append((t, wire.order_json(order)))

    def _ensure_tick(self, t: float) -> None:
        if not self._tick_scheduled:
            tick = self.config.price_tick_seconds
            self._schedule((int(t // tick) + 1) * tick, "tick")
            self._tick_scheduled = True

    def _rests(self, o: SimOrder, t: float) -> bool:
        # A limit or stop order the market may fill; one pending_replace may still take a fill.
        return o.type != "market" and o.status in ("new", "partially_filled", "pending_replace")

    def _check_limits(self, t: float) -> None:
        resting = [
            o
            for o in self.orders.open_orders()
            if self._rests(o, t) and not self._fills_pending.get(o.id)
        ]
        for order in resting:
            self._observe(order, t)
            if self._crosses(order, t):
                self._plan_fills(order, t)
        if any(self._rests(o, t) for o in self.orders.open_orders()):
            self._ensure_tick(t)

    def _plan_fills(self, order: SimOrder, t: float) -> None:
        remaining = order.remaining_qty
        due = t + self.config.fill_latency.sample(self.rng.stream("fill_latency"))
        n = self._order_no[order.id]
        # A notional order fills in one execution: its qty is fixed by the fill price.
        partial = (
            order.time_in_force != "fok"
            and order.notional is None
            and self.rng.chance_for("partial_fill", self.faults.partial_fill_rate, n)
        )
        parts = [remaining]
        if partial:
            split_rng = self.rng.keyed("partial_split", n)
            k = split_rng.randint(2, self.faults.max_partial_fills)
            parts = split_qty(remaining, k, split_rng)
        gen = order.fill_gen
        if order.time_in_force == "ioc" and len(parts) > 1:
            # IOC takes what is there now and cancels the rest.
            self._schedule(due, "fill", order.id, parts[0], gen)
            self._fills_pending[order.id] = self._fills_pending.get(order.id, 0) + 1
            self._schedule(due, "ioc_cancel", order.id)
            return
        for part in parts:
            self._schedule(due, "fill", order.id, part, gen)
            self._fills_pending[order.id] = self._fills_pending.get(order.id, 0) + 1
            due += self.config.partial_gap.sample(self.rng.stream("partial_gap"))

    def _drop_planned_fills(self, order: SimOrder) -> None:
        order.fill_gen += 1
        self._fills_pending[order.id] = 0

    def _fill_price(self, order: SimOrder, t: float) -> Decimal:
        price = self.prices.price(order.symbol, t)
        bps = self.rng.stream("slippage").uniform(0, self.config.market_slippage_bps)
        adverse = (
            Decimal(repr(1 + bps / 10_000))
            if order.side == "buy"
            else Decimal(repr(1 - bps / 10_000))
        )
        fill = round_price(price * adverse)
        if order.limit_price is not None:
            fill = (
                min(fill, order.limit_price)
                if order.side == "buy"
                else max(fill, order.limit_price)
            )
        return fill

    def _execute(self, order: SimOrder, qty: Decimal, t: float) -> None:
        if order.status not in FILLABLE:
            return  # canceled, expired, rejected or replaced first: the fill never happens
        price = self._fill_price(order, t)
        if order.notional is not None and not order.executions:
            order.qty = (order.notional / price).quantize(QTY_QUANTUM, rounding=ROUND_DOWN)
            qty = order.qty
        qty = min(qty, order.remaining_qty)
        if qty <= 0:
            return
        position = self.positions.get(order.symbol)
        if position is None:
            position = self.positions[order.symbol] = SimPosition(order.symbol, order.asset_id)
        position.apply(order.side, qty, price)
        faults = self.faults
        exec_no = len(self.executions) + 1
        extra_lag = (
            faults.position_long_lag_seconds
            if self.rng.chance_for("position_long_lag", faults.position_long_lag_rate, exec_no)
            else 0.0
        )
        history = self._position_history.setdefault(order.symbol, [])
        history.append(PositionEntry(t, position.qty, position.avg_entry_price, extra_lag))
        value = qty * price
        self.cash += -value if order.side == "buy" else value
        cum = order.filled_qty + qty
        complete = cum >= order.qty
        # A partial fill during pending_cancel/pending_replace leaves the request pending.
        if complete:
            status = "filled"
        elif order.status in ("pending_cancel", "pending_replace"):
            status = order.status
        else:
            status = "partially_filled"
        execution = Execution(
            execution_id=self._new_id(),
            order_id=order.id,
            symbol=order.symbol,
            side=order.side,
            qty=qty,
            price=price,
            timestamp=self._wall(t),
            mono=t,
            cum_qty=cum,
            leaves_qty=order.qty - cum,
            order_status=status,
            position_qty=position.qty,
        )
        order.executions.append(execution)
        self.executions.append(execution)
        if complete:
            order.filled_at = execution.timestamp
            order.filled_mono = t
            if self.rng.chance_for(
                "missing_price", faults.missing_price_rate, self._order_no[order.id]
            ):
                order.hide_price_until = t + faults.missing_price_seconds
        order.status = status
        order.updated_at = execution.timestamp
        self._emit(order, "fill" if complete else "partial_fill", t, execution)
        if complete and order.replacing_with is not None:
            # The original filled before its replace completed: the replacement never lives.
            replacement = self.orders[order.replacing_with]
            order.replacing_with = None
            replacement.awaiting_replace = False
            if replacement.status in _LIVE:
                self._transition(replacement, "canceled", t)

    # ------------------------------------------------------------------ cancel and expiry
    def hidden(self, order: SimOrder, t: float) -> bool:
        """Whether REST answers 404 for ``order`` at ``t`` (the not_found_lag fault)."""
        faults = self.faults
        return t < order.created_mono + faults.not_found_lag_seconds and self.hits(
            order, "not_found_lag", faults.not_found_lag_rate
        )

    def _known(self, order_id: str) -> SimOrder:
        order = self.orders.get(order_id)
        if order is None:
            raise SimError(404, 40410000, "order not found")
        return order

    def require_visible(self, order_id: str) -> None:
        """Raise the 404 REST answers for an order unknown or in its not_found_lag window.

        The broker's own operations (cancel, replace) know every order; the REST layer asks
        this first, so a DELETE or PATCH of a hidden order 404s as a read does.
        """
        with self.lock:
            self.advance()
            if self.hidden(self._known(order_id), self.t()):
                raise SimError(404, 40410000, "order not found", fault="not_found_lag")

    def cancel(self, order_id: str) -> None:
        """Request a cancel: ``pending_cancel`` now, ``canceled`` later unless a fill lands first."""
        with self.lock:
            self.advance()
            t = self.t()
            order = self._known(order_id)
            if order.status not in CANCELABLE:
                raise SimError(422, 42210000, f'order is already in "{order.status}" state')
            latency = self.config.cancel_latency.sample(self.rng.stream("cancel_latency"))
            # Only a routed order that the market can fill may race its cancel: an order
            # still being accepted, or a limit the price has not reached, cannot fill.
            can_fill = order.status in _RESTING and self._crosses(order, t)
            self._transition(order, "pending_cancel", t)
            n = self._order_no[order.id]
            race = self.rng.chance_for("cancel_race", self.faults.cancel_race_rate, n)
            if race and can_fill and order.status == "pending_cancel":
                race_at = t + self.rng.keyed("cancel_race_at", n).uniform(0, latency * 0.9)
                self._schedule(race_at, "fill", order.id, order.remaining_qty, order.fill_gen)
                self._fills_pending[order.id] = self._fills_pending.get(order.id, 0) + 1
            self._schedule(t + latency, "cancel_done", order.id)

    def cancel_all(self) -> list[tuple[str, int]]:
        """Request a cancel of every open order: (order id, HTTP status) per order."""
        with self.lock:
            self.advance()
            out: list[tuple[str, int]] = []
            for order in self.orders.open_orders():
                if order.status in CANCELABLE:
                    self.cancel(order.id)
                    out.append((order.id, 200))
            return out

    # ------------------------------------------------------------------ the session
    def _done_for_day(self, order: SimOrder, t: float) -> None:
        self._transition(order, "done_for_day", t)
        self._drop_planned_fills(order)
        order.session_gen += 1

    def _resume(self, order: SimOrder, t: float) -> None:
        status = "partially_filled" if order.executions else "new"
        self._transition(order, status, t, event="new")
        self._observe(order, t)
        if order.type == "market" or self._crosses(order, t):
            self._plan_fills(order, t)
        else:
            self._ensure_tick(t)

    def end_session(self) -> tuple[int, int]:
        """End the trading day: open day orders expire, routed open GTC orders go done_for_day.

        Returns (expired, done_for_day) counts.
        """
        with self.lock:
            self.advance()
            t = self.t()
            expired = done = 0
            for order in self.orders.open_orders():
                if order.time_in_force == "day" and order.status in _LIVE:
                    self._transition(order, "expired", t)
                    expired += 1
                elif order.time_in_force == "gtc" and order.status in _RESTING:
                    self._done_for_day(order, t)
                    done += 1
            return expired, done

    def close_session(self) -> int:
        """End the trading day (see :meth:`end_session`); returns how many day orders expired."""
        return self.end_session()[0]

    def open_session(self) -> int:
        """Start a trading day: every done_for_day order resumes. Returns how many."""
        with self.lock:
            self.advance()
            t = self.t()
            n = 0
            for order in self.orders.open_orders():
                if order.status == "done_for_day":
                    self._resume(order, t)
                    n += 1
            return n


def split_qty(qty: Decimal, parts: int, rng: random.Random) -> list[Decimal]:
    """Split ``qty`` into up to ``parts`` positive pieces that sum to it exactly.

    Whole quantities split into whole shares; fractional ones to 9 decimal places.
    """
    quantum = Decimal(1) if qty == qty.to_integral_value() and qty >= parts else QTY_QUANTUM
    units = int(qty / quantum)
    parts = max(1, min(parts, units))
    if parts == 1:
        return [qty]
    cuts = sorted(rng.sample(range(1, units), parts - 1))
    bounds = [0, *cuts, units]
    pieces = [Decimal(bounds[i + 1] - bounds[i]) * quantum for i in range(parts)]
    pieces[-1] += qty - sum(pieces, Decimal(0))  # exact remainder (fractional dust)
    return pieces
