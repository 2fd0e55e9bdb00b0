"""A seeded price path per symbol: a random walk in fixed ticks, the same for the same seed."""

from __future__ import annotations

import hashlib
import math
import random
from decimal import ROUND_HALF_EVEN, Decimal

__all__ = ["PricePath", "round_price"]

_CENT = Decimal("0.01")
_SUB_CENT = Decimal("0.0001")
_MAX_PRICE = Decimal(10**9)


def round_price(price: Decimal) -> Decimal:
    """Round to the tick Alpaca uses: cents at or above $1, 1/100 cent below."""
    quantum = _CENT if price >= 1 else _SUB_CENT
    return price.quantize(quantum, rounding=ROUND_HALF_EVEN)


class PricePath:
    """Prices for every symbol as a function of tick index: reproducible and lazily extended.

    Each symbol walks from a start price (from ``initial`` or derived from the seed) with
    log-returns of standard deviation ``volatility`` per tick. :meth:`set_price` pins a price
    from a given tick on; the walk continues from there.
    """

    def __init__(
        self,
        seed: int,
        *,
        tick_seconds: float = 1.0,
        volatility: float = 0.001,
        initial: dict[str, Decimal] | None = None,
    ) -> None:
        if tick_seconds <= 0 or not math.isfinite(tick_seconds):
            raise ValueError("tick_seconds must be > 0")
        self.seed = seed
        self.tick_seconds = tick_seconds
        self.volatility = volatility
        self._initial = dict(initial or {})
        self._paths: dict[str, list[Decimal]] = {}
        self._rngs: dict[str, random.Random] = {}

    def start_price(self, symbol: str) -> Decimal:
        """The price at tick 0."""
        if symbol in self._initial:
            return round_price(self._initial[symbol])
        digest = hashlib.sha256(f"{self.seed}/{symbol}".encode()).digest()
        return round_price(Decimal(20 + int.from_bytes(digest[:4], "big") % 480))

    def tick_of(self, t: float) -> int:
        """Tick index at time ``t`` (seconds since the broker started)."""
        return max(0, int(t // self.tick_seconds))

    def price_at_tick(self, symbol: str, tick: int) -> Decimal:
        """The price of ``symbol`` at tick ``tick``."""
        path = self._paths.get(symbol)
        if path is None:
            path = self._paths[symbol] = [self.start_price(symbol)]
            self._rngs[symbol] = random.Random(f"fillguard-price/{self.seed}/{symbol}")
        rng = self._rngs[symbol]
        while len(path) <= tick:
            step = math.exp(rng.gauss(0.0, self.volatility))
            nxt = round_price(path[-1] * Decimal(repr(step)))
            path.append(max(nxt, _SUB_CENT))
        return path[tick]

    def price(self, symbol: str, t: float) -> Decimal:
        """The price of ``symbol`` at time ``t``."""
        return self.price_at_tick(symbol, self.tick_of(t))

    def set_price(self, symbol: str, t: float, price: Decimal) -> None:
        """Pin the price from the tick of ``t`` on; the walk continues from it."""
        # Bounded: round_price raises InvalidOperation on a huge price (1e40), a 500 at the API.
        if not price.is_finite() or not 0 < price <= _MAX_PRICE:
            raise ValueError(f"price must be > 0 and at most {_MAX_PRICE}")
        rounded = round_price(price)
        if rounded <= 0:  # e.g. 0.00001 rounds to a price of 0
            raise ValueError(f"price must be at least {_SUB_CENT}")
        tick = self.tick_of(t)
        self.price_at_tick(symbol, tick)
        path = self._paths[symbol]
        del path[tick:]
        path.append(rounded)
