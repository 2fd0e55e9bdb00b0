"""What happened to one trade: :class:`TradeOutcome` and :class:`TradeResult`.

The outcome is a value, never a message to parse:

* ``PLACED``      an order exists at the broker; ``status`` tells how it ended (or that it is
                  still open, ``UNKNOWN`` when its final state could not be learned in time);
* ``NOT_PLACED``  no order exists: the broker said so (a 429 on every attempt, a clean "not
                  found" before the only attempt could apply), or nothing ever left the process;
* ``REFUSED``     the broker refused this trade's order (``refusal`` keeps its status, code and
                  message), or the ``client_order_id`` belongs to a different order;
* ``UNKNOWN``     an order may exist (an attempt's answer was lost and no look-up could tell);
                  the executor keeps the trade and resolves it later.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from fillguard.consistency import ConsistencyResult
from fillguard.logs import log_event
from fillguard.results import FillResult, FillStatus, Refusal

__all__ = ["TradeOutcome", "TradeResult", "log_trade_finished"]


class TradeOutcome(StrEnum):
    """Whether the trade's order exists at the broker."""

    PLACED = "placed"
    NOT_PLACED = "not_placed"
    REFUSED = "refused"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class TradeResult:
    """What happened to one trade. ``order_id`` is None unless an order is known to exist.

    ``error`` is a human-readable note for logs and people; decide on ``outcome`` and
    ``status``, never on the text.
    """

    client_order_id: str
    order_id: str | None
    fill: FillResult | None
    consistency: ConsistencyResult | None
    error: str | None = None
    submit_attempts: int = 0
    api_calls: int = 0
    outcome: TradeOutcome = TradeOutcome.UNKNOWN
    refusal: Refusal | None = None
    elapsed_seconds: float = 0.0

    @property
    def filled(self) -> bool:
        """True only for a complete, confirmed fill."""
        return self.fill is not None and self.fill.filled

    @property
    def filled_qty(self) -> Decimal:
        """Quantity that really executed (partial fills count)."""
        return self.fill.filled_qty if self.fill is not None else Decimal(0)

    @property
    def fill_price(self) -> Decimal | None:
        """Average fill price, if anything filled."""
        return self.fill.fill_price if self.fill is not None else None

    @property
    def status(self) -> FillStatus | None:
        """The order's fill status, or None when no order is known to exist."""
        return self.fill.status if self.fill is not None else None

    @property
    def order_open(self) -> bool:
        """Whether the order may still fill (it stays tracked and its fills are booked later)."""
        return self.outcome is TradeOutcome.UNKNOWN or (
            self.fill is not None and self.fill.order_open
        )

    def to_log_dict(self) -> dict[str, Any]:
        """Plain values for a log line or ``--json`` output."""
        consistency = self.consistency
        return {
            "client_order_id": self.client_order_id,
            "order_id": self.order_id,
            "outcome": self.outcome.value,
            "status": None if self.status is None else self.status.value,
            "filled": self.filled,
            "filled_qty": str(self.filled_qty),
            "fill_price": None if self.fill_price is None else str(self.fill_price),
            "order_open": self.order_open,
            "error": self.error,
            "refusal": None if self.refusal is None else self.refusal.to_log_dict(),
            "submit_attempts": self.submit_attempts,
            "api_calls": self.api_calls,
            "elapsed_seconds": self.elapsed_seconds,
            "fill": None if self.fill is None else self.fill.to_log_dict(),
            "consistency": None if consistency is None else consistency.to_log_dict(),
        }


def log_trade_finished(logger: logging.Logger, result: TradeResult) -> None:
    """The ``trade_finished`` event (ERROR unless an order was placed)."""
    log_event(
        logger,
        logging.INFO if result.outcome is TradeOutcome.PLACED else logging.ERROR,
        "trade_finished",
        client_order_id=result.client_order_id,
        order_id=result.order_id,
        outcome=result.outcome,
        status=result.status,
        filled=result.filled,
        filled_qty=result.filled_qty,
        fill_price=result.fill_price,
        consistent=result.consistency.consistent if result.consistency else None,
        submit_attempts=result.submit_attempts,
        api_calls=result.api_calls,
        error=result.error,
    )
