"""The broker's storage at scale: open orders indexed, buy holds as running totals, bounded logs.

:class:`OrderStore` is the ``orders`` dict (every order by id, creation order) that also keeps
an index of open orders and the buying power open limit buys hold, so listing open orders and
reading the account cost O(result), not O(orders ever placed). It never needs to be told what
changed: :class:`~fillguard.sim.orders.SimOrder` marks itself dirty in its store whenever a
field that matters here is set, and the store folds dirty orders in before any read.

:class:`EventLog` keeps the newest trade events (between ``keep`` and twice that), counting
every event ever made; :meth:`OrderStore.retire` trims finished orders' version history once
no stale read can reach back to it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from decimal import Decimal, localcontext
from typing import Any

from fillguard.sim.orders import OPEN, SimOrder

__all__ = ["EventLog", "OrderStore"]

# Exact running sums: qty (9 decimals) x price never reach this many digits.
_PRECISION = 80


class EventLog(list[Any]):
    """A list of the newest events; ``total`` counts every event ever appended."""

    def __init__(self, keep: int | None) -> None:
        super().__init__()
        self.keep = keep
        self.dropped = 0

    @property
    def total(self) -> int:
        """Events ever appended, dropped ones included."""
        return self.dropped + len(self)

    def append(self, item: Any) -> None:
        super().append(item)
        if self.keep is not None and len(self) >= 2 * self.keep:
            drop = len(self) - self.keep
            del self[:drop]
            self.dropped += drop


class OrderStore(dict[str, SimOrder]):
    """Every order by id, with an open-order index and running buy-hold totals."""

    def __init__(self) -> None:
        super().__init__()
        self._open: dict[str, SimOrder] = {}  # creation order
        self._dirty: dict[str, SimOrder] = {}
        # Open buy orders that hold buying power: fixed (at their limit) or priced live.
        self._fixed: dict[str, Decimal] = {}
        self._fixed_total = Decimal(0)
        self._live: dict[str, SimOrder] = {}
        self._finished: deque[tuple[float, SimOrder]] = deque()

    def __setitem__(self, order_id: str, order: SimOrder) -> None:
        super().__setitem__(order_id, order)
        order.store = self
        self._dirty[order_id] = order

    def mark(self, order: SimOrder) -> None:
        """``order`` changed (called by the order itself)."""
        self._dirty[order.id] = order

    # ------------------------------------------------------------------ folding changes in
    def flush(self) -> None:
        """Fold every changed order into the index, the totals and the retirement queue."""
        if not self._dirty:
            return
        dirty, self._dirty = self._dirty, {}
        with localcontext() as ctx:
            ctx.prec = _PRECISION
            for order_id, order in dirty.items():
                if order.status in OPEN:
                    self._open.setdefault(order_id, order)
                else:
                    self._open.pop(order_id, None)
                    if not order.retired:
                        order.retired = True
                        finished_t = order.versions[-1][0] if order.versions else 0.0
                        self._finished.append((finished_t, order))
                self._rehold(order)

    def _rehold(self, order: SimOrder) -> None:
        order_id = order.id
        old = self._fixed.pop(order_id, None)
        if old is not None:
            self._fixed_total -= old
        self._live.pop(order_id, None)
        # Alpaca's holds (see fillguard.sim.funds): open orders that open a position, not a
        # replacement awaiting its original, not a leg held until its parent fills.
        if order.status not in OPEN or order.awaiting_replace or order.status == "held":
            return
        if not (order.side == "buy" or order.position_intent == "sell_to_open"):
            return
        if order.oco_with is not None:
            self._live[order_id] = order  # one of a pair holds: decided at read time
            return
        if order.notional is not None and order.filled_qty == 0:
            amount = order.notional
        elif (reference := order.limit_price or order.stop_price) is not None:
            amount = order.remaining_qty * reference
        else:
            self._live[order_id] = order  # a market order holds at the price of the moment
            return
        self._fixed[order_id] = amount
        self._fixed_total += amount

    # ------------------------------------------------------------------ reads
    def open_orders(self) -> list[SimOrder]:
        """Every open order, oldest first."""
        self.flush()
        return list(self._open.values())

    def held_by_buys(
        self,
        price_of: Callable[[str], Decimal],
        exclude: str | None,
        live: Callable[[SimOrder], Decimal] | None = None,
    ) -> Decimal:
        """What open orders hold: fixed ones at their limit, stop or notional; the others by
        ``live`` (default: at ``price_of`` their symbol plus 3 %)."""
        self.flush()
        with localcontext() as ctx:
            ctx.prec = _PRECISION
            held = self._fixed_total
            if exclude is not None and exclude in self._fixed:
                held -= self._fixed[exclude]
            for order_id, order in self._live.items():
                if order_id == exclude:
                    continue
                if live is not None:
                    held += live(order)
                else:
                    held += order.remaining_qty * price_of(order.symbol) * Decimal("1.03")
            return held

    def scan(self, status: str, *, newest_first: bool) -> Iterator[SimOrder]:
        """Orders of ``status`` (open, closed, all) in creation order or its reverse."""
        self.flush()
        if status == "open":
            source: Any = self._open.values()
        else:
            source = self.values()
        it = reversed(source) if newest_first else iter(source)
        if status == "closed":
            return (o for o in it if o.status not in OPEN)
        return iter(it)

    # ------------------------------------------------------------------ retention
    def retire(self, now: float, horizon_seconds: float) -> None:
        """Trim the version history of orders finished ``horizon_seconds`` before ``now`` to
        their final version (no stale read reaches further back)."""
        finished = self._finished
        while finished and finished[0][0] + horizon_seconds <= now:
            _, order = finished.popleft()
            if len(order.versions) > 1:
                del order.versions[:-1]

    def check(self, price_of: Callable[[str], Decimal]) -> None:
        """Assert the index and totals equal a full recomputation (for tests)."""
        self.flush()
        assert list(self._open) == [i for i, o in self.items() if o.status in OPEN]
        fresh = OrderStore()
        for order_id, order in self.items():
            dict.__setitem__(fresh, order_id, order)
            fresh._dirty[order_id] = order
        expected = fresh.held_by_buys(price_of, None)
        assert self.held_by_buys(price_of, None) == expected, "running buy holds drifted"
