"""Order classes with legs: bracket, oco and oto, as Alpaca plays them.

- **bracket**: an entry order and two exit legs, a take-profit limit and a stop-loss stop (or
  stop-limit), on the other side. The legs are ``held`` until the entry fills completely, then
  go ``new`` together as a one-cancels-other pair: the first execution of one cancels the other.
- **oto**: an entry and one exit leg (take-profit or stop-loss), held until the entry fills.
- **oco**: two exit legs live at once, the take-profit limit (the parent) and the stop-loss.

An entry canceled, expired or rejected cancels its held legs; a leg canceled cancels its pair.
Take-profit above and stop-loss below the entry's base price (its limit price, else the
market price) for a buy, the other way round for a sell, by at least a cent, as Alpaca checks.
"""

from __future__ import annotations

from decimal import Decimal

from fillguard.sim.orders import SimOrder
from fillguard.sim.sessions import Sessions
from fillguard.sim.state import OrderRequest, SimError

__all__ = ["Legs"]

_CENT = Decimal("0.01")
_CANCEL_NOW = frozenset({"held", "accepted", "new", "partially_filled", "done_for_day"})


def _invalid(message: str) -> SimError:
    return SimError(422, 40010001, message)


class Legs(Sessions):
    """Creates, activates and cancels the legs of bracket, oco and oto orders."""

    def _check_submit(self, req: OrderRequest, t: float) -> None:
        super()._check_submit(req, t)
        if req.order_class not in ("bracket", "oto", "oco"):
            return
        base = req.limit_price or req.stop_price or self.prices.price(req.symbol, t)
        buy = req.side == "buy"
        tp = req.take_profit
        sl = req.stop_loss[0] if req.stop_loss else None
        if req.order_class == "oco":
            assert tp is not None
            assert sl is not None
            if (buy and tp >= sl) or (not buy and tp <= sl):
                relation = "<" if buy else ">"
                raise _invalid(f"take_profit.limit_price must be {relation} stop_loss.stop_price")
            return
        if tp is not None and buy and tp < base + _CENT:
            raise _invalid("take_profit.limit_price must be >= base_price + 0.01")
        if tp is not None and not buy and tp > base - _CENT:
            raise _invalid("take_profit.limit_price must be <= base_price - 0.01")
        if sl is not None and buy and sl > base - _CENT:
            raise _invalid("stop_loss.stop_price must be <= base_price - 0.01")
        if sl is not None and not buy and sl < base + _CENT:
            raise _invalid("stop_loss.stop_price must be >= base_price + 0.01")

    def submit(self, req: OrderRequest) -> SimOrder:
        """Accept an order; an order with legs gets them at once (held, or live for oco)."""
        with self.lock:
            order = super().submit(req)
            if req.order_class in ("bracket", "oto", "oco"):
                self._make_legs(order, req)
            return order

    def _make_legs(self, parent: SimOrder, req: OrderRequest) -> None:
        t = self.t()
        exit_side = "sell" if req.side == "buy" else "buy"
        oco = req.order_class == "oco"
        intent = parent.position_intent if oco else f"{exit_side}_to_close"
        specs: list[tuple[str, Decimal | None, Decimal | None]] = []
        if req.take_profit is not None and not oco:  # an oco's take-profit is the parent
            specs.append(("limit", req.take_profit, None))
        if req.stop_loss is not None:
            sl_stop, sl_limit = req.stop_loss
            specs.append(("stop_limit" if sl_limit is not None else "stop", sl_limit, sl_stop))
        for order_type, limit, stop in specs:
            leg_req = OrderRequest(
                symbol=req.symbol,
                side=parent.side if oco else exit_side,
                type=order_type,
                time_in_force=req.time_in_force,
                qty=req.qty,
                limit_price=limit,
                stop_price=stop,
                order_class=req.order_class,
                position_intent=intent,
            )
            leg = self._new_order(
                leg_req,
                self._mint_client_order_id(),
                t,
                status="accepted" if oco else "held",
                parent_id=parent.id,
            )
            parent.legs.append(leg.id)
        if oco:
            # Both live at once: the stop-loss routes with the parent, and each cancels the other.
            leg = self.orders[parent.legs[0]]
            leg.oco_with, parent.oco_with = parent.id, leg.id
            self._schedule(
                t + self.config.route_latency.sample(self.rng.stream("route")), "route", leg.id
            )
        elif len(parent.legs) == 2:
            first, second = (self.orders[i] for i in parent.legs)
            first.oco_with, second.oco_with = second.id, first.id

    def _activate(self, parent: SimOrder, t: float) -> None:
        for leg_id in parent.legs:
            leg = self.orders[leg_id]
            if leg.status != "held":
                continue
            self._transition(leg, "new", t)
            self._observe(leg, t)
            if self._crosses(leg, t) and self._tradable(leg, t):
                self._plan_fills(leg, t)
            else:
                self._ensure_tick(t)

    def _cancel_now(self, order: SimOrder, t: float) -> None:
        if order.status in _CANCEL_NOW:
            self._transition(order, "canceled", t)

    def _execute(self, order: SimOrder, qty: Decimal, t: float) -> None:
        before = len(order.executions)
        super()._execute(order, qty, t)
        if len(order.executions) == before:
            return
        if order.oco_with is not None:
            self._cancel_now(self.orders[order.oco_with], t)
        if order.status == "filled" and order.legs:
            self._activate(order, t)

    def _transition(self, order: SimOrder, status: str, t: float, event: str | None = None) -> None:
        super()._transition(order, status, t, event)
        if status not in ("canceled", "expired", "rejected"):
            return
        for leg_id in order.legs:
            leg = self.orders[leg_id]
            if leg.status == "held":
                self._transition(leg, "canceled", t)
        if order.oco_with is not None:
            self._cancel_now(self.orders[order.oco_with], t)
