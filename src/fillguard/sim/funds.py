"""Funds and quantity checks at submit: buying power, held shares, assets' rules, intent.

Buying power is 1x equity less the gross market value of positions and what open orders
hold: cash, less twice the short market value (a short's proceeds are its collateral), less
open buys and opening sells at their reference price (limit, stop, or the price plus 3 %),
less open notional buys' notional. A closing order may not exceed the position's quantity
less what open orders on the same side already hold (``qty_available``); an order that would
open a short needs a shortable asset, whole shares and the account's shorting switched on.
"""

from __future__ import annotations

from decimal import Decimal

from fillguard.sim import wire
from fillguard.sim.assets import Asset
from fillguard.sim.orders import SimOrder
from fillguard.sim.state import BrokerState, OrderRequest, SimError

__all__ = ["Funds"]

_MARKET_HOLD = Decimal("1.03")


def _forbidden(message: str, **extra: str | None) -> SimError:
    return SimError(403, 40310000, message, **extra)


class Funds(BrokerState):
    """Holds, buying power and the checks a submit passes before an order exists."""

    def asset(self, symbol: str) -> Asset:
        """The asset of ``symbol``, or Alpaca's 422 for a symbol it does not trade."""
        asset = self.config.assets.find(symbol)
        if asset is None:
            raise SimError(422, 40010001, f"could not find us_equity '{symbol}'")
        return asset

    def _holds(self, o: SimOrder, exclude: str | None) -> bool:
        # A replacement held in accepted holds nothing until its original is replaced; a held
        # leg nothing until its parent fills; of an active oco pair only one leg holds.
        if not o.is_open or o.awaiting_replace or o.id == exclude or o.status == "held":
            return False
        if o.oco_with is not None and o.oco_with < o.id:
            sibling = self.orders.get(o.oco_with)
            return sibling is None or not sibling.is_open
        return True

    def _held(self, symbol: str, side: str, exclude: str | None = None) -> Decimal:
        return sum(
            (
                o.remaining_qty
                for o in self.orders.open_orders()
                if o.symbol == symbol and o.side == side and self._holds(o, exclude)
            ),
            Decimal(0),
        )

    def qty_available(self, symbol: str, qty: Decimal) -> Decimal:
        """A position's quantity less what open closing orders hold (never below 0)."""
        with self.lock:
            side = "sell" if qty > 0 else "buy"
            return max(Decimal(0), abs(qty) - self._held(symbol, side))

    def _reference(self, o: SimOrder | OrderRequest, t: float) -> Decimal:
        return o.limit_price or o.stop_price or self.prices.price(o.symbol, t) * _MARKET_HOLD

    def _opens(self, o: SimOrder) -> bool:
        # A buy always holds buying power; a sell only when it opens a short.
        return o.side == "buy" or o.position_intent == "sell_to_open"

    def _live_hold(self, o: SimOrder, exclude: str | None, t: float) -> Decimal:
        if not (self._opens(o) and self._holds(o, exclude)):
            return Decimal(0)
        if o.notional is not None and not o.executions:
            return o.notional
        return o.remaining_qty * self._reference(o, t)

    def buying_power(self, exclude: str | None = None) -> Decimal:
        """1x: cash less twice the short market value, less what open orders hold."""
        with self.lock:
            t = self.t()
            # Running totals in the store: O(open market orders and oco pairs), not O(orders).
            held = self.orders.held_by_buys(
                lambda s: self.prices.price(s, t),
                exclude,
                lambda o: self._live_hold(o, exclude, t),
            )
            short_mv = sum(
                (-p.qty * self.prices.price(s, t) for s, p in self.positions.items() if p.qty < 0),
                Decimal(0),
            )
            return max(Decimal(0), self.cash - 2 * short_mv - held).quantize(Decimal("0.01"))

    def cost_basis(self, req: OrderRequest) -> Decimal:
        """What ``req`` would hold: its notional, or qty at its limit/stop or the price plus 3 %."""
        if req.notional is not None:
            return req.notional.quantize(Decimal("0.01"))
        return (req.qty * self._reference(req, self.t())).quantize(Decimal("0.01"))

    def position_intent(self, req: OrderRequest) -> str:
        """The intent Alpaca labels ``req`` with: opening or closing, from the position now."""
        if req.position_intent is not None:
            return req.position_intent
        position = self.positions.get(req.symbol)
        qty = position.qty if position else Decimal(0)
        if req.side == "buy":
            return "buy_to_close" if qty < 0 else "buy_to_open"
        return "sell_to_close" if qty > 0 else "sell_to_open"

    def _check_asset(self, req: OrderRequest, asset: Asset) -> None:
        config = self.account_config
        if config.get("suspend_trade"):
            raise _forbidden("trading is suspended for this account by the user")
        fractional = req.notional is not None or req.qty != req.qty.to_integral_value()
        if fractional and not asset.fractionable:
            raise SimError(422, 40010001, f'asset "{asset.symbol}" is not fractionable')
        if fractional and not config.get("fractional_trading", True) and not asset.is_crypto:
            raise _forbidden("fractional trading is disabled for this account")
        if req.notional is None and asset.min_order_size and req.qty < asset.min_order_size:
            raise SimError(
                422,
                40010001,
                f"qty must be >= {wire.num(asset.min_order_size)} for {asset.symbol}",
            )
        increment = asset.min_trade_increment
        if req.notional is None and increment and req.qty % increment != 0:
            raise SimError(422, 40010001, f"qty must be a multiple of {wire.num(increment)}")
        tick = asset.price_increment
        for name, price in (("limit_price", req.limit_price), ("stop_price", req.stop_price)):
            if tick and price is not None and price % tick != 0:
                raise SimError(
                    422, 40010001, f"invalid {name} {price}: price increment is {wire.num(tick)}"
                )

    def _check_funds(self, req: OrderRequest, exclude: str | None = None) -> None:
        asset = self.asset(req.symbol)
        self._check_asset(req, asset)
        position = self.positions.get(req.symbol)
        pos_qty = position.qty if position else Decimal(0)
        if (req.side == "sell" and pos_qty > 0) or (req.side == "buy" and pos_qty < 0):
            # Closing side: Alpaca refuses to flip a position in one order.
            held = self._held(req.symbol, req.side, exclude)
            available = abs(pos_qty) - held
            wanted = req.qty
            if req.notional is not None:
                wanted = req.notional / self.prices.price(req.symbol, self.t())
            if wanted > available:
                shown = wire.num(max(available, Decimal(0)))
                raise _forbidden(
                    f"insufficient qty available for order (requested: {wire.num(wanted)}, "
                    f"available: {shown})",
                    available=shown,
                    existing_qty=wire.num(abs(pos_qty)),
                    held_for_orders=wire.num(held),
                    symbol=req.symbol,
                )
            return
        if req.side == "sell":
            self._check_short(req, asset)
        cost = self.cost_basis(req)
        bp = self.buying_power(exclude)
        if cost > bp:
            raise _forbidden(
                "insufficient buying power", buying_power=wire.num(bp), cost_basis=wire.num(cost)
            )

    def _check_short(self, req: OrderRequest, asset: Asset) -> None:
        if asset.is_crypto:
            raise _forbidden(
                f"insufficient balance for {asset.symbol.split('/')[0]} "
                f"(requested: {wire.num(req.qty)}, available: 0)"
            )
        if not self.config.allow_shorting or self.account_config.get("no_shorting"):
            raise _forbidden("account is not allowed to short")
        if req.notional is not None or req.qty != req.qty.to_integral_value():
            raise _forbidden("fractional orders cannot be sold short")
        if not asset.shortable:
            raise _forbidden(f"asset {asset.symbol} is not shortable")
        if not asset.easy_to_borrow:
            raise _forbidden(f"asset {asset.symbol} is not available to short (hard to borrow)")
