"""The book: the positions fillguard expects, kept per order id so a fill can never count twice.

For each symbol the expected position is

    baseline + sync adjustments + the signed cumulative filled quantity of every counted order

where an order is *counted* when it was sent after the symbol's baseline was taken (an order
sent before is already inside the baseline). Bookings are cumulative and only grow
(:meth:`Book.book` with a quantity at or below what is booked does nothing), so a replayed
trade, a reconcile and two threads booking the same fill at once all leave one fill booked.
Each order is booked under the broker order's own symbol and side.

A trade *reserves* its ``client_order_id`` before its first POST and *binds* it to the order id
once known; an unbound reservation (an unresolved trade) or an open order keeps the symbol
from being quiet, and a position is compared only when its symbol is quiet.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from fillguard.clock import Clock
from fillguard.results import FillResult

__all__ = ["Book", "Booking", "signed"]


def signed(side: str | None, qty: Decimal) -> Decimal:
    """``qty`` as a position change: positive for a buy, negative for a sell."""
    return -qty if side == "sell" else qty


@dataclass(slots=True)
class Booking:
    """One order in the book (mutable under the book's lock; copies are handed out)."""

    order_id: str
    symbol: str
    side: str
    filled_qty: Decimal
    counted: bool
    open: bool
    client_order_id: str | None = None


@dataclass(frozen=True, slots=True)
class _Reservation:
    symbol: str
    counted: bool


class Book:
    """Expected positions per symbol, thread-safe."""

    def __init__(
        self,
        clock: Clock,
        *,
        on_booked: Callable[[Booking], None] | None = None,
        on_baseline: Callable[[str, Decimal, datetime], None] | None = None,
    ) -> None:
        """``on_booked`` gets a copy of each booking that grew; ``on_baseline`` each symbol's
        counting start (baseline plus syncs) and when it was first taken (the journal)."""
        self._clock = clock
        self._on_booked = on_booked
        self._on_baseline = on_baseline
        self._lock = threading.Lock()
        self._baselines: dict[str, Decimal] = {}
        self._baseline_at: dict[str, datetime] = {}
        self._adjustments: dict[str, Decimal] = {}
        self._orders: dict[str, Booking] = {}
        self._reserved: dict[str, _Reservation] = {}
        self._last_fill: dict[str, float] = {}

    # ------------------------------------------------------------------ baselines
    def baseline(self, symbol: str) -> Decimal | None:
        """The position taken before our first order in ``symbol`` (None if none yet)."""
        with self._lock:
            return self._baselines.get(symbol)

    def set_baseline(self, symbol: str, qty: Decimal) -> bool:
        """Take ``qty`` as the symbol's baseline, if it has none and is quiet; whether it did.

        Orders sent before stay uncounted: whatever they filled is inside ``qty``.
        """
        with self._lock:
            if symbol in self._baselines or not self._quiet(symbol):
                return False
            self._baselines[symbol] = qty
            at = self._baseline_at[symbol] = self._clock.now()
        if self._on_baseline is not None:
            self._on_baseline(symbol, qty, at)
        return True

    def baseline_at(self, symbol: str) -> datetime | None:
        """When ``symbol``'s baseline was taken (wall clock), None without one."""
        with self._lock:
            return self._baseline_at.get(symbol)

    def restore(
        self, baselines: dict[str, tuple[Decimal, datetime]], bookings: Iterable[Booking]
    ) -> None:
        """Start from a journal's record: baselines (syncs included) and bookings.

        Nothing is reported to the sinks: it is already recorded.
        """
        with self._lock:
            for symbol, (qty, at) in baselines.items():
                self._baselines[symbol] = qty
                self._baseline_at[symbol] = at
            for booking in bookings:
                self._orders[booking.order_id] = replace(booking)

    # ------------------------------------------------------------------ orders
    def reserve(self, client_order_id: str, symbol: str) -> bool:
        """Note a trade about to be sent in ``symbol``; returns whether its fills will count."""
        with self._lock:
            existing = self._reserved.get(client_order_id)
            if existing is not None:
                return existing.counted
            counted = symbol in self._baselines
            self._reserved[client_order_id] = _Reservation(symbol, counted)
            return counted

    def release(self, client_order_id: str) -> None:
        """Forget a reservation whose trade placed nothing (not placed, refused)."""
        with self._lock:
            self._reserved.pop(client_order_id, None)

    def book(
        self,
        order_id: str,
        *,
        symbol: str,
        side: str,
        filled_qty: Decimal,
        open_: bool,
        client_order_id: str | None = None,
        counted_like: str | None = None,
    ) -> Decimal:
        """Book ``order_id``'s cumulative ``filled_qty``; returns what was newly added (>= 0).

        The order is found by id (or bound to ``client_order_id``'s reservation); a
        replacement names the order it replaced in ``counted_like`` and counts as that one.
        ``open_`` is whether it may still fill.
        """
        with self._lock:
            booking = self._orders.get(order_id)
            if booking is None:
                counted = self._counted_for(client_order_id, counted_like, symbol)
                if client_order_id is None and counted_like in self._orders:
                    # A replacement belongs to the trade of the order it replaced.
                    client_order_id = self._orders[counted_like].client_order_id
                booking = Booking(
                    order_id, symbol, side, Decimal(0), counted, True, client_order_id
                )
                self._orders[order_id] = booking
            if client_order_id is not None:
                # Bound to its order: the booking now carries whether it counts.
                self._reserved.pop(client_order_id, None)
            gained = filled_qty - booking.filled_qty
            grown = replace(booking, filled_qty=filled_qty) if gained > 0 else None
            if gained > 0:
                booking.filled_qty = filled_qty
                self._last_fill[booking.symbol] = self._clock.monotonic()
            # A stale read may show an order open again: once closed, it stays closed.
            booking.open = booking.open and open_
        if grown is not None and self._on_booked is not None:
            self._on_booked(grown)
        return max(gained, Decimal(0))

    def book_fill(
        self,
        order_id: str,
        fill: FillResult,
        *,
        symbol: str,
        side: str,
        client_order_id: str,
    ) -> None:
        """Book every order of a trade's chain (its result) under its own id, symbol, side.

        ``symbol`` and ``side`` (the trade's) stand in where the broker's record lacks them.
        """
        links = fill.chain or ()
        if not links:
            self.book(
                order_id,
                symbol=(fill.symbol or symbol).upper(),
                side=fill.side or side,
                filled_qty=fill.filled_qty,
                open_=fill.order_open,
                client_order_id=client_order_id,
            )
        for i, link in enumerate(links):
            self.book(
                link.order_id,
                symbol=(link.symbol or symbol).upper(),
                side=link.side or side,
                filled_qty=link.filled_qty,
                open_=fill.order_open if i == len(links) - 1 else False,
                counted_like=None if link.order_id == order_id else order_id,
            )

    def _counted_for(self, coid: str | None, like: str | None, symbol: str) -> bool:
        if like is not None and like in self._orders:
            return self._orders[like].counted
        if coid is not None and coid in self._reserved:
            return self._reserved[coid].counted
        return symbol in self._baselines

    def booking(self, order_id: str) -> Booking | None:
        """A copy of ``order_id``'s booking."""
        with self._lock:
            found = self._orders.get(order_id)
            return None if found is None else replace(found)

    def filled_quantities(self) -> dict[str, Decimal]:
        """Every booked order's cumulative filled quantity, by order id."""
        with self._lock:
            return {order_id: b.filled_qty for order_id, b in self._orders.items()}

    def open_orders(self, symbol: str | None = None) -> list[Booking]:
        """Copies of the orders that may still fill (in ``symbol``, or all)."""
        with self._lock:
            return [
                replace(b)
                for b in self._orders.values()
                if b.open and (symbol is None or b.symbol == symbol)
            ]

    def unbound(self, symbol: str | None = None) -> list[str]:
        """Client order ids reserved but without a known order (unresolved trades)."""
        with self._lock:
            return [
                coid for coid, r in self._reserved.items() if symbol is None or r.symbol == symbol
            ]

    # ------------------------------------------------------------------ positions
    def expected(self, symbol: str) -> Decimal | None:
        """The expected position in ``symbol``, or None before it has a baseline."""
        with self._lock:
            return self._expected(symbol)

    def _expected(self, symbol: str) -> Decimal | None:
        base = self._baselines.get(symbol)
        if base is None:
            return None
        total = base + self._adjustments.get(symbol, Decimal(0))
        for b in self._orders.values():
            if b.counted and b.symbol == symbol:
                total += signed(b.side, b.filled_qty)
        return total

    def sync(self, symbol: str, broker_qty: Decimal) -> Decimal:
        """Make the expected position equal ``broker_qty`` (a confirmed mismatch); the delta."""
        with self._lock:
            expected = self._expected(symbol)
            if expected is None:
                self._baselines[symbol] = broker_qty
                at = self._baseline_at[symbol] = self._clock.now()
                delta = Decimal(0)
            else:
                delta = broker_qty - expected
                self._adjustments[symbol] = self._adjustments.get(symbol, Decimal(0)) + delta
                at = self._baseline_at[symbol]
            start = self._baselines[symbol] + self._adjustments.get(symbol, Decimal(0))
        if self._on_baseline is not None:
            # Recorded as the symbol's counting start: a rebuilt book needs no adjustments.
            self._on_baseline(symbol, start, at)
        return delta

    def last_fill_monotonic(self, symbol: str) -> float | None:
        """When a fill in ``symbol`` was last booked (``clock.monotonic()``)."""
        with self._lock:
            return self._last_fill.get(symbol)

    def is_quiet(self, symbol: str) -> bool:
        """No order of ours in ``symbol`` may still fill, and none is unresolved or in flight."""
        with self._lock:
            return self._quiet(symbol)

    def _quiet(self, symbol: str) -> bool:
        if any(b.open and b.symbol == symbol for b in self._orders.values()):
            return False
        return not any(r.symbol == symbol for r in self._reserved.values())

    def symbols(self) -> list[str]:
        """Every symbol with a baseline."""
        with self._lock:
            return sorted(self._baselines)
