"""Stop, stop-limit and trailing-stop triggers: pure functions of an order and a price.

A buy stop triggers when the price rises to its stop price, a sell stop when it falls to it.
Once triggered, a stop (and a trailing stop) is a market order, a stop-limit a limit order at
its limit price. A trailing stop tracks ``hwm``, the best price since it went live (highest for
a sell, lowest for a buy), and keeps its stop price ``trail_price`` or ``trail_percent`` away
from it, as Alpaca shows it on the order.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_UP, Decimal

from fillguard.sim.orders import SimOrder
from fillguard.sim.prices import round_price

__all__ = ["STOP_TYPES", "marketable", "observe", "trailing_stop_price"]

STOP_TYPES = frozenset({"stop", "stop_limit", "trailing_stop"})


def trailing_stop_price(order: SimOrder, hwm: Decimal) -> Decimal:
    """The stop price of a trailing stop whose best price is ``hwm``."""
    sell = order.side == "sell"
    if order.trail_price is not None:
        offset = order.trail_price
    else:
        assert order.trail_percent is not None
        offset = hwm * order.trail_percent / 100
    raw = hwm - offset if sell else hwm + offset
    # Round away from the market: a sell stop never rises above its trail, a buy's never falls.
    quantum = Decimal("0.01") if raw >= 1 else Decimal("0.0001")
    return max(raw.quantize(quantum, rounding=ROUND_DOWN if sell else ROUND_UP), quantum)


def observe(order: SimOrder, price: Decimal) -> bool:
    """Show ``price`` to a live stop order: move its trail, trigger it. True if it changed."""
    if order.type not in STOP_TYPES or order.triggered:
        return False
    changed = False
    if order.type == "trailing_stop":
        better = (
            order.hwm is None
            or (order.side == "sell" and price > order.hwm)
            or (order.side == "buy" and price < order.hwm)
        )
        if better:
            order.hwm = round_price(price)
            order.stop_price = trailing_stop_price(order, order.hwm)
            changed = True
    stop = order.stop_price
    assert stop is not None
    if (order.side == "buy" and price >= stop) or (order.side == "sell" and price <= stop):
        order.triggered = True
        changed = True
    return changed


def marketable(order: SimOrder, price: Decimal) -> bool:
    """Whether ``order`` may fill at ``price`` now (a stop only once triggered)."""
    if order.type in STOP_TYPES and not order.triggered:
        return False
    if order.limit_price is None:
        return True
    return price <= order.limit_price if order.side == "buy" else price >= order.limit_price
