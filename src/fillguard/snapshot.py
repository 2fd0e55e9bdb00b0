"""A tolerant, Decimal-typed view of one order read: :class:`OrderSnapshot`.

Orders reach fillguard in several shapes: alpaca-py ``Order`` models (numerics as ``str`` or
``float``, status as an ``OrderStatus`` enum), raw dicts (``raw_data=True``: numbers as strings,
JSON numbers or null), or any object with attributes (tests, stream payloads). The snapshot reads
them all the same way and never raises on a missing or garbled field: a bad value becomes None
(or 0 for ``filled_qty``), because the verifier must treat "unknown" as "not proven", not crash.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum

__all__ = [
    "FILLED_STATUS",
    "OPEN_STATUSES",
    "TERMINAL_STATUSES",
    "UNFILLED_TERMINAL_STATUSES",
    "OrderSnapshot",
    "normalize_status",
    "parse_timestamp",
    "to_decimal",
]

FILLED_STATUS = "filled"

#: No further fills can happen on this order id in these states. ``replaced`` ends this id, but
#: the order lives on under ``replaced_by``; ``done_for_day`` is not here: it resumes next session.
TERMINAL_STATUSES: frozenset[str] = frozenset(
    {"filled", "canceled", "expired", "rejected", "replaced"}
)
#: Terminal states in which the order did not (completely) fill.
UNFILLED_TERMINAL_STATUSES: frozenset[str] = TERMINAL_STATUSES - {FILLED_STATUS}
#: The order is live and may still (partially) fill.
OPEN_STATUSES: frozenset[str] = frozenset(
    {
        "new",
        "partially_filled",
        "accepted",
        "pending_new",
        "accepted_for_bidding",
        "pending_cancel",
        "pending_replace",
        "pending_review",
        "stopped",
        "suspended",
        "calculated",
        "held",
        "done_for_day",
    }
)
#: Open statuses in which the order has not executed anything yet, by the broker's contract.
_UNFILLED_OPEN = frozenset({"new", "accepted", "pending_new", "accepted_for_bidding"})

# "OrderStatus.FILLED" is what str() of alpaca-py's enum gives; strip the class prefix.
_ENUM_REPR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.([A-Za-z_][A-Za-z0-9_]*)$")
# Python 3.11's fromisoformat takes at most 6 fractional digits; Alpaca sends up to 9.
_FRACTION = re.compile(r"(\.\d{6})\d+")


def to_decimal(value: object) -> Decimal | None:
    """``value`` as a finite Decimal, or None when missing or not a number.

    Floats go through ``str`` so ``189.12`` stays ``189.12``; bools, NaN and infinities are
    rejected rather than read as 1/0 or propagated.
    """
    if value is None or isinstance(value, bool):
        return None
    try:
        if isinstance(value, Decimal):
            result = value
        elif isinstance(value, float):
            if not math.isfinite(value):
                return None
            result = Decimal(str(value))
        elif isinstance(value, int):
            result = Decimal(value)
        elif isinstance(value, str):
            text = value.strip()
            if not text:
                return None
            result = Decimal(text)
        else:
            return None
    except (InvalidOperation, ValueError):
        return None
    return result if result.is_finite() else None


def parse_timestamp(value: object) -> datetime | None:
    """A timezone-aware UTC datetime from a datetime or an RFC 3339 string, else None.

    Accepts a trailing ``Z`` and nanosecond fractions (truncated to microseconds, as alpaca-py
    does). A naive datetime or string is taken to be UTC.
    """
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if text[-1] in "zZ":
            text = text[:-1] + "+00:00"
        text = _FRACTION.sub(r"\1", text)
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
    else:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def normalize_status(value: object) -> str | None:
    """A lowercase status string from an enum, ``"FILLED"``, ``"OrderStatus.FILLED"`` etc."""
    if value is None:
        return None
    if isinstance(value, Enum):
        value = value.value
    if not isinstance(value, str):
        return None
    text = value.strip()
    match = _ENUM_REPR.match(text)
    if match:
        text = match.group(1)
    return text.lower() or None


def _text(value: object) -> str | None:
    """A plain string for ids and names (UUIDs and enums included), or None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Enum):
        value = value.value
    text = str(value).strip()
    return text or None


def _lower_name(value: object) -> str | None:
    """Like :func:`normalize_status`, for side and order type (enum, any case, enum repr)."""
    return normalize_status(value)


def _nonnegative(value: Decimal | None) -> Decimal | None:
    return value if value is not None and value >= 0 else None


def _positive(value: Decimal | None) -> Decimal | None:
    return value if value is not None and value > 0 else None


def _getter(order: object) -> Callable[[str], object]:
    """A ``get(name)`` reading a mapping key or an attribute, never raising."""
    if isinstance(order, Mapping):

        def get_item(name: str) -> object:
            try:
                return order.get(name)
            except Exception:  # a hostile mapping must not break a read
                return None

        return get_item

    def get_attr(name: str) -> object:
        try:
            return getattr(order, name, None)
        except Exception:  # a property that raises is a missing field
            return None

    return get_attr


@dataclass(frozen=True, slots=True)
class OrderSnapshot:
    """One order read, normalised: lowercase strings, Decimal numbers, UTC datetimes."""

    order_id: str | None = None
    client_order_id: str | None = None
    symbol: str | None = None
    side: str | None = None
    order_type: str | None = None
    status: str | None = None
    qty: Decimal | None = None
    filled_qty: Decimal = Decimal(0)
    filled_avg_price: Decimal | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    notional: Decimal | None = None
    time_in_force: str | None = None
    replaced_by: str | None = None
    replaces: str | None = None
    submitted_at: datetime | None = None
    filled_at: datetime | None = None
    canceled_at: datetime | None = None
    expired_at: datetime | None = None
    failed_at: datetime | None = None
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        """Normalise ``status`` also for snapshots built directly (e.g. ``status="FILLED"``)."""
        status = normalize_status(self.status)
        if status != self.status:
            object.__setattr__(self, "status", status)

    @classmethod
    def from_any(cls, order: object) -> OrderSnapshot:
        """Build a snapshot from an alpaca-py Order, a raw dict or any object; never raises."""
        if isinstance(order, OrderSnapshot):
            return order
        if order is None:
            return cls()
        get = _getter(order)
        order_type = get("order_type")
        if order_type is None:
            order_type = get("type")
        # A negative filled_qty is garbage, not a short fill: treat it as nothing filled.
        filled_qty = _nonnegative(to_decimal(get("filled_qty"))) or Decimal(0)
        return cls(
            order_id=_text(get("id")) or _text(get("order_id")),
            client_order_id=_text(get("client_order_id")),
            symbol=_text(get("symbol")),
            side=_lower_name(get("side")),
            order_type=_lower_name(order_type),
            status=normalize_status(get("status")),
            qty=_nonnegative(to_decimal(get("qty"))),
            filled_qty=filled_qty,
            # A zero or negative average price is no price at all.
            filled_avg_price=_positive(to_decimal(get("filled_avg_price"))),
            limit_price=_positive(to_decimal(get("limit_price"))),
            stop_price=_positive(to_decimal(get("stop_price"))),
            notional=_positive(to_decimal(get("notional"))),
            time_in_force=_lower_name(get("time_in_force")),
            replaced_by=_text(get("replaced_by")),
            replaces=_text(get("replaces")),
            submitted_at=parse_timestamp(get("submitted_at")),
            filled_at=parse_timestamp(get("filled_at")),
            canceled_at=parse_timestamp(get("canceled_at")),
            expired_at=parse_timestamp(get("expired_at")),
            failed_at=parse_timestamp(get("failed_at")),
            updated_at=parse_timestamp(get("updated_at")),
        )

    @property
    def is_terminal(self) -> bool:
        """Whether the status is one after which the order cannot fill any further."""
        return self.status in TERMINAL_STATUSES

    @property
    def is_open(self) -> bool:
        """Whether the status is a known live state."""
        return self.status in OPEN_STATUSES

    @property
    def is_half_updated(self) -> bool:
        """Whether the record's fields contradict each other, as when a broker writes them in steps.

        ``filled`` with nothing (or less than the whole qty) filled; any other status with the
        whole qty filled; ``partially_filled`` with nothing filled; ``new`` with shares
        filled; shares filled without an
        average price on an order that is not ``filled`` (a filled order's missing price is a
        known lag handled on its own). Such a read proves nothing; read again.
        """
        status, filled, qty = self.status, self.filled_qty, self.qty
        if status == FILLED_STATUS:
            return filled <= 0 or (qty is not None and qty > 0 and filled < qty)
        if qty is not None and qty > 0 and filled >= qty:
            # The whole quantity executed but the status is not "filled" yet (a pending
            # cancel that a fill raced, written quantity first): its price may be the old one.
            return True
        if status == "partially_filled" and (
            filled <= 0 or (qty is not None and qty > 0 and filled >= qty)
        ):
            return True
        if status in _UNFILLED_OPEN and filled > 0:
            return True
        return filled > 0 and self.filled_avg_price is None

    @property
    def remaining_qty(self) -> Decimal | None:
        """``qty - filled_qty`` (never negative), or None when qty is unknown."""
        if self.qty is None:
            return None
        return max(self.qty - self.filled_qty, Decimal(0))

    @property
    def quantity_complete(self) -> bool:
        """Whether the requested qty is known, positive and fully filled."""
        return self.qty is not None and self.qty > 0 and self.filled_qty >= self.qty
