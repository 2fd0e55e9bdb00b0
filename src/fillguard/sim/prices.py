"""A seeded price path per symbol: a random walk in fixed ticks, the same for the same seed.

Bounded in memory and time: a symbol's walk starts at the tick it is first read (a symbol first
seen after a day does not walk a day of ticks), and only the last ``window_ticks`` prices are
kept; a read of an older tick answers the oldest price kept.
"""

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
        window_ticks: int = 4096,
    ) -> None:
        if tick_seconds <= 0 or not math.isfinite(tick_seconds):
            raise ValueError("tick_seconds must be > 0")
        self.seed = seed
        self.tick_seconds = tick_seconds
        self.volatility = volatility
        self._initial = dict(initial or {})
        if window_ticks < 1:
            raise ValueError("window_ticks must be >= 1")
        self.window_ticks = window_ticks
        self._paths: dict[str, list[Decimal]] = {}
        # The tick of each path's first kept price.
        self._base: dict[str, int] = {}
        self._rngs: dict[str, random.Random] = {}
        self._last: dict[str, tuple[int, Decimal]] = {}  # symbol -> (tick, price) last read

    def start_price(self, symbol: str) -> Decimal:
        """The price at the tick the symbol is first read."""
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
            self._base[symbol] = tick
            self._rngs[symbol] = random.Random(f"fillguard-price/{self.seed}/{symbol}")
        base = self._base[symbol]
        if tick < base:
            return path[0]  # older than what is kept
        rng = self._rngs[symbol]
        while base + len(path) <= tick:
            step = math.exp(rng.gauss(0.0, self.volatility))
            nxt = round_price(path[-1] * Decimal(repr(step)))
            path.append(max(nxt, _SUB_CENT))
            if len(path) >= 2 * self.window_ticks:
                drop = len(path) - self.window_ticks
                del path[:drop]
                base += drop
                self._base[symbol] = base
        return path[tick - base]

    def kept_ticks(self) -> int:
        """How many prices are held, over every symbol (bounded by the window)."""
        return sum(len(p) for p in self._paths.values())

    def price(self, symbol: str, t: float) -> Decimal:
        """The price of ``symbol`` at time ``t``."""
        tick = self.tick_of(t)
        last = self._last.get(symbol)
        if last is not None and last[0] == tick:
            return last[1]  # a price tick checks every resting order against one price
        price = self.price_at_tick(symbol, tick)
        self._last[symbol] = (tick, price)
        return price

    def set_price(self, symbol: str, t: float, price: Decimal) -> None:
        """Pin the price from the tick of ``t`` on; the walk continues from it."""
        # Bounded: round_price raises InvalidOperation on a huge price (1e40), a 500 at the API.
        if not price.is_finite() or not 0 < price <= _MAX_PRICE:
            raise ValueError(f"price must be > 0 and at most {_MAX_PRICE}")
        rounded = round_price(price)
        if rounded <= 0:  # e.g. 0.00001 rounds to a price of 0
            raise ValueError(f"price must be at least {_SUB_CENT}")
        tick = self.tick_of(t)
        self._last.pop(symbol, None)
        self.price_at_tick(symbol, tick)
        path = self._paths[symbol]
        base = self._base[symbol]
        if tick < base:
            path[:] = [rounded]
            self._base[symbol] = tick
            return
        del path[tick - base :]
        path.append(rounded)
