"""The engine's edge: reading and canceling one order through any TradingClient-shaped object.

Every broker call goes through :class:`ErrorRecoveryManager`, so it is retried, classified and
bounded by a deadline in one place. Answers come back as :class:`OrderSnapshot` values
(``Decimal`` numbers, normalised status) whatever shape the client returns.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from fillguard.broker import BrokerClient
from fillguard.clock import Clock
from fillguard.errors import BrokerError, RefusedError, TransientError
from fillguard.logs import log_event
from fillguard.retry import ErrorRecoveryManager, RetryStats
from fillguard.snapshot import OrderSnapshot, to_decimal

__all__ = ["CancelOutcome", "OrderGateway"]

_logger = logging.getLogger("fillguard.gateway")


@dataclass(frozen=True, slots=True)
class CancelOutcome:
    """What the broker said to a cancel request. None of these proves the final state."""

    kind: Literal["accepted", "not_cancelable", "not_found", "failed"]
    status_code: int | None = None
    message: str = ""


class OrderGateway:
    """Reads and cancels orders with retries; the grace window turns early 404s into retries."""

    def __init__(
        self,
        client: Any,
        recovery: ErrorRecoveryManager,
        clock: Clock,
        *,
        logger: logging.Logger | None = None,
        broker: BrokerClient | None = None,
    ) -> None:
        self.client = client
        self.broker = broker or BrokerClient(client)
        self.recovery = recovery
        self.clock = clock
        self._logger = logger or _logger

    def _past(self, deadline: float | None) -> bool:
        return deadline is not None and self.clock.monotonic() >= deadline

    def read(
        self,
        order_id: str,
        *,
        deadline: float | None,
        stats: RetryStats,
        grace_until: float | None = None,
    ) -> OrderSnapshot:
        """GET the order. Raises TransientError when retries run out, RefusedError if refused,
        UnparseableResponseError for an unreadable 2xx, ClientSideError for a local failure.

        Nothing is sent once ``deadline`` has passed (TransientError): a request started late
        could block for a whole request timeout past the caller's budget.
        """
        if self._past(deadline):
            raise TransientError("not sent: the deadline has passed", order_id=order_id)
        not_found_transient = grace_until is not None and self.clock.monotonic() < grace_until
        raw = self.recovery.call(
            lambda: self.broker.get_order(order_id),
            deadline=deadline,
            not_found_transient=not_found_transient,
            order_id=order_id,
            stats=stats,
        )
        return OrderSnapshot.from_any(raw)

    def cancel(self, order_id: str, *, deadline: float | None, stats: RetryStats) -> CancelOutcome:
        """Request a cancel. A cancel may be repeated safely, so 5xx and timeouts are retried.

        Not sent once ``deadline`` has passed (outcome ``failed``).
        """
        if self._past(deadline):
            return CancelOutcome("failed", None, "not sent: the deadline has passed")
        log_event(self._logger, logging.INFO, "cancel_requested", order_id=order_id)
        try:
            self.recovery.call(
                lambda: self.broker.cancel(order_id),
                deadline=deadline,
                order_id=order_id,
                stats=stats,
            )
            outcome = CancelOutcome("accepted", 204, "cancel request accepted")
        except RefusedError as err:
            kind: Literal["not_cancelable", "not_found", "failed"] = (
                "not_cancelable"
                if err.status_code == 422
                else "not_found"
                if err.status_code == 404
                else "failed"
            )
            outcome = CancelOutcome(kind, err.status_code, err.message)
        except BrokerError as err:
            outcome = CancelOutcome("failed", err.status_code, err.message)
        log_event(
            self._logger,
            logging.INFO,
            "cancel_result",
            order_id=order_id,
            outcome=outcome.kind,
            status_code=outcome.status_code,
            message=outcome.message,
        )
        return outcome

    def fill_price_from_activities(
        self, order_id: str, filled_qty: Decimal, *, deadline: float | None, stats: RetryStats
    ) -> Decimal | None:
        """The order's VWAP from its FILL activities, if they add up to ``filled_qty``.

        A fourth, independent source for when the order says filled but its price is still
        null. Returns None when the client cannot list activities or they do not add up.
        """
        if not self.broker.can_list_activities or filled_qty <= 0 or self._past(deadline):
            return None
        try:
            rows = self.recovery.call(
                lambda: self.broker.fill_activities({"direction": "desc", "page_size": 100}),
                deadline=deadline,
                order_id=order_id,
                stats=stats,
            )
        except BrokerError:
            return None
        qty = notional = Decimal(0)
        for row in rows if isinstance(rows, list) else []:
            if not isinstance(row, dict) or str(row.get("order_id")) != order_id:
                continue
            q, p = to_decimal(row.get("qty")), to_decimal(row.get("price"))
            if q is None or p is None or q <= 0 or p <= 0:
                return None
            qty += q
            notional += q * p
        if qty != filled_qty or qty == 0:
            return None
        return (notional / qty).quantize(Decimal("0.000000001"))
