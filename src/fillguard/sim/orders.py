"""The simulator's order, execution and position records, and Alpaca's status transitions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

__all__ = [
    "CANCELABLE",
    "OPEN",
    "TERMINAL",
    "TRANSITIONS",
    "Execution",
    "SimOrder",
    "SimPosition",
    "vwap",
]

QTY_QUANTUM = Decimal("0.000000001")  # Alpaca allows 9 decimal places on fractional qty
PRICE_QUANTUM = Decimal("0.000000001")

OPEN = frozenset({"accepted", "pending_new", "new", "partially_filled", "pending_cancel"})
CANCELABLE = frozenset({"accepted", "pending_new", "new", "partially_filled"})
TERMINAL = frozenset({"filled", "canceled", "expired", "rejected"})

# Alpaca's order lifecycle as the simulator plays it. A fill may still land in pending_cancel:
# cancel is a request, and the race with a fill is real.
TRANSITIONS: dict[str, frozenset[str]] = {
    "accepted": frozenset({"pending_new", "pending_cancel", "rejected", "expired"}),
    "pending_new": frozenset({"new", "pending_cancel", "rejected", "expired"}),
    "new": frozenset({"partially_filled", "filled", "pending_cancel", "expired", "canceled"}),
    "partially_filled": frozenset(
        {"partially_filled", "filled", "pending_cancel", "expired", "canceled"}
    ),
    "pending_cancel": frozenset({"partially_filled", "filled", "canceled"}),
    "filled": frozenset(),
    "canceled": frozenset(),
    "expired": frozenset(),
    "rejected": frozenset(),
}


@dataclass(frozen=True, slots=True)
class Execution:
    """One execution (fill) of an order: per-execution qty and price."""

    execution_id: str
    order_id: str
    symbol: str
    side: str
    qty: Decimal
    price: Decimal
    timestamp: datetime
    mono: float
    cum_qty: Decimal
    leaves_qty: Decimal
    order_status: str
    position_qty: Decimal


def vwap(executions: list[Execution]) -> Decimal | None:
    """Volume-weighted average price of ``executions``, to 9 decimal places (None if empty)."""
    total = sum((e.qty for e in executions), Decimal(0))
    if total == 0:
        return None
    notional = sum((e.qty * e.price for e in executions), Decimal(0))
    return (notional / total).quantize(PRICE_QUANTUM)


@dataclass(slots=True)
class SimOrder:
    """An order as the broker holds it (mutable; only the core changes it)."""

    id: str
    client_order_id: str
    asset_id: str
    symbol: str
    side: str
    type: str
    time_in_force: str
    qty: Decimal
    limit_price: Decimal | None
    extended_hours: bool
    created_at: datetime
    created_mono: float
    status: str = "accepted"
    updated_at: datetime | None = None
    filled_at: datetime | None = None
    canceled_at: datetime | None = None
    expired_at: datetime | None = None
    failed_at: datetime | None = None
    filled_mono: float | None = None
    executions: list[Execution] = field(default_factory=list)
    # Time (monotonic) until which a filled order still reads filled_avg_price null (fault).
    hide_price_until: float | None = None
    # For stale reads: (monotonic time, serialised order) after every change, newest last.
    versions: list[tuple[float, dict[str, object]]] = field(default_factory=list)

    @property
    def filled_qty(self) -> Decimal:
        """Cumulative filled quantity."""
        return sum((e.qty for e in self.executions), Decimal(0))

    @property
    def filled_avg_price(self) -> Decimal | None:
        """Cumulative volume-weighted fill price."""
        return vwap(self.executions)

    @property
    def remaining_qty(self) -> Decimal:
        """Quantity still open."""
        return self.qty - self.filled_qty

    @property
    def is_open(self) -> bool:
        """Whether the order can still change."""
        return self.status in OPEN


@dataclass(slots=True)
class SimPosition:
    """A position: signed qty (negative is short) and average entry price."""

    symbol: str
    asset_id: str
    qty: Decimal = Decimal(0)
    avg_entry_price: Decimal = Decimal(0)

    def apply(self, side: str, qty: Decimal, price: Decimal) -> None:
        """Apply one execution: adding keeps a weighted average, reducing keeps it, flipping resets."""
        signed = qty if side == "buy" else -qty
        new_qty = self.qty + signed
        if self.qty == 0 or (self.qty > 0) == (signed > 0):
            total = abs(self.qty) + qty
            self.avg_entry_price = (
                (abs(self.qty) * self.avg_entry_price + qty * price) / total
            ).quantize(PRICE_QUANTUM)
        elif new_qty != 0 and (new_qty > 0) != (self.qty > 0):
            self.avg_entry_price = price
        if new_qty == 0:
            self.avg_entry_price = Decimal(0)
        self.qty = new_qty
