"""Replace (``PATCH /v2/orders/{id}``), by the client or by "another client of the account".

A replace is a request, like a cancel: the original goes ``pending_replace`` at once and its
replacement (a new order, ``replaces`` = the original's id) is created and held in ``accepted``.
After the replace latency, if the original is still ``pending_replace``, it becomes ``replaced``
(``replaced_by`` set) and the replacement routes normally. If a fill completes the original
first, the original stays ``filled`` and the replacement is ``canceled``. A fill may land on the
original while it is ``pending_replace``; it keeps the shares it filled.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fillguard.sim import wire
from fillguard.sim.legs import Legs
from fillguard.sim.orders import REPLACEABLE, TERMINAL, SimOrder
from fillguard.sim.prices import round_price
from fillguard.sim.state import Action, DuplicateClientOrderIdError, OrderRequest, SimError

__all__ = ["ReplaceRequest", "Replacing"]


@dataclass(frozen=True, kw_only=True, slots=True)
class ReplaceRequest:
    """A validated PATCH body: each field given, or None to keep the original's."""

    qty: Decimal | None = None
    limit_price: Decimal | None = None
    time_in_force: str | None = None
    client_order_id: str | None = None
    stop_price: Decimal | None = None
    trail: Decimal | None = None  # a trailing stop's trail_price or trail_percent


def _invalid(message: str) -> SimError:
    return SimError(422, 40010001, message)


class Replacing(Legs):
    """Replace orders: the PATCH, its completion, and the external_replace fault."""

    def _run(self, action: Action) -> None:
        order = self.orders.get(action.order_id)
        if action.kind == "replace_done":
            if order is not None:
                self._replace_done(order, action.due)
        elif action.kind == "external_replace":
            if order is not None:
                self._external_replace(order, action.due)
        elif action.kind == "outside_trade":
            if order is not None:
                self._outside_trade(order, action.due)
        else:
            super()._run(action)

    def replace(self, order_id: str, change: ReplaceRequest) -> SimOrder:
        """Request a replace of an open order; returns the replacement (held in ``accepted``).

        Raises :class:`SimError`: 404 unknown, 422 not replaceable or invalid, 403 funds.
        """
        with self.lock:
            self.advance()
            t = self.t()
            return self._replace(self._known(order_id), change, t, external=False)

    def _replace(
        self, old: SimOrder, change: ReplaceRequest, t: float, *, external: bool
    ) -> SimOrder:
        if old.awaiting_replace:
            # A replacement held in accepted is not live yet: replacing it again would leave
            # two orders for one intent should its original fill first.
            raise SimError(
                422, 42210000, "order is pending until the order it replaces is replaced"
            )
        if old.status not in REPLACEABLE:
            if old.status in TERMINAL:
                raise SimError(422, 42210000, f'order is already in "{old.status}" state')
            raise SimError(422, 42210000, f"order is {old.status.replace('_', ' ')}")
        if old.legs or old.parent_id:
            raise _invalid(
                "replacing bracket, oco and oto orders is not supported by the simulator"
            )
        qty = change.qty if change.qty is not None else old.remaining_qty
        tif = change.time_in_force or old.time_in_force
        if old.type == "market" and change.limit_price is not None:
            raise _invalid("market orders require no stop or limit price")
        if old.type in ("stop", "trailing_stop") and change.limit_price is not None:
            raise _invalid(f"{old.type} orders require no limit price")
        if old.type not in ("stop", "stop_limit") and change.stop_price is not None:
            raise _invalid("stop_price is only for stop and stop_limit orders")
        if old.type != "trailing_stop" and change.trail is not None:
            raise _invalid("trail is only for trailing_stop orders")
        if old.notional is not None and change.qty is not None:
            raise _invalid("a notional order's qty cannot be replaced")
        stop = change.stop_price if change.stop_price is not None else old.stop_price
        trail_price, trail_percent = old.trail_price, old.trail_percent
        if change.trail is not None:
            if trail_price is not None:
                trail_price = change.trail
            else:
                trail_percent = change.trail
        if old.type == "trailing_stop":
            stop = None  # the replacement's trail starts afresh from the market
        limit = change.limit_price if change.limit_price is not None else old.limit_price
        if qty != qty.to_integral_value() and tif != "day":
            raise _invalid("fractional orders must be DAY orders")
        if change.client_order_id is not None:
            coid = change.client_order_id
            existing = self.by_client_id.get(coid)
            if existing is not None:
                raise DuplicateClientOrderIdError(self.orders[existing])
        else:
            coid = self._mint_client_order_id(self._external_coids if external else None)
        req = OrderRequest(
            symbol=old.symbol,
            side=old.side,
            type=old.type,
            time_in_force=tif,
            qty=qty,
            limit_price=limit,
            client_order_id=coid,
            extended_hours=old.extended_hours,
            stop_price=stop,
            trail_price=trail_price,
            trail_percent=trail_percent,
            notional=old.notional,
            position_intent=old.position_intent,
        )
        # The original's hold is released by the replace: check funds without it.
        self._check_funds(req, exclude=old.id)
        self._transition(old, "pending_replace", t)
        new = self._new_order(req, coid, t, external=external, replaces=old.id)
        new.awaiting_replace = True
        new.qty_defaulted = change.qty is None
        old.replacing_with = new.id
        stream = "external_replace_latency" if external else "replace_latency"
        latency = self.config.replace_latency.sample(self.rng.stream(stream))
        self._schedule(t + latency, "replace_done", old.id)
        return new

    def _replace_done(self, old: SimOrder, t: float) -> None:
        if old.status != "pending_replace" or old.replacing_with is None:
            return  # a fill completed it first (and canceled the replacement)
        new = self.orders[old.replacing_with]
        old.replacing_with = None
        old.replaced_by = new.id
        self._drop_planned_fills(old)
        self._transition(old, "replaced", t)
        new.awaiting_replace = False
        if new.status != "accepted":
            return  # the client canceled the replacement meanwhile
        if new.qty_defaulted:
            # "The rest": fills that landed on the original while pending are not sold twice.
            new.qty = old.remaining_qty
        stream = "external_route" if isinstance(self._order_no[new.id], str) else "route"
        self._schedule(
            t + self.config.route_latency.sample(self.rng.stream(stream)), "route", new.id
        )

    def _route(self, order: SimOrder, t: float) -> None:
        super()._route(order, t)
        if (
            isinstance(self._order_no.get(order.id), int)  # the client's orders only
            and order.status != "rejected"
            and self.hits(order, "outside_trade", self.faults.outside_trade_rate)
        ):
            self._schedule(t, "outside_trade", order.id)

    def _outside_trade(self, order: SimOrder, t: float) -> None:
        """Another client of the account buys a little of ``order``'s symbol at market."""
        coid = self._mint_client_order_id(self._external_coids)
        qty = Decimal(self.faults.outside_trade_qty)
        req = OrderRequest(
            symbol=order.symbol,
            side="buy",
            type="market",
            time_in_force="day",
            qty=qty,
            limit_price=None,
            client_order_id=coid,
            extended_hours=False,
        )
        body = {"symbol": order.symbol, "side": "buy", "type": "market", "qty": wire.num(qty)}
        record = {"t": t, "received_at": wire.ts(self._wall(t)), "body": body, "source": "outside"}
        try:
            self._check_funds(req)
        except SimError as err:
            self.posts.setdefault(coid, []).append({**record, "outcome": f"refused:{err.status}"})
            return
        self.posts.setdefault(coid, []).append({**record, "outcome": "accepted"})
        new = self._new_order(req, coid, t, external=True)
        latency = self.config.route_latency.sample(self.rng.stream("external_route"))
        self._schedule(t + latency, "route", new.id)

    def _external_replace(self, order: SimOrder, t: float) -> None:
        """Another client of the account moves a resting limit to the price (it fills soon)."""
        if (
            order.type != "limit"
            or order.status not in ("new", "partially_filled")
            or self._fills_pending.get(order.id)
            or self._crosses(order, t)
        ):
            return
        price = round_price(self.prices.price(order.symbol, t))
        body = {"limit_price": wire.num(price)}
        try:
            new = self._replace(order, ReplaceRequest(limit_price=price), t, external=True)
        except SimError as err:
            self._record_patch(order.id, body, f"refused:{err.status}", source="external", at=t)
            return
        self._record_patch(order.id, body, "accepted", new_order_id=new.id, source="external", at=t)

    def record_patch(
        self, order_id: str, body: Any, outcome: str, *, new_order_id: str | None = None
    ) -> None:
        """Ground truth: remember every PATCH /v2/orders/{id} received, per order id."""
        with self.lock:
            self._record_patch(order_id, body, outcome, new_order_id=new_order_id)

    def _record_patch(
        self,
        order_id: str,
        body: Any,
        outcome: str,
        *,
        new_order_id: str | None = None,
        source: str = "client",
        at: float | None = None,
    ) -> None:
        t = self.t() if at is None else at
        self.patches.setdefault(order_id, []).append(
            {
                "t": t,
                "received_at": wire.ts(self._wall(t)),
                "body": body,
                "outcome": outcome,
                "new_order_id": new_order_id,
                "source": source,
            }
        )
