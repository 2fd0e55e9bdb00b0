"""The simulator's order, execution and position records, and Alpaca's status transitions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

__all__ = [
    "CANCELABLE",
    "FILLABLE",
    "OPEN",
    "REPLACEABLE",
    "TERMINAL",
    "TRANSITIONS",
    "Execution",
    "SimOrder",
    "SimPosition",
    "vwap",
]

QTY_QUANTUM = Decimal("0.000000001")  # Alpaca allows 9 decimal places on fractional qty
PRICE_QUANTUM = Decimal("0.000000001")

OPEN = frozenset(
    {
        "held",
        "accepted",
        "pending_new",
        "new",
        "partially_filled",
        "pending_cancel",
        "done_for_day",
        "pending_replace",
    }
)
CANCELABLE = frozenset(
    {"accepted", "pending_new", "new", "partially_filled", "done_for_day", "held"}
)
# Open orders a PATCH may replace (pending_* are refused, as on Alpaca).
REPLACEABLE = frozenset({"accepted", "new", "partially_filled", "done_for_day"})
# Where a fill may still land: cancel and replace are requests, and the race with a fill is real.
FILLABLE = frozenset({"new", "partially_filled", "pending_cancel", "pending_replace"})
TERMINAL = frozenset({"filled", "canceled", "expired", "rejected", "replaced"})

# Alpaca's order lifecycle as the simulator plays it. A fill may still land in pending_cancel and
# pending_replace; done_for_day (a GTC order out of session) resumes to new or partially_filled.
TRANSITIONS: dict[str, frozenset[str]] = {
    # A bracket or oto leg, until its parent fills (then new), or with it canceled or expired.
    "held": frozenset({"new", "pending_cancel", "canceled", "expired"}),
    # accepted -> canceled: a replacement held in accepted whose original filled first.
    "accepted": frozenset(
        {"pending_new", "pending_cancel", "rejected", "expired", "pending_replace", "canceled"}
    ),
    "pending_new": frozenset({"new", "pending_cancel", "rejected", "expired"}),
    "new": frozenset(
        {
            "partially_filled",
            "filled",
            "pending_cancel",
            "expired",
            "canceled",
            "done_for_day",
            "pending_replace",
        }
    ),
    "partially_filled": frozenset(
        {
            "partially_filled",
            "filled",
            "pending_cancel",
            "expired",
            "canceled",
            "done_for_day",
            "pending_replace",
        }
    ),
    "done_for_day": frozenset({"new", "partially_filled", "pending_cancel", "pending_replace"}),
    "pending_cancel": frozenset({"partially_filled", "filled", "canceled"}),
    "pending_replace": frozenset({"filled", "replaced"}),
    "filled": frozenset(),
    "canceled": frozenset(),
    "expired": frozenset(),
    "rejected": frozenset(),
    "replaced": frozenset(),
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


# Fields whose change moves an order in or out of the store's open index or buy holds.
_WATCHED = frozenset(
    {
        "status",
        "qty",
        "limit_price",
        "stop_price",
        "notional",
        "position_intent",
        "oco_with",
        "awaiting_replace",
        "side",
        "executions",
    }
)


@dataclass(slots=True)
class SimOrder:
    """An order as the broker holds it (mutable; only the core changes it).

    Setting a field that the store indexes marks the order dirty in its store
    (:class:`~fillguard.sim.store.OrderStore`), so no code path can forget to tell it.
    """

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
    asset_class: str = "us_equity"
    stop_price: Decimal | None = None  # a trailing stop's moves with its hwm
    trail_price: Decimal | None = None
    trail_percent: Decimal | None = None
    hwm: Decimal | None = None  # the best price since a trailing stop went live
    # A stop, stop_limit or trailing_stop whose stop price the market has reached.
    triggered: bool = False
    auction: bool = False  # a cls order at the closing auction (it may fill from now on)
    notional: Decimal | None = None  # qty is fixed at the fill: notional / price
    order_class: str = ""  # "", bracket, oco or oto
    position_intent: str | None = None
    parent_id: str | None = None  # a leg's parent order
    legs: list[str] = field(default_factory=list)  # a parent's leg order ids
    # An active leg of a bracket or oco: the other leg, canceled when this one fills.
    oco_with: str | None = None
    updated_at: datetime | None = None
    filled_at: datetime | None = None
    canceled_at: datetime | None = None
    expired_at: datetime | None = None
    failed_at: datetime | None = None
    filled_mono: float | None = None
    replaced_at: datetime | None = None
    replaced_by: str | None = None  # set when the replace completes
    replaces: str | None = None  # the order this one replaces
    executions: list[Execution] = field(default_factory=list)
    # Time (monotonic) until which a filled order still reads filled_avg_price null (fault).
    hide_price_until: float | None = None
    # For stale reads: (monotonic time, serialised order) after every change, newest last.
    versions: list[tuple[float, dict[str, object]]] = field(default_factory=list)
    # --- lifecycle bookkeeping (not on the wire) -------------------------------------------
    # Bumped whenever planned fills must not land any more (done_for_day, replaced).
    fill_gen: int = 0
    # Bumped at every done_for_day, so a scheduled resume of an earlier one does nothing.
    session_gen: int = 0
    # A replacement held in accepted until its original is replaced (holds no buying power).
    awaiting_replace: bool = False
    # The replacement being made of this order while it is pending_replace.
    replacing_with: str | None = None
    # The PATCH gave no qty: the replacement takes what is left when the replace completes.
    qty_defaulted: bool = False
    # --- per-order fault state ---------------------------------------------------------------
    # Cached first draw of each per-order knob's keyed stream (see Broker.draw).
    draws: dict[str, float] = field(default_factory=dict)
    lookup_refused_done: bool = False
    # (time of the last execution, the version before it): the half-update fault's window.
    half_base: tuple[float, dict[str, object]] | None = None
    # --- storage (not on the wire) ---------------------------------------------------------
    store: Any = field(default=None, compare=False, repr=False)
    retired: bool = False  # queued for version trimming once finished

    def __setattr__(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)
        if name in _WATCHED:
            store = getattr(self, "store", None)
            if store is not None:
                store.mark(self)

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
