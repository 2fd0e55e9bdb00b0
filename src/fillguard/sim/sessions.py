"""Market sessions in the broker: when orders route and fill, when day orders expire.

Only with ``BrokerConfig(market_hours=True)``; without it the market never closes (the
tests' default). Equities trade in the regular session, ``extended_hours`` limit day orders
also pre-market and after-hours; crypto trades around the clock. An order submitted while
its market is closed stays ``accepted`` and routes at the next open; a planned fill that
would land while closed waits for the next open. Day orders expire at the close (an
extended-hours one at the end of after-hours). ``opg`` orders are accepted outside
09:28-19:00 ET and execute at the open (unfilled, they expire); ``cls`` orders are accepted
outside 15:50-19:00 ET and execute at the close.
"""

from __future__ import annotations

from datetime import datetime, time

from fillguard.sim.lifecycle import Lifecycle
from fillguard.sim.market_clock import NEW_YORK, next_close, next_open, session_at
from fillguard.sim.orders import SimOrder
from fillguard.sim.state import Action, OrderRequest, SimError

__all__ = ["Sessions"]

_OPG_CUTOFF, _CLS_CUTOFF, _AUCTIONS_REOPEN = time(9, 28), time(15, 50), time(19, 0)
# The closing auction starts a second before the close, so its fills (after the fill latency)
# print before it.
_AUCTION_LEAD_SECONDS = 1.0
_AUCTION_EXPIRY_SECONDS = 1.0  # what the closing auction left unfilled expires after it


def _refused(message: str) -> SimError:
    return SimError(422, 42210000, message)


class Sessions(Lifecycle):
    """Gates routing and fills on the market clock; expires day orders at the close."""

    def _sessions_apply(self, order: SimOrder) -> bool:
        return self.config.market_hours and order.asset_class != "crypto"

    def _t_at(self, wall: datetime) -> float | None:
        """Broker time of wall instant ``wall`` (None when the wall clock stands still)."""
        mono_at = getattr(self.clock, "mono_at", None)
        if mono_at is not None:  # a scaled clock: exact, and None when it stands still
            mono: float | None = mono_at(wall)
            return None if mono is None else mono - self._mono0
        return self.t() + (wall - self.clock.now()).total_seconds()

    def _tradable(self, order: SimOrder, t: float) -> bool:
        if not self._sessions_apply(order) or order.auction:
            return True
        session = session_at(self._wall(t))
        return session == "regular" or (session in ("pre", "post") and order.extended_hours)

    def _next_tradable(self, order: SimOrder, t: float) -> float | None:
        return self._t_at(next_open(self._wall(t), extended=order.extended_hours))

    # ------------------------------------------------------------------ submit
    def _check_submit(self, req: OrderRequest, t: float) -> None:
        super()._check_submit(req, t)
        if req.time_in_force not in ("opg", "cls"):
            return
        if not self.config.market_hours:
            raise _refused(
                f"{req.time_in_force} orders need the simulator's market clock "
                "(--clock real|accelerated:N|fixed:ISO)"
            )
        local = self._wall(t).astimezone(NEW_YORK).time()
        if req.time_in_force == "opg" and _OPG_CUTOFF <= local < _AUCTIONS_REOPEN:
            raise _refused("opg orders are not accepted between 9:28am and 7:00pm ET")
        if req.time_in_force == "cls" and _CLS_CUTOFF <= local < _AUCTIONS_REOPEN:
            raise _refused("cls orders are not accepted between 3:50pm and 7:00pm ET")

    def _schedule_expiry(self, order: SimOrder, t: float) -> None:
        if not self._sessions_apply(order):
            super()._schedule_expiry(order, t)
            return
        wall = self._wall(t)
        if order.time_in_force == "day":
            due = self._t_at(next_close(wall, extended=order.extended_hours))
            if due is not None:
                self._schedule(max(due, t), "expire", order.id)
        elif order.time_in_force == "cls":
            close = self._t_at(next_close(wall))
            if close is not None:
                self._schedule(max(close - _AUCTION_LEAD_SECONDS, t), "auction", order.id)
                self._schedule(close + _AUCTION_EXPIRY_SECONDS, "expire", order.id)

    # ------------------------------------------------------------------ actions
    def _run(self, action: Action) -> None:
        order = self.orders.get(action.order_id)
        if order is None or not self._sessions_apply(order):
            super()._run(action)
            return
        if action.kind == "fill" and action.gen == order.fill_gen:
            if not self._tradable(order, action.due):
                later = self._next_tradable(order, action.due)
                if later is not None:  # the fill waits for the next open
                    self._schedule(later, "fill", order.id, action.qty, action.gen)
                return
        elif action.kind == "auction":
            self._auction(order, action.due)
            return
        super()._run(action)

    def _route(self, order: SimOrder, t: float) -> None:
        if order.status != "accepted" or not self._sessions_apply(order):
            super()._route(order, t)
            return
        opening = order.time_in_force == "opg"
        if (opening and session_at(self._wall(t)) != "regular") or not self._tradable(order, t):
            later = self._next_tradable(order, t)
            if later is not None:
                self._schedule(later, "route", order.id)
            return
        super()._route(order, t)
        if order.time_in_force == "cls" and not order.auction:
            self._drop_planned_fills(order)  # it waits for the closing auction
        elif opening and order.status == "new" and not self._fills_pending.get(order.id):
            self._transition(order, "expired", t)  # the opening auction did not fill it

    def _auction(self, order: SimOrder, t: float) -> None:
        order.auction = True
        if order.status in ("new", "partially_filled") and (
            order.type == "market" or self._crosses(order, t)
        ):
            self._plan_fills(order, t)

    def _rests(self, o: SimOrder, t: float) -> bool:
        if o.time_in_force == "cls" and not o.auction:
            return False
        return super()._rests(o, t) and self._tradable(o, t)
