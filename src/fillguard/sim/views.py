"""What REST shows of the broker: orders, positions and the account, with read faults applied.

The truth (events, the ledger) is always the complete current order. REST reads may differ, as
a real broker's do: a stale version (``stale_read``), ``filled_avg_price`` still null
(``missing_price``), a half-written record right after an execution (``half_update``), a first
look-up refused (``lookup_refused``), a 404 for a while after acceptance (``not_found_lag``),
and positions that lag fills (``position_lag_seconds``, ``position_long_lag``).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from fillguard.sim import wire
from fillguard.sim.orders import Execution, SimOrder, SimPosition
from fillguard.sim.replace import Replacing
from fillguard.sim.state import SimError

__all__ = ["HALF_UPDATE_VARIANTS", "Views"]

HALF_UPDATE_VARIANTS = ("status_first", "qty_first", "price_last")
_REFUSALS = {
    403: (40310000, "forbidden"),
    401: (40110000, "request is not authorized"),
}


class Views(Replacing):
    """REST reads of the broker: every read advances time first and sees "now"."""

    def get_order(self, order_id: str, *, stale: bool = False) -> dict[str, Any]:
        """The order as JSON; ``stale`` shows it as it was ``stale_read_seconds`` ago (404 if new)."""
        with self.lock:
            self.advance()
            order = self.orders.get(order_id)
            if order is None:
                raise SimError(404, 40410000, "order not found")
            return self._read(order, stale=stale)

    def get_order_by_client_id(
        self, client_order_id: str, *, stale: bool = False
    ) -> dict[str, Any]:
        """The order with this client_order_id as JSON (404 if none)."""
        with self.lock:
            self.advance()
            order_id = self.by_client_id.get(client_order_id)
            if order_id is None:
                raise SimError(404, 40410000, "order not found")
            return self._read(self.orders[order_id], stale=stale)

    def _read(self, order: SimOrder, *, stale: bool) -> dict[str, Any]:
        t = self.t()
        faults = self.faults
        first = not order.lookup_refused_done
        order.lookup_refused_done = True
        if first and self.hits(order, "lookup_refused", faults.lookup_refused_rate):
            status = self.draw(order, "lookup_refused_variant").choice((403, 401))
            code, message = _REFUSALS[status]
            raise SimError(status, code, message, fault="lookup_refused")
        if self.hidden(order, t):
            raise SimError(404, 40410000, "order not found", fault="not_found_lag")
        if stale and faults.stale_read_seconds > 0:
            cutoff = t - faults.stale_read_seconds
            for vt, snap in reversed(order.versions):
                if vt <= cutoff:
                    return dict(snap)
            raise SimError(404, 40410000, "order not found")
        return self._view(order, t)

    def _view(self, order: SimOrder, t: float) -> dict[str, Any]:
        view = wire.order_json(
            order, hide_price=order.hide_price_until is not None and t < order.hide_price_until
        )
        base = order.half_base
        faults = self.faults
        if (
            base is None
            or t >= base[0] + faults.half_update_seconds
            or not self.hits(order, "half_update", faults.half_update_rate)
        ):
            return view
        previous = base[1]
        variant = self.half_update_variant(order)
        if variant == "status_first":
            # Status and price written, the quantity not yet.
            zero = self.draw(order, "half_update_qty").random() < 0.5
            view["filled_qty"] = "0" if zero else None
            view["filled_at"] = None
        elif variant == "qty_first":
            # The quantity written, status and price still the previous version's.
            for key in ("status", "filled_avg_price", "filled_at"):
                view[key] = previous[key]
        else:
            view["filled_avg_price"] = None  # price_last
        self.read_faults.add("half_update")
        return view

    def half_update_variant(self, order: SimOrder) -> str:
        """Which half-written record ``order`` shows (drawn once per order)."""
        return self.draw(order, "half_update_variant").choice(HALF_UPDATE_VARIANTS)

    def list_orders(self) -> list[SimOrder]:
        """Every order REST lists (orders in their not_found_lag window are left out), oldest first."""
        with self.lock:
            self.advance()
            t = self.t()
            return [o for o in self.orders.values() if not self.hidden(o, t)]

    def scan_orders(self, status: str, *, newest_first: bool) -> Iterator[SimOrder]:
        """Orders REST lists of ``status`` (open, closed, all), newest or oldest first, lazily:
        a listing reads as many as it answers (plus what its filters skip)."""
        self.advance()
        t = self.t()
        return (
            o for o in self.orders.scan(status, newest_first=newest_first) if not self.hidden(o, t)
        )

    def order_view(self, order: SimOrder) -> dict[str, Any]:
        """An order as a REST answer shows it now (missing price and half update applied)."""
        with self.lock:
            return self._view(order, self.t())

    def nest(self, view: dict[str, Any]) -> dict[str, Any]:
        """``view`` with its order's legs nested under ``legs`` (as REST shows them now)."""
        with self.lock:
            order = self.orders.get(str(view.get("id")))
            if order is None or not order.legs:
                return view
            t = self.t()
            return {**view, "legs": [self._view(self.orders[i], t) for i in order.legs]}

    def position_view(self, position: SimPosition, price: Decimal) -> dict[str, Any]:
        """A position's JSON, ``qty_available`` less what open closing orders hold."""
        with self.lock:
            return wire.position_json(
                position,
                price,
                available=self.qty_available(position.symbol, position.qty),
                asset=self.config.assets.find(position.symbol),
            )

    def fill_executions(self) -> list[Execution]:
        """Executions as FILL activities list them (not those of orders REST does not show yet)."""
        with self.lock:
            self.advance()
            t = self.t()
            hidden = {o.id for o in self.orders.values() if self.hidden(o, t)}
            return [e for e in self.executions if e.order_id not in hidden]

    def position_rows(self) -> list[tuple[SimPosition, Decimal]]:
        """Open positions as REST shows them (lagging by ``position_lag_seconds``, and some
        executions by ``position_long_lag_seconds`` more), with prices.

        The view is the newest position entry whose time to be seen has come: entries are
        cumulative, so a later visible entry also shows a lagging execution before it.
        """
        with self.lock:
            self.advance()
            t = self.t()
            lag = self.faults.position_lag_seconds
            rows: list[tuple[SimPosition, Decimal]] = []
            for symbol, position in self.positions.items():
                qty, avg = Decimal(0), Decimal(0)
                for entry in reversed(self._position_history.get(symbol, [])):
                    if entry.t + lag + entry.extra_lag <= t:
                        qty, avg = entry.qty, entry.avg_entry_price
                        break
                if qty != 0:
                    view = SimPosition(symbol, position.asset_id, qty, avg)
                    rows.append((view, self.prices.price(symbol, t)))
            return rows

    def price(self, symbol: str) -> Decimal:
        """The current price of ``symbol``."""
        with self.lock:
            return self.prices.price(symbol, self.t())

    def set_price(self, symbol: str, price: Decimal) -> None:
        """Pin ``symbol``'s price from now on; resting limit orders are checked at once."""
        with self.lock:
            self.advance()
            t = self.t()
            self.prices.set_price(symbol, t, price)
            self._check_limits(t)

    def account_view(self) -> dict[str, Any]:
        """The account as JSON."""
        with self.lock:
            self.advance()
            t = self.t()
            market_value = sum(
                (p.qty * self.prices.price(s, t) for s, p in self.positions.items()), Decimal(0)
            )
            long_mv = sum(
                (p.qty * self.prices.price(s, t) for s, p in self.positions.items() if p.qty > 0),
                Decimal(0),
            )
            return wire.account_json(
                self.config,
                cash=self.cash,
                buying_power=self.buying_power(),
                long_market_value=long_mv,
                short_market_value=market_value - long_mv,
            )

    def ledger(self) -> dict[str, Any]:
        """Ground truth: every order with its POSTs, PATCHes and executions, positions and cash.

        Orders are the true current JSON (no read fault, timestamps always ``micro``).
        """
        with self.lock:
            self.advance()
            orders = []
            for order in self.orders.values():
                orders.append(
                    {
                        "order": wire.order_json(order),
                        "posts": self.posts.get(order.client_order_id, []),
                        "patches": self.patches.get(order.id, []),
                        "executions": [wire.execution_json(e) for e in order.executions],
                    }
                )
            unmatched = {k: v for k, v in self.posts.items() if k not in self.by_client_id}
            unmatched_patches = {k: v for k, v in self.patches.items() if k not in self.orders}
            return {
                "t": self.t(),
                "cash": wire.num(self.cash),
                "starting_cash": wire.num(self.config.starting_cash),
                "orders": orders,
                "posts_without_order": unmatched,
                "patches_without_order": unmatched_patches,
                "positions": {
                    s: {"qty": wire.num(p.qty), "avg_entry_price": wire.num(p.avg_entry_price)}
                    for s, p in self.positions.items()
                },
                "events": self.events.total,
            }
