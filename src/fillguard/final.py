"""Final verification: the last word at the deadline, and the truth after a cancel request.

A cancel answer proves nothing by itself. 204 means only that the request was accepted
(``pending_cancel`` can still end ``filled``); 422 ``order is already in "filled" state``
means look and return the fill. So after any cancel attempt the handler keeps reading the
order until the broker states a final answer (terminal status, and a price for a fill) or the
budget runs out, in which case it says so (``settled=False``) rather than guess.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime

from fillguard.clock import Clock
from fillguard.config import FillDetectionConfig
from fillguard.errors import BrokerError
from fillguard.gateway import CancelOutcome, OrderGateway
from fillguard.logs import log_event
from fillguard.results import FillVerification
from fillguard.retry import RetryStats
from fillguard.snapshot import OrderSnapshot
from fillguard.verify import MultiMethodVerifier
from fillguard.waiting import pause

__all__ = ["FinalCheck", "FinalVerificationHandler", "is_older_read"]

_logger = logging.getLogger("fillguard.final")

# Live statuses in which a cancel that failed to arrive is worth sending again.
_RESEND = frozenset({"accepted", "pending_new", "new", "partially_filled", "done_for_day"})


def is_older_read(known: OrderSnapshot, new: OrderSnapshot) -> bool:
    """Whether ``new`` shows an earlier state of the order than ``known`` (a stale read).

    Filled quantity never shrinks and a terminal status never changes, so a read that says
    otherwise is an older version of the order, not news.
    """
    if new.filled_qty < known.filled_qty:
        return True
    return known.is_terminal and new.status != known.status


@dataclass(frozen=True, slots=True)
class FinalCheck:
    """What the last reads established.

    ``settled`` is True only when the broker said something final: a complete fill with its
    price, or a terminal status (canceled, expired, rejected, ...) with its filled quantity.
    """

    snapshot: OrderSnapshot | None
    verification: FillVerification | None
    settled: bool
    cancel: CancelOutcome | None = None
    #: Where the fill price came from: ``"order"`` or ``"activities"`` (the FILL activities).
    price_source: str = "order"

    @property
    def filled(self) -> bool:
        """A complete, priced fill was seen."""
        return (
            self.verification is not None
            and self.verification.is_filled
            and self.snapshot is not None
            and self.snapshot.filled_avg_price is not None
        )


class FinalVerificationHandler:
    """Performs the final check and the post-cancel verification within a time budget.

    ``grace_until`` (a ``clock.monotonic()`` value) is when a 404 stops meaning "not visible
    yet": pass ``math.inf`` for an order already seen, whose 404 can only be a stale read.
    """

    def __init__(
        self,
        gateway: OrderGateway,
        config: FillDetectionConfig,
        clock: Clock,
        *,
        verifier: MultiMethodVerifier | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.gateway = gateway
        self.config = config
        self.clock = clock
        self.verifier = verifier or MultiMethodVerifier()
        self._logger = logger or _logger

    def _deadline(self, deadline: float | None) -> float:
        if deadline is not None:
            return deadline
        return self.clock.monotonic() + self.config.final_verification_seconds

    def perform_final_check(
        self,
        order_id: str,
        *,
        deadline: float | None = None,
        stats: RetryStats | None = None,
        submitted_at: datetime | None = None,
        grace_until: float | None = None,
    ) -> FinalCheck:
        """One last status check (with retries); keeps reading only for a fill's missing price."""
        check = self._settle(
            order_id,
            deadline=self._deadline(deadline),
            stats=stats or RetryStats(),
            submitted_at=submitted_at,
            until_terminal=False,
            grace_until=grace_until,
        )
        log_event(
            self._logger,
            logging.INFO,
            "final_check",
            order_id=order_id,
            status=check.snapshot.status if check.snapshot else None,
            filled=check.filled,
            settled=check.settled,
        )
        return check

    def verify_after_cancel_attempt(
        self,
        order_id: str,
        *,
        deadline: float | None = None,
        stats: RetryStats | None = None,
        submitted_at: datetime | None = None,
        grace_until: float | None = None,
    ) -> FinalCheck:
        """Cancel, then read until the order is terminal (or the budget ends)."""
        stats = stats or RetryStats()
        deadline = self._deadline(deadline)
        outcome = self.gateway.cancel(order_id, deadline=deadline, stats=stats)
        check = self._settle(
            order_id,
            deadline=deadline,
            stats=stats,
            submitted_at=submitted_at,
            until_terminal=True,
            cancel=outcome,
            grace_until=grace_until,
        )
        outcome = check.cancel or outcome
        check = FinalCheck(check.snapshot, check.verification, check.settled, outcome)
        log_event(
            self._logger,
            logging.INFO,
            "post_cancel_check",
            order_id=order_id,
            cancel=outcome.kind,
            status=check.snapshot.status if check.snapshot else None,
            filled_qty=check.snapshot.filled_qty if check.snapshot else None,
            filled=check.filled,
            settled=check.settled,
        )
        return check

    def _settle(
        self,
        order_id: str,
        *,
        deadline: float,
        stats: RetryStats,
        submitted_at: datetime | None,
        until_terminal: bool,
        cancel: CancelOutcome | None = None,
        grace_until: float | None = None,
    ) -> FinalCheck:
        last: OrderSnapshot | None = None
        verification: FillVerification | None = None
        unpriced = 0
        while True:
            try:
                snap = self.gateway.read(
                    order_id, deadline=deadline, stats=stats, grace_until=grace_until
                )
            except BrokerError:  # refused, failing or unreadable: this read says nothing
                snap = None
            if snap is not None and snap.is_half_updated:
                log_event(
                    self._logger,
                    logging.INFO,
                    "half_updated_read",
                    order_id=order_id,
                    status=snap.status,
                    filled_qty=snap.filled_qty,
                    filled_avg_price=snap.filled_avg_price,
                )
                snap = None
            if snap is not None and last is not None and is_older_read(last, snap):
                log_event(
                    self._logger,
                    logging.INFO,
                    "stale_read_ignored",
                    order_id=order_id,
                    status=snap.status,
                    filled_qty=snap.filled_qty,
                    known_status=last.status,
                    known_filled_qty=last.filled_qty,
                )
                snap = None
            if snap is not None and snap.status is not None:
                last = snap
                verification = self.verifier.verify_fill(snap, submitted_at=submitted_at)
                if verification.is_filled:
                    if snap.filled_avg_price is not None:
                        return FinalCheck(snap, verification, settled=True, cancel=cancel)
                    log_event(
                        self._logger,
                        logging.INFO,
                        "fill_price_pending",
                        order_id=order_id,
                        status=snap.status,
                        filled_qty=snap.filled_qty,
                    )
                    unpriced += 1
                    if unpriced >= 2:
                        # Still no price on a second look: ask the FILL activities now, while
                        # the budget allows a request (nothing is sent after the deadline).
                        price = self.gateway.fill_price_from_activities(
                            order_id, snap.filled_qty, deadline=deadline, stats=stats
                        )
                        if price is not None:
                            priced = replace(snap, filled_avg_price=price)
                            return FinalCheck(
                                priced, verification, True, cancel, price_source="activities"
                            )
                elif snap.is_terminal:
                    return FinalCheck(snap, verification, settled=True, cancel=cancel)
                elif not until_terminal:
                    return FinalCheck(snap, verification, settled=False)
                elif cancel is not None and cancel.kind == "failed" and snap.status in _RESEND:
                    # The cancel never got through and the order is still live: send it again.
                    cancel = self.gateway.cancel(order_id, deadline=deadline, stats=stats)
            if pause(self.clock, self.config.initial_poll_interval, deadline=deadline) <= 0:
                return FinalCheck(last, verification, settled=False, cancel=cancel)
