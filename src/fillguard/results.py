"""What fill detection reports: :class:`FillStatus`, :class:`FillVerification`, :class:`FillResult`,
with the broker's :class:`Refusal` and the :class:`ChainLink` of each order in a replace chain.

All are immutable. :class:`FillResult` checks its own consistency on construction so that a
result claiming a fill without a price or quantity can never be built.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Any

__all__ = ["ChainLink", "FillResult", "FillStatus", "FillVerification", "Refusal"]


class FillStatus(StrEnum):
    """The outcome of watching one order."""

    FILLED = "filled"
    PARTIALLY_FILLED = "partially_filled"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"
    TIMEOUT = "timeout"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Refusal:
    """What the broker said when it refused: HTTP status, Alpaca's 8-digit code, its message."""

    status_code: int | None
    code: int | None
    message: str

    def to_log_dict(self) -> dict[str, Any]:
        """Plain values for a log line."""
        return {"status_code": self.status_code, "code": self.code, "message": self.message}


@dataclass(frozen=True, slots=True)
class ChainLink:
    """One order of a trade: the first, or a replacement that took its place (``replaced_by``).

    ``filled_qty`` is that order's own cumulative quantity, booked under its own id, symbol and
    side; a replaced order keeps what it filled before it was replaced.
    """

    order_id: str
    symbol: str | None
    side: str | None
    status: str | None
    filled_qty: Decimal
    fill_price: Decimal | None

    def to_log_dict(self) -> dict[str, Any]:
        """Plain values for a log line."""
        return {
            "order_id": self.order_id,
            "symbol": self.symbol,
            "side": self.side,
            "status": self.status,
            "filled_qty": str(self.filled_qty),
            "fill_price": None if self.fill_price is None else str(self.fill_price),
        }


@dataclass(frozen=True)
class FillVerification:
    """The verdict of the independent fill checks on one order read.

    ``method_results`` maps each method name to its answer; it is stored as a read-only
    :class:`types.MappingProxyType` copy so the frozen result cannot be changed afterwards.
    """

    is_filled: bool
    methods_confirmed: tuple[str, ...]
    method_results: Mapping[str, bool]
    confidence: float

    def __post_init__(self) -> None:
        """Freeze ``method_results`` and check ``confidence`` is within 0..1."""
        object.__setattr__(self, "methods_confirmed", tuple(self.methods_confirmed))
        object.__setattr__(self, "method_results", MappingProxyType(dict(self.method_results)))
        if not (math.isfinite(self.confidence) and 0.0 <= self.confidence <= 1.0):
            raise ValueError(f"confidence must be within [0, 1], got {self.confidence!r}")

    def __hash__(self) -> int:
        # MappingProxyType is unhashable; hash its items instead.
        return hash(
            (
                self.is_filled,
                self.methods_confirmed,
                tuple(sorted(self.method_results.items())),
                self.confidence,
            )
        )

    def to_log_dict(self) -> dict[str, Any]:
        """Plain values for a log line."""
        return {
            "is_filled": self.is_filled,
            "methods_confirmed": list(self.methods_confirmed),
            "method_results": dict(self.method_results),
            "confidence": self.confidence,
        }


@dataclass(frozen=True)
class FillResult:
    """The final answer about one order: did it fill completely, at what price, and how we know.

    ``filled`` is True only for a complete fill (status FILLED); a partial fill reports
    ``filled=False`` with ``filled_qty`` > 0. ``poll_intervals`` are the waits between reads.
    When the order was replaced, ``chain`` holds every order from ``order_id`` to the last
    replacement and the quantities are the chain's totals. ``refusal`` is set when the broker
    refused to tell us the order's state (401, 403, a 404 that outlasted the grace window).
    """

    filled: bool
    status: FillStatus
    order_id: str
    client_order_id: str | None
    symbol: str | None
    side: str | None
    requested_qty: Decimal | None
    filled_qty: Decimal
    fill_price: Decimal | None
    filled_at: datetime | None
    detection_method: str | None
    verification: FillVerification | None
    elapsed_seconds: float
    api_calls: int
    retries: int
    slippage_pct: Decimal | None
    slippage_exceeded: bool
    poll_intervals: tuple[float, ...] = field(default=())
    error: str | None = None
    # True when the broker still showed the order live at the end (or its state is unknown):
    # it may fill more later, so a caller keeping books must look again.
    order_open: bool = False
    chain: tuple[ChainLink, ...] = ()
    refusal: Refusal | None = None

    @property
    def final_order_id(self) -> str:
        """The order that carries the trade now: the last replacement, or ``order_id``."""
        return self.chain[-1].order_id if self.chain else self.order_id

    def __post_init__(self) -> None:
        """Enforce ``filled`` iff FILLED, and that a fill has a positive price and quantity."""
        if not isinstance(self.status, FillStatus):
            raise ValueError(f"status must be a FillStatus, got {self.status!r}")
        if self.filled != (self.status is FillStatus.FILLED):
            raise ValueError(
                f"filled={self.filled} contradicts status={self.status.value}: "
                "filled is True exactly when status is FILLED"
            )
        if self.filled:
            if self.fill_price is None or not self.fill_price > 0:
                raise ValueError(f"a FILLED result needs fill_price > 0, got {self.fill_price}")
            if not self.filled_qty > 0:
                raise ValueError(f"a FILLED result needs filled_qty > 0, got {self.filled_qty}")
        object.__setattr__(self, "poll_intervals", tuple(self.poll_intervals))
        object.__setattr__(self, "chain", tuple(self.chain))

    def to_log_dict(self) -> dict[str, Any]:
        """Plain values for a log line (Decimals as str, datetime as ISO 8601)."""
        return {
            "filled": self.filled,
            "status": self.status.value,
            "order_id": self.order_id,
            "client_order_id": self.client_order_id,
            "symbol": self.symbol,
            "side": self.side,
            "requested_qty": None if self.requested_qty is None else str(self.requested_qty),
            "filled_qty": str(self.filled_qty),
            "fill_price": None if self.fill_price is None else str(self.fill_price),
            "filled_at": None if self.filled_at is None else self.filled_at.isoformat(),
            "detection_method": self.detection_method,
            "verification": None if self.verification is None else self.verification.to_log_dict(),
            "elapsed_seconds": self.elapsed_seconds,
            "api_calls": self.api_calls,
            "retries": self.retries,
            "slippage_pct": None if self.slippage_pct is None else str(self.slippage_pct),
            "slippage_exceeded": self.slippage_exceeded,
            "poll_intervals": list(self.poll_intervals),
            "error": self.error,
            "order_open": self.order_open,
            "chain": [link.to_log_dict() for link in self.chain],
            "refusal": None if self.refusal is None else self.refusal.to_log_dict(),
        }
