"""What the executor writes to its journal, and where a crash test may stop it.

:class:`TradeJournal` turns the executor's steps into journal records, in the order recovery
relies on: the intent before anything is sent (a failed write means the trade is not sent),
an attempt before each POST (a failed write means that POST is not sent), the submit outcome,
each booking as it grows, each symbol's baseline, and the final status. Without a journal every
call is a no-op.

Only the intent and the attempts stop a trade when they cannot be written: they are what makes
a crash recoverable. The later records are written as well as the journal can; a failure is
logged at ERROR and the trade goes on (its truth is at the broker, and recovery looks it up).

:data:`CHECKPOINTS` name the moments between records: a test passes ``checkpoint=`` to the
executor to stop (or kill) the process at one of them, so every crash window is hit on purpose
rather than by luck. Production code never reads an environment variable for this.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from fillguard.book import Booking as BookEntry
from fillguard.clock import Clock
from fillguard.intent import OrderIntent
from fillguard.journal import (
    Baseline,
    Booking,
    Journal,
    JournalAccount,
    JournalAccountError,
    JournalError,
    JournalTrade,
    OutcomeKind,
    SubmitAttempt,
    SubmitOutcome,
    TradeFinal,
    TradeIntent,
)
from fillguard.journal_sqlite import SqliteJournal
from fillguard.logs import log_event
from fillguard.observer import NULL_OBSERVER, Observer
from fillguard.outcome import TradeOutcome, TradeResult
from fillguard.results import FillResult, FillStatus

__all__ = [
    "CHECKPOINTS",
    "AttemptNotRecorded",
    "Checkpoint",
    "TradeJournal",
    "journal_account",
    "open_journal",
]

_logger = logging.getLogger("fillguard.journal")

#: Where ``checkpoint(name)`` is called, in a trade's order.
CHECKPOINTS = (
    "intent_recorded",  # the intent is durable; nothing sent yet
    "attempt_recorded",  # an attempt is durable; its POST not sent yet
    "post_answered",  # the POST's answer is in; the outcome not recorded yet
    "outcome_recorded",  # the outcome is durable; monitoring not started
    "monitoring",  # the order is being watched
    "fill_seen",  # the final word is in; its booking not recorded yet
    "booked",  # the bookings are durable; the final status not recorded yet
)

Checkpoint = Callable[[str], None]

_FINAL_STATUS = {
    TradeOutcome.REFUSED: FillStatus.REJECTED,
    TradeOutcome.NOT_PLACED: FillStatus.CANCELED,
}


class AttemptNotRecorded(Exception):
    """An attempt could not be made durable, so its POST must not be sent."""

    def __init__(self, attempt: int, error: JournalError) -> None:
        self.attempt = attempt
        self.error = error
        super().__init__(f"attempt {attempt} not recorded: {error}")


class TradeJournal:
    """The executor's writer: records for one journal (or none)."""

    def __init__(
        self,
        journal: Journal | None,
        clock: Clock,
        *,
        checkpoint: Checkpoint | None = None,
        logger: logging.Logger | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.journal = journal
        self._observer = observer or NULL_OBSERVER
        self._clock = clock
        self._checkpoint = checkpoint
        self._logger = logger or _logger
        self._lock = threading.Lock()
        # Per client order id: attempts already in the journal (a resubmit numbers on), or
        # None for a trade the journal holds as finished (a replay: no attempt is recorded).
        self._attempt_base: dict[str, int | None] = {}

    def checkpoint(self, name: str) -> None:
        """Tell the test hook where the trade is (nothing without one)."""
        if self._checkpoint is not None:
            self._checkpoint(name)

    def _now(self) -> datetime:
        return self._clock.now()

    # ------------------------------------------------------------------ must succeed
    def intent(self, intent: OrderIntent) -> str | None:
        """Record the intent; None when durable, else why not (the trade must not be sent)."""
        if self.journal is None:
            return None
        record = TradeIntent(
            client_order_id=intent.client_order_id,
            symbol=intent.symbol,
            side=intent.side,
            qty=intent.qty,
            order_type=intent.order_type,
            time_in_force=intent.time_in_force,
            created_at=intent.created_at or self._now(),
            limit_price=intent.limit_price,
            stop_price=intent.stop_price,
            expected_price=intent.expected_price,
            notional=intent.notional,
        )
        try:
            known = self.journal.trade(intent.client_order_id)
            if known is not None:
                return self._known_intent(record, known)
            started = time.perf_counter()
            self.journal.record_intent(record)
        except JournalError as err:
            log_event(
                self._logger,
                logging.ERROR,
                "journal_intent_failed",
                client_order_id=intent.client_order_id,
                error=str(err),
            )
            return f"not sent: the journal could not record the intent ({err})"
        self._observer.journal_write("intent", time.perf_counter() - started)
        self.checkpoint("intent_recorded")
        return None

    def _known_intent(self, record: TradeIntent, known: JournalTrade) -> str | None:
        """The journal already holds this client order id: the same trade again, or not
        (when it was decided and at what expected price do not make it another trade)."""
        recorded = known.intent
        again = replace(
            record, created_at=recorded.created_at, expected_price=recorded.expected_price
        )
        if again != recorded:
            return (
                f"not sent: the journal holds a different trade under client_order_id "
                f"{record.client_order_id!r}"
            )
        with self._lock:
            self._attempt_base[record.client_order_id] = (
                None if known.finished else known.attempt_count
            )
        self.checkpoint("intent_recorded")
        return None

    def attempt(self, client_order_id: str, attempt: int) -> None:
        """Record attempt ``attempt``; raises :class:`AttemptNotRecorded` if it cannot."""
        with self._lock:
            base = self._attempt_base.get(client_order_id, 0)
        if self.journal is not None and base is not None:
            started = time.perf_counter()
            try:
                self.journal.record_attempt(
                    SubmitAttempt(
                        client_order_id=client_order_id, attempt=base + attempt, at=self._now()
                    )
                )
            except JournalError as err:
                log_event(
                    self._logger,
                    logging.ERROR,
                    "journal_attempt_failed",
                    client_order_id=client_order_id,
                    attempt=attempt,
                    error=str(err),
                )
                raise AttemptNotRecorded(attempt, err) from err
            self._observer.journal_write("attempt", time.perf_counter() - started)
        self.checkpoint("attempt_recorded")

    # ------------------------------------------------------------------ best effort
    def _write(self, what: str, client_order_id: str | None, write: Callable[[], object]) -> None:
        if self.journal is None:
            return
        started = time.perf_counter()
        try:
            write()
            self._observer.journal_write(what, time.perf_counter() - started)
        except (JournalError, ValueError) as err:  # InvalidInputError is a ValueError
            log_event(
                self._logger,
                logging.ERROR,
                "journal_write_failed",
                record=what,
                client_order_id=client_order_id,
                error=str(err),
            )

    def outcome(
        self,
        client_order_id: str,
        outcome: TradeOutcome,
        *,
        order_id: str | None = None,
        status_code: int | None = None,
        code: int | None = None,
        message: str | None = None,
    ) -> None:
        """Record how the submission ended (UNKNOWN is recorded as unresolved)."""
        kind = {
            TradeOutcome.PLACED: OutcomeKind.PLACED,
            TradeOutcome.REFUSED: OutcomeKind.REFUSED,
            TradeOutcome.NOT_PLACED: OutcomeKind.NOT_PLACED,
            TradeOutcome.UNKNOWN: OutcomeKind.UNRESOLVED,
        }[outcome]
        journal = self.journal
        if journal is not None:
            placed = kind is OutcomeKind.PLACED

            def write() -> None:
                journal.record_outcome(
                    SubmitOutcome(
                        client_order_id=client_order_id,
                        outcome=kind,
                        at=self._now(),
                        order_id=order_id if placed else None,
                        status_code=None if placed else status_code,
                        code=None if placed else code,
                        message=None if placed else message,
                    )
                )

            self._write("outcome", client_order_id, write)
        self.checkpoint("outcome_recorded")

    def booked(self, entry: BookEntry) -> None:
        """The book's sink: an order's cumulative quantity grew."""
        journal = self.journal
        coid = entry.client_order_id
        if journal is None or coid is None:
            return  # not one of ours (no intent to hang it on)

        def write() -> None:
            journal.record_booking(
                Booking(
                    order_id=entry.order_id,
                    client_order_id=coid,
                    symbol=entry.symbol,
                    side=entry.side,
                    filled_qty=entry.filled_qty,
                    at=self._now(),
                )
            )

        self._write("booking", coid, write)

    def baseline(self, symbol: str, qty: Decimal, at: datetime) -> None:
        """The book's sink: ``symbol`` counts from ``qty`` (taken at ``at``)."""
        journal = self.journal
        if journal is None:
            return
        self._write(
            "baseline",
            None,
            lambda: journal.record_baseline(Baseline(symbol=symbol, qty=qty, at=at)),
        )

    def final(self, result: TradeResult) -> None:
        """Record how the trade ended, unless its truth is still unknown (it stays open)."""
        journal = self.journal
        if journal is None or result.outcome is TradeOutcome.UNKNOWN:
            return
        fill = result.fill
        coid = result.client_order_id
        if result.outcome is TradeOutcome.PLACED and (
            fill is None or fill.status is FillStatus.UNKNOWN
        ):
            return  # an order exists whose end is unknown: recovery must look at it

        def write() -> None:
            if fill is not None and result.outcome is TradeOutcome.PLACED:
                record = _final_of_fill(coid, fill, self._now())
            else:
                status = _FINAL_STATUS[result.outcome]
                record = TradeFinal(
                    client_order_id=coid, status=status, filled_qty=Decimal(0), at=self._now()
                )
            journal.record_final(record)

        self._write("final", coid, write)


def journal_account(client: object) -> JournalAccount:
    """The account an alpaca-py client trades (its key id and base URL; never the secret)."""
    key = getattr(client, "_api_key", None)
    base = getattr(client, "_base_url", None)
    base_url = str(getattr(base, "value", base) or "")
    if not base_url.startswith(("http://", "https://")):
        base_url = "http://in-process.invalid"  # a client with no URL (an in-process simulator)
    return JournalAccount(
        key_id=key if isinstance(key, str) and key else "anonymous", base_url=base_url
    )


def open_journal(
    client: object,
    path: str | os.PathLike[str] | None,
    journal: Journal | None,
    clock: Clock,
) -> Journal | None:
    """The executor's journal: ``journal`` if given (checked against the client's account),
    else a :class:`SqliteJournal` at ``path`` (created if missing), else None."""
    account = journal_account(client)
    if journal is not None:
        if journal.account != account:
            raise JournalAccountError(
                f"the journal belongs to {journal.account.masked_key_id()} at "
                f"{journal.account.base_url}, not {account.masked_key_id()} at {account.base_url}",
                path=getattr(journal, "path", None),
            )
        return journal
    if path is None:
        return None
    return SqliteJournal(path, account=account, clock=clock)


def _final_of_fill(client_order_id: str, fill: FillResult, at: datetime) -> TradeFinal:
    chain = tuple(link.order_id for link in fill.chain) or (fill.order_id,)
    # A FILLED FillResult always has a price and a quantity; an unfilled one may carry 0.
    price = fill.fill_price if fill.fill_price is not None and fill.fill_price > 0 else None
    return TradeFinal(
        client_order_id=client_order_id,
        status=fill.status,
        filled_qty=fill.filled_qty,
        at=at,
        fill_price=price,
        order_ids=chain,
    )
