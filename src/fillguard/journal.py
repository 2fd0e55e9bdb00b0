"""The write-ahead journal: what a trade leaves on disk before and after each broker call.

A trade writes, in this order: its :class:`TradeIntent` (committed **before the first POST**), a
:class:`SubmitAttempt` before each POST, each :class:`SubmitOutcome` (placed with the order id,
refused, not placed, unresolved), each :class:`Booking` (the order's cumulative filled quantity,
idempotent by order id), each symbol's :class:`Baseline` and, last, its :class:`TradeFinal`. The
journal belongs to one :class:`JournalAccount` (key id and base URL, never the secret). Reading
gives :class:`JournalTrade` values; :meth:`Journal.unfinished` lists the trades recovery must
look at (an intent with no final status).

Records are frozen values, validated on construction (:class:`~fillguard.errors.InvalidInputError`
names the field): quantities and prices are finite ``Decimal``, times are timezone-aware and kept
in UTC. A record that contradicts the journal (a different intent under a known
``client_order_id``, an attempt for an unknown trade, attempt numbers with a gap, a second,
different final status) raises :class:`JournalConflictError`; re-recording an identical record is
a no-op that returns False, so a retried write is harmless.

Errors (each names the journal's path)::

    JournalError (a FillguardError)
    ├── JournalNotFoundError    no journal at the path (read-only open)
    ├── JournalCorruptError     not a fillguard journal, or damaged: never reset silently
    ├── JournalVersionError     written by a newer fillguard (higher schema version)
    ├── JournalAccountError     the journal belongs to another account
    ├── JournalLockedError      another process (or another open in this one) writes it
    ├── JournalWriteError       a record could not be made durable (disk full, read-only, I/O)
    └── JournalConflictError    a record contradicts what the journal holds

Implementations: :class:`fillguard.journal_memory.InMemoryJournal` (tests) and
:class:`fillguard.journal_sqlite.SqliteJournal` (one process per account). The default file is
:func:`default_journal_path`: ``$XDG_STATE_HOME/fillguard/`` (or ``~/.local/state/fillguard/``)
``journal-<hash>.sqlite3``, one per account, the hash taken over key id and base URL.

A PostgreSQL backend (several processes sharing one account; not implemented) would need:

- a ``UNIQUE`` constraint on ``intents.client_order_id`` and on ``bookings.order_id``, so two
  processes can never both own one id; the conflict rules above become ``INSERT ... ON CONFLICT``
  checks inside the same transaction;
- the same durability point: ``record_intent`` and ``record_attempt`` return only after the
  transaction committed with ``synchronous_commit = on`` (and a synchronous standby, if one is used
  for failover), never through an asynchronous writer queue;
- a per-trade lock: ``SELECT ... FOR UPDATE`` on the intent row (or
  ``pg_advisory_xact_lock(hashtext(client_order_id))``) around attempt, outcome and booking writes,
  so two recoverers cannot submit the same trade; recovery claims unfinished trades with
  ``FOR UPDATE SKIP LOCKED`` and a lease (owner, expiry) instead of one writer per file;
- the booking "only grows" rule as ``UPDATE ... SET filled_qty = EXCLUDED.filled_qty WHERE
  bookings.filled_qty < EXCLUDED.filled_qty``, with ``NUMERIC`` columns (never ``float``);
- the account as a column (or schema) with every query filtered by it, and the schema version in a
  table migrated under an advisory lock.

Nothing in :class:`Journal` is SQLite-specific, so such a backend implements the same protocol.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Protocol, runtime_checkable

from fillguard.errors import FillguardError, InvalidInputError
from fillguard.journal_records import (
    Baseline,
    Booking,
    JournalAccount,
    JournalTrade,
    OutcomeKind,
    SubmitAttempt,
    SubmitOutcome,
    TradeFinal,
    TradeIntent,
    normalize_base_url,
    record_to_dict,
)

__all__ = [
    "LIVE_BASE_URL",
    "PAPER_BASE_URL",
    "Baseline",
    "Booking",
    "Journal",
    "JournalAccount",
    "JournalAccountError",
    "JournalConflictError",
    "JournalCorruptError",
    "JournalError",
    "JournalLockedError",
    "JournalNotFoundError",
    "JournalTrade",
    "JournalVersionError",
    "JournalWriteError",
    "OutcomeKind",
    "SubmitAttempt",
    "SubmitOutcome",
    "TradeFinal",
    "TradeIntent",
    "check_attempt",
    "check_booking",
    "check_final",
    "check_intent",
    "check_outcome",
    "check_page",
    "default_journal_path",
    "normalize_base_url",
    "record_to_dict",
]


# ---------------------------------------------------------------------------------- errors
class JournalError(FillguardError):
    """Base of every journal error; ``path`` is the journal's file (None in memory)."""

    def __init__(self, message: str, *, path: str | os.PathLike[str] | None = None) -> None:
        self.path = None if path is None else str(path)
        self.message = message
        super().__init__(message if path is None else f"journal {path}: {message}")


class JournalNotFoundError(JournalError):
    """There is no journal at the path (a read-only open never creates one)."""


class JournalCorruptError(JournalError):
    """The file is not a fillguard journal, or it is damaged; it is never reset silently."""


class JournalVersionError(JournalError):
    """The journal's schema is newer than this fillguard knows (or too old to read as is)."""


class JournalAccountError(JournalError):
    """The journal belongs to another account (key id or base URL differ)."""


class JournalLockedError(JournalError):
    """Another writer holds the journal (another process, or another open in this one)."""


class JournalWriteError(JournalError):
    """A record could not be made durable: disk full, read-only file or I/O error.

    The record is not in the journal; for an intent, the trade must not be sent.
    """


class JournalConflictError(JournalError):
    """A record contradicts what the journal already holds (see the module docstring)."""


# ---------------------------------------------------------------------------------- rules
# Shared by every implementation, so they agree on what is a no-op and what is a conflict.
def check_intent(existing: TradeIntent | None, intent: TradeIntent, path: str | None) -> bool:
    """True: write it; False: the same intent is already there; conflict if it differs."""
    if existing is None:
        return True
    if existing == intent:
        return False
    raise JournalConflictError(
        f"client_order_id {intent.client_order_id!r} already has a different intent", path=path
    )


def _known(trade: JournalTrade | None, client_order_id: str, path: str | None) -> JournalTrade:
    if trade is None:
        raise JournalConflictError(f"no intent for client_order_id {client_order_id!r}", path=path)
    return trade


def check_attempt(trade: JournalTrade | None, attempt: SubmitAttempt, path: str | None) -> bool:
    """Attempts are numbered 1, 2, ... with no gap, and none after the final status."""
    known = _known(trade, attempt.client_order_id, path)
    if attempt.attempt <= known.attempt_count:
        if known.attempts[attempt.attempt - 1] == attempt:
            return False
        raise JournalConflictError(
            f"attempt {attempt.attempt} of {attempt.client_order_id!r} is already recorded "
            "differently",
            path=path,
        )
    if known.final is not None:
        raise JournalConflictError(
            f"trade {attempt.client_order_id!r} is finished; no attempt after its final status",
            path=path,
        )
    if attempt.attempt != known.attempt_count + 1:
        raise JournalConflictError(
            f"attempt {attempt.attempt} of {attempt.client_order_id!r} follows attempt "
            f"{known.attempt_count}: attempts are numbered without gaps",
            path=path,
        )
    return True


def check_outcome(trade: JournalTrade | None, outcome: SubmitOutcome, path: str | None) -> None:
    """An outcome needs the trade's intent and comes before its final status."""
    known = _known(trade, outcome.client_order_id, path)
    if known.final is not None:
        raise JournalConflictError(
            f"trade {outcome.client_order_id!r} is finished; no outcome after its final status",
            path=path,
        )


def check_booking(
    trade: JournalTrade | None, existing: Booking | None, booking: Booking, path: str | None
) -> bool:
    """True: store it (the quantity grew, or it is the order's first); False: a no-op."""
    intent = _known(trade, booking.client_order_id, path).intent
    if (booking.symbol, booking.side) != (intent.symbol, intent.side):
        raise JournalConflictError(
            f"booking of order {booking.order_id!r} is {booking.side} {booking.symbol}, but trade "
            f"{intent.client_order_id!r} is {intent.side} {intent.symbol}",
            path=path,
        )
    if existing is None:
        return booking.filled_qty > 0
    if existing.client_order_id != booking.client_order_id:
        raise JournalConflictError(
            f"order {booking.order_id!r} is booked for {existing.client_order_id!r}, "
            f"not {booking.client_order_id!r}",
            path=path,
        )
    return booking.filled_qty > existing.filled_qty


def check_final(trade: JournalTrade | None, final: TradeFinal, path: str | None) -> bool:
    """One final status per trade; the identical one again is a no-op."""
    known = _known(trade, final.client_order_id, path)
    if known.final is None:
        return True
    if known.final == final:
        return False
    raise JournalConflictError(
        f"trade {final.client_order_id!r} already finished as {known.final.status.value}",
        path=path,
    )


# ---------------------------------------------------------------------------------- protocol
@runtime_checkable
class Journal(Protocol):
    """Where trades are recorded before and after each broker call. Thread-safe.

    Every ``record_*`` call returns only once the record is stored as durably as the
    implementation promises (for :class:`~fillguard.journal_sqlite.SqliteJournal`: intent and
    attempt are fsynced), or raises :class:`JournalWriteError` with nothing stored.
    """

    @property
    def account(self) -> JournalAccount:
        """The account this journal belongs to."""
        ...

    def record_intent(self, intent: TradeIntent) -> bool:
        """Store the intent (before the first POST); False if the identical one is there."""
        ...

    def record_attempt(self, attempt: SubmitAttempt) -> bool:
        """Store an attempt (before its POST); False if the identical one is there."""
        ...

    def record_outcome(self, outcome: SubmitOutcome) -> None:
        """Append a submit outcome."""
        ...

    def record_booking(self, booking: Booking) -> bool:
        """Store the order's cumulative filled quantity; False when it did not grow (no-op)."""
        ...

    def record_baseline(self, baseline: Baseline) -> None:
        """Append a symbol's baseline; :meth:`baselines` gives the latest per symbol."""
        ...

    def record_final(self, final: TradeFinal) -> bool:
        """Store the trade's final status; False if the identical one is there."""
        ...

    def trade(self, client_order_id: str) -> JournalTrade | None:
        """One trade, None if the journal has no intent with that id."""
        ...

    def trades(self, *, limit: int | None = None, offset: int = 0) -> list[JournalTrade]:
        """Trades in the order their intents were recorded (all when ``limit`` is None)."""
        ...

    def unfinished(self) -> list[JournalTrade]:
        """Trades with no final status, in the order their intents were recorded."""
        ...

    def bookings(self) -> list[Booking]:
        """Every order's latest booking, in the order each order was first booked."""
        ...

    def baselines(self) -> dict[str, Baseline]:
        """The latest baseline of each symbol."""
        ...

    def close(self) -> None:
        """Release the journal (idempotent)."""
        ...


def check_page(limit: int | None, offset: int) -> None:
    """Validate ``trades()`` paging arguments."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise InvalidInputError("limit", f"must be an integer >= 0 or None, got {limit!r}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidInputError("offset", f"must be an integer >= 0, got {offset!r}")


# ---------------------------------------------------------------------------------- path
#: Alpaca's trading endpoints (alpaca-py's ``BaseURL.TRADING_PAPER`` / ``TRADING_LIVE``).
PAPER_BASE_URL = "https://paper-api.alpaca.markets"
LIVE_BASE_URL = "https://api.alpaca.markets"


def default_journal_path(key_id: str, base_url: str) -> Path:
    """The account's journal file: ``<state dir>/fillguard/journal-<16 hex>.sqlite3``.

    The state directory is ``$XDG_STATE_HOME`` when it is set to an absolute path (the XDG base
    directory spec ignores relative ones), else ``~/.local/state``. The name is the first 16 hex
    digits of SHA-256 over the key id and the normalised base URL: one file per account and
    endpoint (paper, live, a simulator), and no secret is involved. Nothing is created here.
    """
    account = JournalAccount(key_id=key_id, base_url=base_url)
    state = os.environ.get("XDG_STATE_HOME", "")
    root = Path(state) if state and Path(state).is_absolute() else Path.home() / ".local/state"
    digest = hashlib.sha256(f"{account.key_id}\n{account.base_url}".encode()).hexdigest()
    return root / "fillguard" / f"journal-{digest[:16]}.sqlite3"
