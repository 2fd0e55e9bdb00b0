"""State consistency: does the broker's position equal what our fills say it should be?

Positions can lag fills (Alpaca documents no read-after-fill guarantee for /v2/positions), so a
difference is re-checked with backoff for a bounded time. What a difference that outlasts the
check means depends on when it was read: a reading taken at least the lag window after our last
fill in the symbol (``settled_after``) is a **mismatch** (and may be synced into the book); an
earlier one may still be lag and is only **unverified**. A 404 on the position means flat.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from fillguard.broker import BrokerClient
from fillguard.clock import Clock, SystemClock
from fillguard.config import FillDetectionConfig
from fillguard.errors import BrokerError, RefusedError
from fillguard.logs import log_event
from fillguard.retry import ErrorRecoveryManager, RetryStats
from fillguard.snapshot import to_decimal
from fillguard.waiting import pause

__all__ = ["ConsistencyResult", "StateConsistencyValidator", "side_of"]

_logger = logging.getLogger("fillguard.consistency")

# A 404 on a position is Alpaca's way of saying "flat".
_NOT_FOUND = frozenset({404})


def side_of(qty: Decimal | None) -> str | None:
    """``long`` for a positive quantity, ``short`` for a negative one, None when flat/unknown."""
    if qty is None or qty == 0:
        return None
    return "long" if qty > 0 else "short"


Verdict = Literal["consistent", "mismatch", "unverified"]
_LEVELS: dict[str, int] = {
    "consistent": logging.INFO,
    "unverified": logging.WARNING,
    "mismatch": logging.ERROR,
}


@dataclass(frozen=True, slots=True)
class ConsistencyResult:
    """The outcome of comparing the expected position with the broker's.

    ``verdict`` is ``consistent``; ``mismatch`` (a difference read past the lag window, the
    broker's position confirmed); or ``unverified`` (the position could not be read, or the
    difference may still be the broker's position lagging our fill). ``synced`` is set when the
    book was then made equal to the broker's confirmed position.
    """

    consistent: bool
    symbol: str
    expected_qty: Decimal
    broker_qty: Decimal | None
    expected_side: str | None
    broker_side: str | None
    discrepancy: str | None
    checks: int = 1
    elapsed_seconds: float = 0.0
    verdict: Verdict | None = None
    synced: bool = False

    def __post_init__(self) -> None:
        """Derive ``verdict`` when not given."""
        if self.verdict is None:
            verdict: Verdict = (
                "consistent"
                if self.consistent
                else "unverified"
                if self.broker_qty is None
                else "mismatch"
            )
            object.__setattr__(self, "verdict", verdict)

    def to_log_dict(self) -> dict[str, Any]:
        """Plain values for a log line or JSON output."""
        return {
            "verdict": self.verdict,
            "consistent": self.consistent,
            "symbol": self.symbol,
            "expected_qty": str(self.expected_qty),
            "broker_qty": None if self.broker_qty is None else str(self.broker_qty),
            "discrepancy": self.discrepancy,
            "checks": self.checks,
            "synced": self.synced,
        }


class StateConsistencyValidator:
    """Compares expected positions with the broker's, tolerating a bounded position lag.

    Args:
        alpaca_client: alpaca-py's TradingClient or anything with ``get_open_position(symbol)``.
        timeout_seconds: how long a difference may persist before it is a mismatch.
        initial_delay / max_delay: backoff between re-checks.
        recovery: retry manager for transient read errors (one is built if None).
    """

    def __init__(
        self,
        alpaca_client: Any,
        *,
        clock: Clock | None = None,
        timeout_seconds: float = 3.0,
        initial_delay: float = 0.1,
        max_delay: float = 1.0,
        recovery: ErrorRecoveryManager | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.client = alpaca_client
        # The executor checks the methods it needs; used alone, a missing one fails the read.
        self.broker = BrokerClient(alpaca_client, needs=())
        self.clock: Clock = clock or SystemClock()
        self.timeout_seconds = timeout_seconds
        self.initial_delay = initial_delay
        self.max_delay = max_delay
        self.recovery = recovery or ErrorRecoveryManager(
            FillDetectionConfig(max_retries=3, retry_base_delay=0.1, retry_max_delay=1.0),
            clock=self.clock,
        )
        self._logger = logger or _logger

    def get_broker_position(
        self, symbol: str, *, deadline: float | None = None, stats: RetryStats | None = None
    ) -> Decimal:
        """The broker's signed quantity for ``symbol`` (0 when it has no position: 404)."""
        try:
            position = self.recovery.call(
                lambda: self.broker.get_position(symbol),
                deadline=deadline,
                stats=stats,
                expected_statuses=_NOT_FOUND,
            )
        except RefusedError as err:
            if err.status_code == 404:
                return Decimal(0)
            raise
        return _position_qty(position)

    @staticmethod
    def _compare_positions(symbol: str, expected: Decimal, broker: Decimal) -> str | None:
        """A description of the difference, or None when the positions agree."""
        if expected == broker:
            return None
        exp_side, brk_side = side_of(expected), side_of(broker)
        side_note = f", side {exp_side} vs {brk_side}" if exp_side != brk_side else ""
        return (
            f"{symbol}: expected {expected}, broker has {broker} "
            f"(difference {broker - expected}{side_note})"
        )

    def validate_fill_consistency(
        self,
        symbol: str,
        expected_qty: Decimal,
        *,
        settled_after: float | None = None,
        deadline: float | None = None,
    ) -> ConsistencyResult:
        """Compare ``expected_qty`` with the broker's position, re-checking while it differs.

        Re-checks run for ``timeout_seconds`` (or until ``deadline``, if sooner). A difference
        still there at the end is a mismatch only if it was read at or after ``settled_after``
        (a ``clock.monotonic()`` time past the lag window); before, it is unverified.
        """
        expected = Decimal(expected_qty)
        start = self.clock.monotonic()
        end = start + self.timeout_seconds
        if deadline is not None:
            end = min(end, deadline)
        delay = self.initial_delay
        checks = 0
        broker: Decimal | None = None
        discrepancy: str | None = None
        read_at = start
        while True:
            checks += 1
            read_at = self.clock.monotonic()
            try:
                broker = self.get_broker_position(symbol, deadline=end)
                discrepancy = self._compare_positions(symbol, expected, broker)
            except BrokerError as err:
                broker = None
                discrepancy = f"{symbol}: broker position could not be read: {err}"
            if discrepancy is None or pause(self.clock, delay, deadline=end) <= 0:
                break
            delay = min(delay * 2, self.max_delay)
        verdict: Verdict = "consistent" if discrepancy is None else "unverified"
        if broker is not None and discrepancy is not None:
            if settled_after is None or read_at >= settled_after:
                verdict = "mismatch"
            else:
                discrepancy += " (read within the lag window of our last fill: may be lag)"
        result = ConsistencyResult(
            consistent=discrepancy is None,
            symbol=symbol,
            expected_qty=expected,
            broker_qty=broker,
            expected_side=side_of(expected),
            broker_side=side_of(broker),
            discrepancy=discrepancy,
            checks=checks,
            elapsed_seconds=self.clock.monotonic() - start,
            verdict=verdict,
        )
        log_event(
            self._logger,
            _LEVELS[verdict],
            "consistency_check",
            symbol=symbol,
            consistent=result.consistent,
            verdict=verdict,
            expected_qty=expected,
            broker_qty=broker,
            expected_side=result.expected_side,
            broker_side=result.broker_side,
            discrepancy=discrepancy,
            checks=checks,
        )
        return result


def _position_qty(position: object) -> Decimal:
    if isinstance(position, dict):
        qty, side = position.get("qty"), position.get("side")
    else:
        qty, side = getattr(position, "qty", None), getattr(position, "side", None)
    value = to_decimal(qty)
    if value is None:
        raise RefusedError(f"position has no readable qty: {qty!r}")
    side_text = str(getattr(side, "value", side) or "").lower()
    # Alpaca sends short positions with a negative qty; some clients report abs(qty) + side.
    if side_text == "short" and value > 0:
        value = -value
    return value
