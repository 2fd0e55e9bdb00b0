"""The journal on the standard library's ``sqlite3``: :class:`SqliteJournal`.

**Durability.** WAL mode. With the default :attr:`Durability.WRITE_AHEAD`, the intent and every
attempt commit with ``synchronous=FULL`` (the WAL is fsynced before the call returns), because
nothing else can tell after a crash that a trade was decided or a POST may have gone out. Outcomes,
bookings, baselines and finals commit with ``synchronous=NORMAL``: in WAL mode that survives a
killed process (the commit is in the OS page cache), and the next FULL commit or checkpoint syncs
it too; after a power loss a tail of them may be gone, and recovery learns them again from the
broker (they are all broker facts). :attr:`Durability.ALL` fsyncs every record;
:attr:`Durability.PROCESS_CRASH` none (kill -9 safe, not power-loss safe).

**One writer.** A writer holds :class:`fillguard.journal_lock.WriterLock` (an exclusive
``flock`` on ``<journal>.lock``) for its whole lifetime; a second writer, in this process or
another, gets :class:`~fillguard.journal.JournalLockedError` naming the holder's pid. Within the
process, one connection serves all threads behind a ``threading.Lock``.

**Readers.** ``read_only=True`` opens the file with SQLite's ``mode=ro`` and takes no lock, so
``fillguard journal list`` can read while a trader writes: in WAL mode a reader never blocks the
writer, and each read sees one committed snapshot. A read-only journal never creates, migrates
or writes; every ``record_*`` call fails with :class:`~fillguard.journal.JournalWriteError`.

**Bad files.** A missing file is created (writer) through a temporary file renamed into place, so
a journal on disk is always complete. Anything else that is not a fillguard journal (a text file,
another application's database, a damaged page found by ``PRAGMA quick_check``) raises
:class:`~fillguard.journal.JournalCorruptError` and is never touched. A leftover ``-wal`` without
its journal is refused too (it holds committed records of a journal that was moved away).
"""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from fillguard.clock import Clock, SystemClock
from fillguard.errors import InvalidInputError
from fillguard.journal import (
    Baseline,
    Booking,
    JournalAccount,
    JournalAccountError,
    JournalCorruptError,
    JournalError,
    JournalNotFoundError,
    JournalTrade,
    JournalVersionError,
    JournalWriteError,
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
from fillguard.journal_lock import WriterLock
from fillguard.journal_schema import (
    APP_MARKER,
    APPLICATION_ID,
    MIGRATIONS,
    MIN_READABLE_VERSION,
    SCHEMA_VERSION,
    TABLES,
    apply_migration,
    create_v1,
    current_version,
)
from fillguard.journal_tables import (
    BadRow,
    find_booking,
    insert_attempt,
    insert_baseline,
    insert_final,
    insert_intent,
    insert_outcome,
    iso,
    load_baselines,
    load_bookings,
    load_selected_trades,
    load_trades,
    store_booking,
)

__all__ = ["Durability", "SqliteJournal"]

T = TypeVar("T")

_WRITE_ERRORS = ("SQLITE_FULL", "SQLITE_READONLY", "SQLITE_IOERR", "SQLITE_CANTOPEN", "SQLITE_PERM")
_CORRUPT_ERRORS = ("SQLITE_CORRUPT", "SQLITE_NOTADB")


class Durability(StrEnum):
    """Which commits are fsynced (``synchronous=FULL``) before the call returns."""

    WRITE_AHEAD = "write_ahead"  # intents and attempts; the rest NORMAL (the default)
    ALL = "all"  # every record
    PROCESS_CRASH = "process_crash"  # none: survives kill -9, not a power loss


class SqliteJournal:
    """A :class:`~fillguard.journal.Journal` in one SQLite file (see the module docstring).

    Args:
        path: the journal file; created (with its directory, mode 0700) if missing.
        account: the account it belongs to; required to create one, checked against the stored
            one when given (a different key id or base URL raises ``JournalAccountError``).
        read_only: open for reading alongside a running writer; no lock, no writes.
        durability: which commits are fsynced, see :class:`Durability`.
        clock: the wall clock for the journal's own timestamps (creation, migrations).

    Raises:
        JournalNotFoundError, JournalCorruptError, JournalVersionError, JournalAccountError,
        JournalLockedError, JournalWriteError: each naming the path.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        account: JournalAccount | None = None,
        *,
        read_only: bool = False,
        durability: Durability | str = Durability.WRITE_AHEAD,
        clock: Clock | None = None,
    ) -> None:
        """Open (or create) the journal; see the class docstring."""
        self.path = Path(path).absolute()
        self._where = str(self.path)
        self.read_only = read_only
        try:
            self.durability = Durability(durability)
        except ValueError:
            allowed = ", ".join(d.value for d in Durability)
            raise InvalidInputError(
                "durability", f"must be one of {allowed}, got {durability!r}"
            ) from None
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._writer_lock: WriterLock | None = None
        self._conn: sqlite3.Connection | None = None
        self._sync: str | None = None
        try:
            if not read_only:
                self._writer_lock = WriterLock(self.path)
            if not self.path.exists():
                self._create_missing(account)
            self._conn = self._connect()
            self._account = self._check(account)
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ opening
    def _error(self, kind: type[JournalError], message: str) -> JournalError:
        return kind(message, path=self.path)

    def _create_missing(self, account: JournalAccount | None) -> None:
        leftovers = [p for p in (f"{self.path}-wal", f"{self.path}-shm") if os.path.exists(p)]
        if any(p.endswith("-wal") for p in leftovers):
            raise self._error(
                JournalCorruptError,
                f"the journal is missing but {self.path}-wal is there: it holds records of a "
                "journal that was moved or deleted without it. Restore the journal next to it, "
                "or remove the -wal and -shm files to start afresh",
            )
        if self.read_only:
            raise self._error(JournalNotFoundError, "no journal at this path")
        if account is None:
            raise self._error(JournalError, "no journal here, and no account to create one for")
        for leftover in leftovers:  # a -shm alone holds no data
            os.unlink(leftover)
        self._create(account)

    def _create(self, account: JournalAccount) -> None:
        """Build a complete journal in a temporary file, then rename it into place."""
        tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}.creating")
        now = iso(self._clock.now())
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            conn = sqlite3.connect(tmp, isolation_level=None)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute("BEGIN IMMEDIATE")
                create_v1(conn, key_id=account.key_id, base_url=account.base_url, created_at=now)
                conn.execute("COMMIT")
                for migration in MIGRATIONS:
                    conn.execute("BEGIN IMMEDIATE")
                    apply_migration(conn, migration, now)
                    conn.execute("COMMIT")
            finally:
                conn.close()  # checkpoints and removes the temporary -wal
            os.replace(tmp, self.path)
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)  # the rename itself must survive a crash
            finally:
                os.close(dir_fd)
        except (OSError, sqlite3.Error) as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise self._error(JournalWriteError, f"cannot create it: {exc}") from exc

    def _connect(self) -> sqlite3.Connection:
        try:
            if self.read_only:
                conn = sqlite3.connect(
                    f"{self.path.as_uri()}?mode=ro",
                    uri=True,
                    isolation_level=None,
                    check_same_thread=False,
                )
                conn.execute("PRAGMA query_only=1")
            else:
                conn = sqlite3.connect(
                    self.path, isolation_level=None, check_same_thread=False, timeout=10.0
                )
                conn.execute("PRAGMA foreign_keys=ON")
            return conn
        except sqlite3.Error as exc:
            raise self._translate(exc, "open it") from exc

    def _check(self, account: JournalAccount | None) -> JournalAccount:
        """Is this a fillguard journal, of a version we know, of this account? Then migrate."""
        conn = self._require()
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        except sqlite3.Error as exc:
            raise self._translate(exc, "read it") from exc
        if app_id != APPLICATION_ID or not tables >= TABLES:
            found = ", ".join(sorted(t for t in tables if not t.startswith("sqlite_"))) or "none"
            raise self._error(
                JournalCorruptError,
                f"an SQLite database but not a fillguard journal (application_id {app_id}, "
                f"tables: {found}); it was left untouched",
            )
        try:
            meta = dict(conn.execute("SELECT key, value FROM journal_meta").fetchall())
            version = current_version(conn)
        except sqlite3.Error as exc:
            raise self._translate(exc, "read it") from exc
        if meta.get("app") != APP_MARKER or version is None:
            raise self._error(JournalCorruptError, "its journal_meta or schema_version is damaged")
        if version > SCHEMA_VERSION:
            raise self._error(
                JournalVersionError,
                f"schema version {version} is newer than this fillguard's ({SCHEMA_VERSION}): "
                "upgrade fillguard to use it",
            )
        try:
            stored = JournalAccount(key_id=meta["key_id"], base_url=meta["base_url"])
        except (KeyError, ValueError) as exc:
            raise self._error(JournalCorruptError, f"its account record is damaged: {exc}") from exc
        if account is not None and account != stored:
            raise self._error(
                JournalAccountError,
                f"it belongs to key id {stored.masked_key_id()} at {stored.base_url}, not key id "
                f"{account.masked_key_id()} at {account.base_url}",
            )
        if self.read_only:
            if version < MIN_READABLE_VERSION:
                raise self._error(
                    JournalVersionError,
                    f"schema version {version} is too old to read without migrating; open it "
                    "read-write once",
                )
        else:
            self._migrate(version)
            self._quick_check()
        return stored

    def _migrate(self, version: int) -> None:
        now = iso(self._clock.now())
        for migration in MIGRATIONS:
            if migration.to_version > version:
                self._transaction(
                    "FULL",
                    f"migrate it from v{migration.to_version - 1} to v{migration.to_version}",
                    functools.partial(apply_migration, migration=migration, applied_at=now),
                )

    def _quick_check(self) -> None:
        try:
            rows = self._require().execute("PRAGMA quick_check(5)").fetchall()
        except sqlite3.Error as exc:
            raise self._translate(exc, "check it") from exc
        problems = [r[0] for r in rows if r[0] != "ok"]
        if problems:
            raise self._error(JournalCorruptError, f"damaged: {'; '.join(problems)}")

    # ------------------------------------------------------------------ plumbing
    def _require(self) -> sqlite3.Connection:
        if self._conn is None:
            raise self._error(JournalError, "the journal is closed")
        return self._conn

    def _translate(self, exc: sqlite3.Error, what: str) -> JournalError:
        name = getattr(exc, "sqlite_errorname", "") or ""
        if name.startswith(_CORRUPT_ERRORS) or str(exc) == "file is not a database":
            return self._error(JournalCorruptError, f"cannot {what}: {exc} (file left untouched)")
        if name.startswith(_WRITE_ERRORS):
            return self._error(JournalWriteError, f"cannot {what}: {exc} ({name})")
        return self._error(JournalError, f"cannot {what}: {exc} ({name or type(exc).__name__})")

    def _transaction(self, sync: str, what: str, body: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``body`` in one write transaction committed with ``synchronous=sync``.

        The caller holds ``self._lock`` (or is still in ``__init__``).
        """
        conn = self._require()
        try:
            if self._sync != sync:
                conn.execute(f"PRAGMA synchronous={sync}")
                self._sync = sync
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = body(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise self._translate(exc, what) from exc
        return result

    def _write(self, write_ahead: bool, what: str, body: Callable[[sqlite3.Connection], T]) -> T:
        full = self.durability is Durability.ALL or (
            write_ahead and self.durability is Durability.WRITE_AHEAD
        )
        with self._lock:
            return self._transaction("FULL" if full else "NORMAL", what, body)

    @contextlib.contextmanager
    def _reading(self, what: str) -> Iterator[sqlite3.Connection]:
        """One read transaction: every query inside sees the same committed snapshot."""
        with self._lock:
            conn = self._require()
            try:
                conn.execute("BEGIN")
                try:
                    yield conn
                finally:
                    conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise self._translate(exc, what) from exc

    # ------------------------------------------------------------------ writes
    @property
    def account(self) -> JournalAccount:
        """The account stored in the journal."""
        return self._account

    def _one(self, conn: sqlite3.Connection, client_order_id: str) -> JournalTrade | None:
        rows = load_trades(conn, "WHERE client_order_id = ?", (client_order_id,))
        return rows[0] if rows else None

    def record_intent(self, intent: TradeIntent) -> bool:
        """Store the intent, fsynced (WRITE_AHEAD); False if the identical one is there."""

        def body(conn: sqlite3.Connection) -> bool:
            known = self._one(conn, intent.client_order_id)
            if not check_intent(None if known is None else known.intent, intent, self._where):
                return False
            insert_intent(conn, intent)
            return True

        return self._write(True, f"record the intent {intent.client_order_id!r}", body)

    def record_attempt(self, attempt: SubmitAttempt) -> bool:
        """Store the attempt, fsynced (WRITE_AHEAD); False if the identical one is there."""

        def body(conn: sqlite3.Connection) -> bool:
            if not check_attempt(self._one(conn, attempt.client_order_id), attempt, self._where):
                return False
            insert_attempt(conn, attempt)
            return True

        what = f"record attempt {attempt.attempt} of {attempt.client_order_id!r}"
        return self._write(True, what, body)

    def record_outcome(self, outcome: SubmitOutcome) -> None:
        """Append the outcome."""

        def body(conn: sqlite3.Connection) -> None:
            check_outcome(self._one(conn, outcome.client_order_id), outcome, self._where)
            insert_outcome(conn, outcome)

        self._write(False, f"record the outcome of {outcome.client_order_id!r}", body)

    def record_booking(self, booking: Booking) -> bool:
        """Store the booking if the order's cumulative quantity grew; False: a no-op."""

        def body(conn: sqlite3.Connection) -> bool:
            existing = find_booking(conn, booking.order_id)
            trade = self._one(conn, booking.client_order_id)
            if not check_booking(trade, existing, booking, self._where):
                return False
            store_booking(conn, booking, new=existing is None)
            return True

        return self._write(False, f"record the booking of order {booking.order_id!r}", body)

    def record_baseline(self, baseline: Baseline) -> None:
        """Append the baseline."""
        what = f"record the baseline of {baseline.symbol!r}"
        self._write(False, what, functools.partial(insert_baseline, baseline=baseline))

    def record_final(self, final: TradeFinal) -> bool:
        """Store the final status; False if the identical one is there."""

        def body(conn: sqlite3.Connection) -> bool:
            if not check_final(self._one(conn, final.client_order_id), final, self._where):
                return False
            insert_final(conn, final)
            return True

        return self._write(False, f"record the final status of {final.client_order_id!r}", body)

    # ------------------------------------------------------------------ reads
    def _read(self, what: str, read: Callable[[sqlite3.Connection], T]) -> T:
        with self._reading(what) as conn:
            try:
                return read(conn)
            except BadRow as exc:
                raise self._error(JournalCorruptError, f"cannot {what}: {exc}") from None

    def trade(self, client_order_id: str) -> JournalTrade | None:
        """One trade, or None."""
        what = f"read trade {client_order_id!r}"
        return self._read(what, lambda c: self._one(c, client_order_id))

    def trades(self, *, limit: int | None = None, offset: int = 0) -> list[JournalTrade]:
        """Trades in intent order."""
        check_page(limit, offset)
        if limit is None and offset == 0:
            return self._read("read the trades", lambda c: load_trades(c, "", ()))
        ids = "SELECT client_order_id FROM intents ORDER BY seq LIMIT ? OFFSET ?"
        page = (-1 if limit is None else limit, offset)
        return self._read("read the trades", lambda c: load_selected_trades(c, ids, page))

    def unfinished(self) -> list[JournalTrade]:
        """Trades with no final status, in intent order."""
        ids = (
            "SELECT i.client_order_id FROM intents AS i WHERE NOT EXISTS "
            "(SELECT 1 FROM finals AS f WHERE f.client_order_id = i.client_order_id) ORDER BY seq"
        )
        return self._read("read the unfinished trades", lambda c: load_selected_trades(c, ids, ()))

    def bookings(self) -> list[Booking]:
        """Every order's latest booking, in first-booked order."""
        return self._read("read the bookings", load_bookings)

    def baselines(self) -> dict[str, Baseline]:
        """The latest baseline per symbol."""
        return self._read("read the baselines", load_baselines)

    def schema_version(self) -> int:
        """The journal's schema version (after any migration on open)."""
        version = self._read("read the schema version", current_version)
        return 0 if version is None else version

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        """Close the connection and release the writer lock (idempotent)."""
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.close()
                self._conn = None
            if self._writer_lock is not None:
                self._writer_lock.release()
                self._writer_lock = None

    def __enter__(self) -> SqliteJournal:
        """Use as a context manager: closed on exit."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close."""
        self.close()

    def __repr__(self) -> str:
        """The path and mode."""
        mode = "read-only" if self.read_only else f"writer, {self.durability.value}"
        return f"SqliteJournal({str(self.path)!r}, {mode})"
