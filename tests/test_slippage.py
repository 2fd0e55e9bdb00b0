"""Slippage: formula, sign convention, rounding and the threshold."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pytest
from alpaca.trading.enums import OrderSide
from hypothesis import given, settings
from hypothesis import strategies as st

from fillguard.errors import InvalidInputError
from fillguard.slippage import compute_slippage_pct, normalize_side, slippage_exceeded


@pytest.mark.parametrize(
    ("side", "expected", "fill", "pct"),
    [
        ("buy", "100", "101", Decimal("1.0000")),
        ("buy", "100", "99", Decimal("-1.0000")),
        ("sell", "100", "99", Decimal("1.0000")),
        ("sell", "100", "101", Decimal("-1.0000")),
        ("BUY", 189.12, "189.50", Decimal("0.2009")),
        (OrderSide.SELL, Decimal("3"), Decimal("2"), Decimal("33.3333")),
        ("OrderSide.BUY", "3", "4", Decimal("33.3333")),
        ("buy", "100", "100.00005", Decimal("0.0000")),  # half-even: 0.00005 -> 0.0000
        ("buy", "100", "100.00015", Decimal("0.0002")),  # half-even: 0.00015 -> 0.0002
    ],
)
def test_known_values(side: Any, expected: Any, fill: Any, pct: Decimal) -> None:
    """Slippage is positive when worse for us and rounds half-even to 4 places."""
    result = compute_slippage_pct(side, expected, fill)
    assert result == pct
    assert result is not None
    assert result.as_tuple().exponent == -4


@pytest.mark.parametrize(
    ("expected", "fill"), [(None, "1"), ("1", None), ("0", "1"), ("-5", "1"), ("abc", "1")]
)
def test_missing_or_invalid_prices_give_none(expected: Any, fill: Any) -> None:
    """A missing price or a non-positive expected price gives None."""
    assert compute_slippage_pct("buy", expected, fill) is None


@pytest.mark.parametrize("side", ["hold", "", None, 1, "short"])
def test_bad_side_is_refused(side: Any) -> None:
    """A side other than buy/sell raises InvalidInputError."""
    with pytest.raises(InvalidInputError):
        compute_slippage_pct(side, "1", "1")


def test_normalize_side() -> None:
    """Sides in any case or enum form normalise to buy/sell."""
    assert normalize_side(OrderSide.BUY) == "buy"
    assert normalize_side(" Sell ") == "sell"


def test_threshold_is_strict() -> None:
    """Exceeded means strictly above; unknown slippage never exceeds."""
    assert not slippage_exceeded(Decimal("1.0"), Decimal("1.0"))
    assert slippage_exceeded(Decimal("1.0001"), Decimal("1.0"))
    assert not slippage_exceeded(Decimal("-5"), Decimal("1.0"))
    assert not slippage_exceeded(None, Decimal(0))


_prices = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(1_000_000), places=6)


@settings(max_examples=200, deadline=None)
@given(
    side=st.sampled_from(["buy", "sell", "BUY", "Sell", OrderSide.BUY, OrderSide.SELL]),
    expected=_prices,
    fill=_prices,
)
def test_property_slippage_formula(side: Any, expected: Decimal, fill: Decimal) -> None:
    """Property 8: the result equals the formula exactly, signed by side."""
    result = compute_slippage_pct(side, expected, fill)
    is_buy = normalize_side(side) == "buy"
    diff = fill - expected if is_buy else expected - fill
    want = (diff / expected * 100).quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN)
    assert result == want
    # Sign: paying more on a buy or receiving less on a sell is never negative slippage.
    if (is_buy and fill > expected) or (not is_buy and fill < expected):
        assert result is not None
        assert result >= 0
    if fill == expected:
        assert result == 0
    mirrored = compute_slippage_pct("sell" if is_buy else "buy", expected, fill)
    assert mirrored == -want
