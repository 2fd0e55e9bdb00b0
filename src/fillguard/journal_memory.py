"""A :class:`~fillguard.journal.Journal` in memory, for tests: same rules, nothing survives.

It applies the same conflict and no-op rules as the SQLite journal (``fillguard.journal``'s
``check_*`` functions), so a test that runs against it sees the behaviour of the real one.
"""

from __future__ import annotations

import threading

from fillguard.journal import (
    Baseline,
    Booking,
    JournalAccount,
    JournalError,
    JournalTrade,
    SubmitAttempt,
    SubmitOutcome,
    TradeFinal,
    TradeIntent,
    check_attempt,
    check_booking,
    check_final,
    check_intent,
    check_outcome,
    check_page,
)

__all__ = ["InMemoryJournal"]


class InMemoryJournal:
    """A thread-safe journal held in dicts; :meth:`close` makes every later call fail."""

    def __init__(self, account: JournalAccount) -> None:
        """A journal for ``account``, empty."""
        self._account = account
        self._lock = threading.Lock()
        self._closed = False
        self._intents: dict[str, TradeIntent] = {}
        self._attempts: dict[str, list[SubmitAttempt]] = {}
        self._outcomes: dict[str, list[SubmitOutcome]] = {}
        self._bookings: dict[str, Booking] = {}  # by order id, in first-booked order
        self._booked_orders: dict[str, list[str]] = {}  # client_order_id -> order ids
        self._baselines: list[Baseline] = []
        self._finals: dict[str, TradeFinal] = {}

    @property
    def account(self) -> JournalAccount:
        """The account given at construction."""
        return self._account

    def _check_open(self) -> None:
        if self._closed:
            raise JournalError("the in-memory journal is closed")

    def _trade(self, client_order_id: str) -> JournalTrade | None:
        intent = self._intents.get(client_order_id)
        if intent is None:
            return None
        return JournalTrade(
            intent=intent,
            attempts=tuple(self._attempts.get(client_order_id, ())),
            outcomes=tuple(self._outcomes.get(client_order_id, ())),
            bookings=tuple(self._bookings[o] for o in self._booked_orders.get(client_order_id, ())),
            final=self._finals.get(client_order_id),
        )

    def record_intent(self, intent: TradeIntent) -> bool:
        """Store the intent; False if the identical one is there."""
        with self._lock:
            self._check_open()
            if not check_intent(self._intents.get(intent.client_order_id), intent, None):
                return False
            self._intents[intent.client_order_id] = intent
            return True

    def record_attempt(self, attempt: SubmitAttempt) -> bool:
        """Store the attempt; False if the identical one is there."""
        with self._lock:
            self._check_open()
            if not check_attempt(self._trade(attempt.client_order_id), attempt, None):
                return False
            self._attempts.setdefault(attempt.client_order_id, []).append(attempt)
            return True

    def record_outcome(self, outcome: SubmitOutcome) -> None:
        """Append the outcome."""
        with self._lock:
            self._check_open()
            check_outcome(self._trade(outcome.client_order_id), outcome, None)
            self._outcomes.setdefault(outcome.client_order_id, []).append(outcome)

    def record_booking(self, booking: Booking) -> bool:
        """Store the booking if the order's cumulative quantity grew."""
        with self._lock:
            self._check_open()
            trade = self._trade(booking.client_order_id)
            existing = self._bookings.get(booking.order_id)
            if not check_booking(trade, existing, booking, None):
                return False
            if existing is None:
                self._booked_orders.setdefault(booking.client_order_id, []).append(booking.order_id)
            self._bookings[booking.order_id] = booking
            return True

    def record_baseline(self, baseline: Baseline) -> None:
        """Append the baseline."""
        with self._lock:
            self._check_open()
            self._baselines.append(baseline)

    def record_final(self, final: TradeFinal) -> bool:
        """Store the final status; False if the identical one is there."""
        with self._lock:
            self._check_open()
            if not check_final(self._trade(final.client_order_id), final, None):
                return False
            self._finals[final.client_order_id] = final
            return True

    def trade(self, client_order_id: str) -> JournalTrade | None:
        """One trade, or None."""
        with self._lock:
            self._check_open()
            return self._trade(client_order_id)

    def trades(self, *, limit: int | None = None, offset: int = 0) -> list[JournalTrade]:
        """Trades in intent order."""
        check_page(limit, offset)
        with self._lock:
            self._check_open()
            ids = list(self._intents)[offset:]
            ids = ids if limit is None else ids[:limit]
            return [t for t in map(self._trade, ids) if t is not None]

    def unfinished(self) -> list[JournalTrade]:
        """Trades with no final status, in intent order."""
        with self._lock:
            self._check_open()
            ids = [c for c in self._intents if c not in self._finals]
            return [t for t in map(self._trade, ids) if t is not None]

    def bookings(self) -> list[Booking]:
        """Every order's latest booking, in first-booked order."""
        with self._lock:
            self._check_open()
            return list(self._bookings.values())

    def baselines(self) -> dict[str, Baseline]:
        """The latest baseline per symbol."""
        with self._lock:
            self._check_open()
            return {b.symbol: b for b in self._baselines}

    def close(self) -> None:
        """Mark the journal closed (its contents are dropped)."""
        with self._lock:
            self._closed = True
