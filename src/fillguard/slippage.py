"""Slippage: how much worse than expected a fill was, in percent.

Positive slippage is always *worse* for us: paying more on a buy, receiving less on a sell.
Decimal throughout, so the figure is exact before rounding.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from enum import Enum

from fillguard.errors import InvalidInputError
from fillguard.snapshot import to_decimal

__all__ = ["SLIPPAGE_QUANTUM", "compute_slippage_pct", "normalize_side", "slippage_exceeded"]

#: Slippage is reported to 4 decimal places (basis points of a percent).
SLIPPAGE_QUANTUM = Decimal("0.0001")


def normalize_side(side: object) -> str:
    """``"buy"`` or ``"sell"`` from a string in any case or an enum such as ``OrderSide.BUY``."""
    value = side.value if isinstance(side, Enum) else side
    if isinstance(value, str):
        text = value.strip().lower()
        # str(OrderSide.BUY) is "OrderSide.BUY"; accept that spelling too.
        text = text.rsplit(".", 1)[-1]
        if text in ("buy", "sell"):
            return text
    raise InvalidInputError("side", f"must be 'buy' or 'sell', got {side!r}")


def compute_slippage_pct(
    side: object, expected_price: object, fill_price: object
) -> Decimal | None:
    """Slippage in percent of ``expected_price``, positive when the fill is worse.

    buy: ``(fill - expected) / expected * 100``; sell: ``(expected - fill) / expected * 100``;
    rounded half-even to 4 places. None when a price is missing/invalid or expected <= 0.
    Raises :class:`InvalidInputError` for a side that is neither buy nor sell.
    """
    direction = normalize_side(side)
    expected = to_decimal(expected_price)
    fill = to_decimal(fill_price)
    if expected is None or fill is None or expected <= 0:
        return None
    diff = fill - expected if direction == "buy" else expected - fill
    return (diff / expected * 100).quantize(SLIPPAGE_QUANTUM, rounding=ROUND_HALF_EVEN)


def slippage_exceeded(pct: Decimal | None, threshold: Decimal) -> bool:
    """Whether ``pct`` is strictly above ``threshold`` (unknown slippage never exceeds)."""
    return pct is not None and pct > threshold
