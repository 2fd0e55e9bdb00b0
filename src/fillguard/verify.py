"""Multi-method fill verification: four independent, individually sound witnesses of a fill.

The plan asks for "ANY method = filled" *and* "zero false positives". Both hold only if every
method is on its own a sound witness of a **complete** fill, so each check below demands
evidence that cannot appear on a partial, open or canceled order:

* ``status_field``   the broker says ``filled`` (Alpaca sets it only once the whole qty executed);
* ``quantity_match`` the executed quantity reaches the requested quantity;
* ``fill_price``     an average price exists *and* the quantity is complete (partials have prices);
* ``timestamps``     ``filled_at`` exists, is not before submission, and the quantity is complete
                     (or, for qty-less notional orders, nothing contradicts a fill).

Redundancy then covers broker-side lag between fields: whichever field shows the fill first is
enough, and the others raise the confidence.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from fillguard.logs import log_event
from fillguard.results import FillVerification
from fillguard.snapshot import (
    FILLED_STATUS,
    OPEN_STATUSES,
    UNFILLED_TERMINAL_STATUSES,
    OrderSnapshot,
)

__all__ = ["VERIFICATION_METHODS", "MultiMethodVerifier", "has_complete_fill_evidence"]

#: Method names in the order they are evaluated and reported.
VERIFICATION_METHODS: tuple[str, ...] = (
    "status_field",
    "quantity_match",
    "fill_price",
    "timestamps",
)

_logger = logging.getLogger("fillguard.verify")

# Statuses that positively say "not (completely) filled"; a timestamp cannot outvote them.
_CONTRADICTING_STATUSES = OPEN_STATUSES | UNFILLED_TERMINAL_STATUSES


def has_complete_fill_evidence(order: object, *, submitted_at: datetime | None = None) -> bool:
    """Whether the read carries everything a FILLED result needs: a fill, a price and a qty.

    A broker may flip ``status`` to ``filled`` a moment before ``filled_avg_price`` is set;
    callers use this to decide whether to read once more before reporting the fill. Does not log.
    """
    snapshot = OrderSnapshot.from_any(order)
    results = _SILENT.method_results(snapshot, submitted_at=submitted_at)
    return (
        any(results.values())
        and snapshot.filled_avg_price is not None
        and snapshot.filled_avg_price > 0
        and snapshot.filled_qty > 0
    )


class MultiMethodVerifier:
    """Decides from one order read whether the order is completely filled.

    ``clock_skew`` loosens the ``timestamps`` check's "filled_at not before submitted_at" by
    that much, for when ``submitted_at`` comes from a local clock rather than the broker's.
    """

    def __init__(
        self,
        *,
        clock_skew: timedelta = timedelta(0),
        logger: logging.Logger | None = None,
    ) -> None:
        self._clock_skew = clock_skew
        self._logger = logger or _logger

    @staticmethod
    def check_status_field(snapshot: OrderSnapshot) -> bool:
        """The normalised status is ``filled``.

        Sound by the broker's contract: ``filled`` means the whole quantity executed and no more
        updates follow (``partially_filled`` is a different status).
        """
        return snapshot.status == FILLED_STATUS

    @staticmethod
    def check_quantity_match(snapshot: OrderSnapshot) -> bool:
        """The requested qty is known and positive and ``filled_qty >= qty`` (exact Decimals).

        Sound: the full requested quantity has executed, whatever the status field says yet.
        Unknown qty (notional orders) proves nothing here.
        """
        return snapshot.quantity_complete

    @staticmethod
    def check_fill_price(snapshot: OrderSnapshot) -> bool:
        """An average fill price > 0 exists *and* the quantity is complete.

        A price alone is not sound: a partially filled order has an average price too. So this
        method confirms only a priced, complete fill; on its own it adds the price evidence.
        """
        price = snapshot.filled_avg_price
        return price is not None and price > 0 and snapshot.quantity_complete

    def check_timestamps(
        self, snapshot: OrderSnapshot, *, submitted_at: datetime | None = None
    ) -> bool:
        """``filled_at`` is set, not before submission, and the quantity is complete.

        A ``filled_at`` earlier than submission belongs to some other order or a broken record,
        so it proves nothing. Some brokers stamp ``filled_at`` on partial fills, so when qty is
        known it must be complete too. When qty is unknown (notional orders) the timestamp
        confirms only with some executed quantity and a status that does not contradict a fill.
        """
        filled_at = snapshot.filled_at
        if filled_at is None:
            return False
        reference = submitted_at if submitted_at is not None else snapshot.submitted_at
        if reference is not None:
            if reference.tzinfo is None:
                # A naive datetime is taken as UTC, the same rule OrderSnapshot applies.
                reference = reference.replace(tzinfo=UTC)
            if filled_at < reference - self._clock_skew:
                return False
        if snapshot.qty is not None and snapshot.qty > 0:
            return snapshot.quantity_complete
        return snapshot.filled_qty > 0 and snapshot.status not in _CONTRADICTING_STATUSES

    def method_results(
        self, snapshot: OrderSnapshot, *, submitted_at: datetime | None = None
    ) -> dict[str, bool]:
        """Each method's answer by name, in :data:`VERIFICATION_METHODS` order."""
        return {
            "status_field": self.check_status_field(snapshot),
            "quantity_match": self.check_quantity_match(snapshot),
            "fill_price": self.check_fill_price(snapshot),
            "timestamps": self.check_timestamps(snapshot, submitted_at=submitted_at),
        }

    def verify_fill(
        self, order: object, *, submitted_at: datetime | None = None
    ) -> FillVerification:
        """Run all four methods on ``order``; filled if any confirms.

        ``order`` is anything :meth:`OrderSnapshot.from_any` accepts. ``confidence`` is the
        share of methods that agree with the verdict.
        """
        snapshot = OrderSnapshot.from_any(order)
        results = self.method_results(snapshot, submitted_at=submitted_at)
        confirmed = tuple(name for name in VERIFICATION_METHODS if results[name])
        is_filled = bool(confirmed)
        agreeing = sum(1 for value in results.values() if value == is_filled)
        confidence = agreeing / len(results)
        log_event(
            self._logger,
            logging.DEBUG,
            "verification",
            order_id=snapshot.order_id,
            status=snapshot.status,
            is_filled=is_filled,
            confidence=confidence,
            **results,
        )
        return FillVerification(
            is_filled=is_filled,
            methods_confirmed=confirmed,
            method_results=results,
            confidence=confidence,
        )


# Used by has_complete_fill_evidence, which must not emit a "verification" event per call.
_SILENT = MultiMethodVerifier()
