"""SqliteJournal on disk: durability under SIGKILL, the writer lock, bad files, write failures,
migrations and the synchronous level of each commit. Child processes are real (subprocess)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fillguard.errors import InvalidInputError
from fillguard.journal import (
    JournalAccount,
    JournalAccountError,
    JournalCorruptError,
    JournalError,
    JournalLockedError,
    JournalNotFoundError,
    JournalTrade,
    JournalVersionError,
    JournalWriteError,
)
from fillguard.journal_lock import lock_path
from fillguard.journal_schema import (
    APPLICATION_ID,
    MIGRATIONS,
    SCHEMA_V1,
    SCHEMA_VERSION,
    create_v1,
)
from fillguard.journal_sqlite import Durability, SqliteJournal
from fillguard.journal_tables import insert_attempt, insert_intent, insert_outcome
from tests.journal_support import (
    ACCOUNT,
    CHILD_PRELUDE,
    attempt,
    baseline,
    booking,
    child_env,
    final,
    intent,
    placed,
    run_child,
)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "journal.sqlite3"


def _raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


# ---------------------------------------------------------------------------------- the file
def test_a_new_journal_is_complete_private_and_in_wal_mode(path: Path) -> None:
    """Created whole (no temp file left), mode 0600 in a 0700 directory, WAL, marked as ours."""
    with SqliteJournal(path, ACCOUNT) as journal:
        assert journal.schema_version() == SCHEMA_VERSION
        assert journal.account == ACCOUNT
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "journal.sqlite3",
        "journal.sqlite3.lock",
    ]
    conn = _raw(path)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("PRAGMA application_id").fetchone() == (APPLICATION_ID,)
    meta = dict(conn.execute("SELECT key, value FROM journal_meta"))
    assert meta["key_id"] == ACCOUNT.key_id
    assert meta["base_url"] == ACCOUNT.base_url
    assert "secret" not in " ".join(meta).lower()
    versions = [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY 1")]
    assert versions == list(range(1, SCHEMA_VERSION + 1))
    conn.close()


def test_quantities_are_stored_as_decimal_text(path: Path) -> None:
    """No REAL anywhere: the columns hold the exact decimal strings."""
    with SqliteJournal(path, ACCOUNT) as journal:
        journal.record_intent(
            intent("c1", qty="0.000000001", order_type="limit", limit_price="1.10")
        )
        journal.record_baseline(baseline("AAPL", "123456789.123456789"))
    conn = _raw(path)
    assert conn.execute("SELECT qty, typeof(qty), limit_price FROM intents").fetchone() == (
        "1E-9",
        "text",
        "1.10",
    )
    assert conn.execute("SELECT qty FROM baselines").fetchone() == ("123456789.123456789",)
    assert conn.execute("SELECT created_at FROM intents").fetchone() == (
        "2026-11-24T13:00:00.123456+00:00",
    )
    conn.close()


@pytest.mark.parametrize(
    ("durability", "intent_sync", "booking_sync"),
    [
        (Durability.WRITE_AHEAD, 2, 1),
        (Durability.ALL, 2, 2),
        (Durability.PROCESS_CRASH, 1, 1),
    ],
)
def test_each_record_commits_at_its_synchronous_level(
    path: Path, durability: Durability, intent_sync: int, booking_sync: int
) -> None:
    """WRITE_AHEAD: intent and attempt commit with synchronous=FULL (2), the rest NORMAL (1)."""
    with SqliteJournal(path, ACCOUNT, durability=durability) as journal:
        conn = journal._conn  # white box: the connection's level is the one its last commit used
        assert conn is not None

        def level() -> int:
            return int(conn.execute("PRAGMA synchronous").fetchone()[0])

        journal.record_intent(intent("c1"))
        assert level() == intent_sync
        journal.record_outcome(placed("c1", "o0"))
        assert level() == booking_sync
        journal.record_attempt(attempt("c1", 1))
        assert level() == intent_sync
        journal.record_booking(booking("o1", "c1", "1"))
        assert level() == booking_sync
        journal.record_final(final("c1"))
        assert level() == booking_sync


def test_an_unknown_durability_is_refused(path: Path) -> None:
    """A typo in the durability never silently means another level."""
    with pytest.raises(InvalidInputError) as info:
        SqliteJournal(path, ACCOUNT, durability="fsync")
    assert info.value.field == "durability"
    assert not path.exists()


def test_more_unfinished_trades_than_one_lookup_batch(path: Path) -> None:
    """unfinished() and paging look ids up in batches of 500: 1,201 trades come back whole,
    in intent order."""
    with SqliteJournal(path, ACCOUNT, durability=Durability.PROCESS_CRASH) as journal:
        for n in range(1201):
            journal.record_intent(intent(f"c{n:05}"))
            if n % 3 == 0:
                journal.record_attempt(attempt(f"c{n:05}", 1))
        journal.record_final(final("c00600"))
        unfinished = journal.unfinished()
        assert [t.client_order_id for t in unfinished] == [
            f"c{n:05}" for n in range(1201) if n != 600
        ]
        assert all(t.attempt_count == (int(t.client_order_id[1:]) % 3 == 0) for t in unfinished)
        page = journal.trades(limit=700, offset=450)
        assert [t.client_order_id for t in page] == [f"c{n:05}" for n in range(450, 1150)]
        assert page == journal.trades()[450:1150]


# ---------------------------------------------------------------------------------- SIGKILL
_KILL_AFTER = {
    "intent": (
        "j.record_intent(TradeIntent(client_order_id='c1', symbol='AAPL', side='buy', "
        "qty=Decimal('0.000000001'), order_type='market', time_in_force='day', created_at=NOW))"
    ),
    "attempt": "j.record_attempt(SubmitAttempt(client_order_id='c0', attempt=1, at=NOW))",
    "booking": (
        "j.record_booking(Booking(order_id='o0', client_order_id='c0', symbol='AAPL', "
        "side='buy', filled_qty=Decimal('0.5'), at=NOW))"
    ),
    "final": (
        "j.record_final(TradeFinal(client_order_id='c0', status='canceled', "
        "filled_qty=Decimal('0'), at=NOW))"
    ),
}


@pytest.mark.parametrize("step", list(_KILL_AFTER))
def test_a_record_survives_sigkill_right_after_the_call_returns(path: Path, step: str) -> None:
    """A child writes one record and SIGKILLs itself at once: the parent finds the record."""
    with SqliteJournal(path, ACCOUNT) as journal:
        journal.record_intent(intent("c0"))
    code = (
        CHILD_PRELUDE
        + "j = SqliteJournal(sys.argv[1], ACCOUNT)\n"
        + _KILL_AFTER[step]
        + "\nos.kill(os.getpid(), signal.SIGKILL)\n"
    )
    child = run_child(code, str(path))
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert Path(f"{path}-wal").exists()  # never checkpointed: the record is only in the WAL
    with SqliteJournal(path, ACCOUNT) as journal:  # the dead child's lock is gone too
        first = journal.trade("c0")
        assert first is not None
        if step == "intent":
            trade = journal.trade("c1")
            assert trade is not None
            assert str(trade.intent.qty) == "1E-9"
        elif step == "attempt":
            assert first.attempt_count == 1
        elif step == "booking":
            assert [(b.order_id, b.filled_qty) for b in journal.bookings()] == [
                ("o0", Decimal("0.5"))
            ]
        else:
            assert first.final is not None
            assert journal.unfinished() == []


# ---------------------------------------------------------------------------------- one writer
_HOLD = (
    CHILD_PRELUDE
    + "j = SqliteJournal(sys.argv[1], ACCOUNT)\n"
    + "j.record_intent(TradeIntent(client_order_id='held', symbol='AAPL', side='buy', "
    "qty=Decimal('1'), order_type='market', time_in_force='day', created_at=NOW))\n"
    + "print('ready', flush=True)\n"
    + "sys.stdin.readline()\n"
    + "j.record_attempt(SubmitAttempt(client_order_id='held', attempt=1, at=NOW))\n"
    + "print('wrote', flush=True)\n"
)


@contextlib.contextmanager
def _holder(path: Path) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line == "ready\n", proc.stderr.read() if proc.stderr else line
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def test_a_second_process_is_refused_and_a_reader_is_not(path: Path) -> None:
    """While another process writes: a writer gets JournalLockedError naming the path and pid;
    a read-only open reads alongside and never blocks the writer; after it exits, we may write."""
    with _holder(path) as proc:
        with pytest.raises(JournalLockedError) as info:
            SqliteJournal(path, ACCOUNT)
        assert str(path) in str(info.value)
        assert f"pid {proc.pid}" in str(info.value)
        with SqliteJournal(path, read_only=True) as reader:
            assert [t.client_order_id for t in reader.unfinished()] == ["held"]
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
            assert proc.stdout is not None
            assert proc.stdout.readline() == "wrote\n"  # the writer was not blocked by us
            trade = reader.trade("held")
            assert trade is not None
            assert trade.attempt_count == 1  # a new read sees the new commit
        proc.stdin.close()
        assert proc.wait(30) == 0
    with SqliteJournal(path, ACCOUNT) as journal:
        assert journal.trade("held") is not None


def test_a_second_writer_in_the_same_process_is_refused(path: Path) -> None:
    """Two writers in one process would interleave too: the second open is refused."""
    with SqliteJournal(path, ACCOUNT), pytest.raises(JournalLockedError, match="this process"):
        SqliteJournal(path, ACCOUNT)
    SqliteJournal(path, ACCOUNT).close()  # released on close
    assert lock_path(path).exists()


# ---------------------------------------------------------------------------------- bad files
def _unchanged(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _other_apps_db(path: Path) -> None:
    conn = _raw(path)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO users (name) VALUES ('ann')")
    conn.close()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_text("not a database\n" * 100), "file is not a database"),
        (_other_apps_db, r"not a fillguard journal \(application_id 0, tables: users\)"),
        (lambda p: p.write_bytes(b""), "not a fillguard journal"),
    ],
    ids=["text file", "another app's sqlite db", "empty file"],
)
@pytest.mark.parametrize("read_only", [False, True])
def test_a_file_that_is_not_a_journal_is_refused_and_left_alone(
    path: Path, make: Any, message: str, read_only: bool
) -> None:
    """Never a silent reset: the error names the path and the file is byte for byte the same."""
    path.parent.mkdir(parents=True)
    make(path)
    before = _unchanged(path)
    with pytest.raises(JournalCorruptError, match=message) as info:
        SqliteJournal(path, ACCOUNT, read_only=read_only)
    assert str(path) in str(info.value)
    assert _unchanged(path) == before


def _journal_with_trades(path: Path, count: int) -> None:
    with SqliteJournal(path, ACCOUNT) as journal:
        for n in range(count):
            journal.record_intent(intent(f"c{n:04}"))


def test_a_damaged_journal_is_refused(path: Path) -> None:
    """Damaged pages: the writer's quick_check refuses at open; a reader fails at the read."""
    _journal_with_trades(path, 300)
    data = bytearray(path.read_bytes())
    pages = len(data) // 4096
    for page in range(pages - 3, pages):  # wreck the b-tree page headers at the end
        data[page * 4096 : page * 4096 + 8] = b"\xff" * 8
    path.write_bytes(bytes(data))
    with pytest.raises(JournalCorruptError, match="malformed") as info:
        SqliteJournal(path, ACCOUNT)
    assert str(path) in str(info.value)
    with SqliteJournal(path, read_only=True) as reader, pytest.raises(JournalCorruptError):
        reader.trades()


def test_a_truncated_journal_is_refused(path: Path) -> None:
    """Half a journal is a damaged journal, not an empty one."""
    _journal_with_trades(path, 300)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(JournalCorruptError, match="malformed"):
        SqliteJournal(path, ACCOUNT)


def test_a_value_changed_behind_the_journals_back_is_reported(path: Path) -> None:
    """A stored quantity that is not a decimal: JournalCorruptError on read, naming the value."""
    _journal_with_trades(path, 1)
    conn = _raw(path)
    conn.execute("UPDATE intents SET qty = 'lots'")
    conn.close()
    with (
        SqliteJournal(path, read_only=True) as reader,
        pytest.raises(JournalCorruptError, match="not a decimal: 'lots'"),
    ):
        reader.trades()


def test_a_wal_without_its_journal_is_refused(path: Path) -> None:
    """The -wal of a journal moved away holds its records: never start a new journal over it."""
    path.parent.mkdir(parents=True)
    Path(f"{path}-wal").write_bytes(b"\0" * 64)
    with pytest.raises(JournalCorruptError, match=r"is missing but .*-wal is there"):
        SqliteJournal(path, ACCOUNT)
    assert not path.exists()


def test_missing_journal(path: Path) -> None:
    """A reader never creates one; a writer needs the account to create one."""
    with pytest.raises(JournalNotFoundError, match="no journal at this path") as info:
        SqliteJournal(path, read_only=True)
    assert str(path) in str(info.value)
    with pytest.raises(JournalError, match="no account to create one for"):
        SqliteJournal(path)
    assert not path.exists()


def test_a_newer_schema_is_refused(path: Path) -> None:
    """A journal written by a newer fillguard is not read or written by this one."""
    _journal_with_trades(path, 1)
    conn = _raw(path)
    conn.execute(
        "INSERT INTO schema_version VALUES (?, 'from the future', '2030-01-01')",
        (SCHEMA_VERSION + 1,),
    )
    conn.close()
    for read_only in (False, True):
        with pytest.raises(JournalVersionError, match=f"{SCHEMA_VERSION + 1} is newer") as info:
            SqliteJournal(path, ACCOUNT, read_only=read_only)
        assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "other",
    [
        JournalAccount(key_id="PKSOMEONEELSE", base_url=ACCOUNT.base_url),
        JournalAccount(key_id=ACCOUNT.key_id, base_url="https://paper-api.alpaca.markets"),
    ],
    ids=["key id", "base url"],
)
def test_another_accounts_journal_is_refused(path: Path, other: JournalAccount) -> None:
    """A different key id or base URL: JournalAccountError naming the path and both accounts."""
    _journal_with_trades(path, 1)
    with pytest.raises(JournalAccountError) as info:
        SqliteJournal(path, other)
    text = str(info.value)
    assert str(path) in text
    assert ACCOUNT.base_url in text
    assert other.base_url in text
    assert ACCOUNT.key_id not in text  # masked
    same = JournalAccount(key_id=ACCOUNT.key_id, base_url=ACCOUNT.base_url.upper() + "/")
    with SqliteJournal(path, same) as journal:  # normalised: the same account
        assert journal.account == ACCOUNT
    with SqliteJournal(path) as journal:  # no account given: the stored one
        assert journal.account == ACCOUNT


# ---------------------------------------------------------------------------------- failed writes
def test_a_read_only_open_refuses_writes(path: Path) -> None:
    """SQLite's own read-only path (mode=ro): the intent write raises JournalWriteError."""
    _journal_with_trades(path, 1)
    with SqliteJournal(path, read_only=True) as reader:
        with pytest.raises(JournalWriteError, match="SQLITE_READONLY") as info:
            reader.record_intent(intent("new"))
        assert str(path) in str(info.value)
        assert "record the intent 'new'" in str(info.value)
        assert reader.trade("new") is None


_WRITE_INTENT = (
    CHILD_PRELUDE
    + "j = SqliteJournal(sys.argv[1], ACCOUNT)\n"
    + "{setup}\n"
    + "try:\n"
    + "    j.record_intent(TradeIntent(client_order_id='new', symbol='AAPL', side='buy', "
    "qty=Decimal('1'), order_type='market', time_in_force='day', created_at=NOW))\n"
    + "    print(json.dumps({{'error': None}}))\n"
    + "except JournalError as exc:\n"
    + "    print(json.dumps({{'error': type(exc).__name__, 'message': str(exc), "
    "'stored': j.trade('new') is not None}}))\n"
)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory another uid can use (pytest's tmp_path is private to root)."""
    directory = Path(tempfile.mkdtemp(prefix="fillguard-journal-"))
    directory.chmod(0o777)
    try:
        yield directory
    finally:
        shutil.rmtree(directory)


def test_a_read_only_file_fails_the_intent_write(shared_dir: Path) -> None:
    """A journal file without write permission: the intent write raises, nothing is stored.

    Root ignores file modes, so as root the write runs in a child process as ``nobody``.
    """
    path = shared_dir / "journal.sqlite3"
    _journal_with_trades(path, 1)
    lock_path(path).chmod(0o666)
    path.chmod(0o444)
    if os.geteuid() == 0:
        child = run_child(_WRITE_INTENT.format(setup=""), str(path), user=65534)
        assert child.returncode == 0, child.stderr
        result = json.loads(child.stdout)
    else:
        with SqliteJournal(path, ACCOUNT) as journal:
            try:
                journal.record_intent(intent("new"))
                result = {"error": None}
            except JournalError as exc:
                result = {"error": type(exc).__name__, "message": str(exc), "stored": False}
    assert result["error"] == "JournalWriteError"
    assert "SQLITE_READONLY" in result["message"]
    assert str(path) in result["message"]
    assert result["stored"] is False
    path.chmod(0o600)
    with SqliteJournal(path, ACCOUNT) as journal:
        assert [t.client_order_id for t in journal.trades()] == ["c0000"]


def test_a_full_disk_fails_the_intent_write(path: Path) -> None:
    """The OS refuses to grow any file (RLIMIT_FSIZE, a real write error in a child): the
    intent write raises JournalWriteError, nothing is stored and the journal stays intact."""
    _journal_with_trades(path, 1)
    setup = (
        "import resource\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (1, 1))"
    )
    child = run_child(_WRITE_INTENT.format(setup=setup), str(path))
    assert child.returncode == 0, child.stderr
    result = json.loads(child.stdout)
    assert result["error"] == "JournalWriteError"
    assert "SQLITE_IOERR" in result["message"] or "SQLITE_FULL" in result["message"]
    assert str(path) in result["message"]
    assert result["stored"] is False
    with SqliteJournal(path, ACCOUNT) as journal:  # quick_check passes, the old trade is there
        assert [t.client_order_id for t in journal.trades()] == ["c0000"]


def test_a_journal_at_its_size_cap_fails_the_write_and_recovers(path: Path) -> None:
    """SQLITE_FULL from a max_page_count cap: the failing intent is absent, earlier ones stay,
    and once there is room again the journal writes on."""
    with SqliteJournal(path, ACCOUNT) as journal:
        conn = journal._conn  # white box: cap the database at its current size
        assert conn is not None
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count={pages}")
        written = 0

        def fill_up() -> None:
            nonlocal written
            for n in range(1000):
                journal.record_intent(intent(f"c{n:04}"))
                written += 1

        with pytest.raises(JournalWriteError, match="SQLITE_FULL") as info:
            fill_up()
        assert "database or disk is full" in str(info.value)
        assert str(path) in str(info.value)
        assert journal.trade(f"c{written:04}") is None
        assert len(journal.trades()) == written
        conn.execute("PRAGMA max_page_count=1073741823")
        assert journal.record_intent(intent(f"c{written:04}"))
    with SqliteJournal(path, ACCOUNT) as journal:
        assert len(journal.trades()) == written + 1


# ---------------------------------------------------------------------------------- migrations
def _write_v1(path: Path, *, extra: str | None = None) -> None:
    """A version 1 journal as fillguard 0.1 wrote it, with one trade."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = _raw(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
    conn.execute("BEGIN")
    create_v1(
        conn,
        key_id=ACCOUNT.key_id,
        base_url=ACCOUNT.base_url,
        created_at="2026-01-01T00:00:00.000000+00:00",
    )
    insert_intent(conn, intent("v1"))
    insert_attempt(conn, attempt("v1", 1))
    insert_outcome(conn, placed("v1", "o1"))
    if extra:
        conn.execute(extra)
    conn.execute("COMMIT")
    conn.close()


def _indexes(path: Path) -> set[str]:
    conn = _raw(path)
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    conn.close()
    return {n for n in names if not n.startswith("sqlite_autoindex")}


V1_TRADE = JournalTrade(
    intent=intent("v1"), attempts=(attempt("v1", 1),), outcomes=(placed("v1", "o1"),)
)


def test_schema_v1_is_frozen() -> None:
    """Version 1 is what old files hold: change the schema with a Migration, never here."""
    digest = hashlib.sha256("\n".join(SCHEMA_V1).encode()).hexdigest()[:16]
    assert digest == "92ffaa762374aa90", "SCHEMA_V1 changed: add a Migration instead"
    assert [m.to_version for m in MIGRATIONS] == list(range(2, SCHEMA_VERSION + 1))


def test_a_v1_journal_is_migrated_on_open_and_keeps_its_records(path: Path) -> None:
    """A writer migrates v1 to the current version; a reader reads v1 as it is."""
    _write_v1(path)
    assert _indexes(path) == set()
    with SqliteJournal(path, read_only=True) as reader:
        assert reader.schema_version() == 1
        assert reader.trades() == [V1_TRADE]
    assert _indexes(path) == set()  # the reader changed nothing
    with SqliteJournal(path, ACCOUNT) as journal:
        assert journal.schema_version() == SCHEMA_VERSION
        assert journal.trades() == [V1_TRADE]
        journal.record_booking(booking("o1", "v1", "1"))
    assert _indexes(path) == {"outcomes_by_trade", "bookings_by_trade", "baselines_by_symbol"}
    conn = _raw(path)
    rows = conn.execute("SELECT version, description FROM schema_version ORDER BY 1").fetchall()
    conn.close()
    assert rows == [(1, "initial schema"), *((m.to_version, m.description) for m in MIGRATIONS)]


def test_a_failed_migration_changes_nothing(path: Path) -> None:
    """A migration step is one transaction: if a statement fails, the file stays at v1."""
    _write_v1(path, extra="CREATE INDEX bookings_by_trade ON bookings (order_id)")
    with pytest.raises(JournalError, match="migrate it from v1 to v2") as info:
        SqliteJournal(path, ACCOUNT)
    assert str(path) in str(info.value)
    assert _indexes(path) == {"bookings_by_trade"}  # outcomes_by_trade was rolled back
    with SqliteJournal(path, read_only=True) as reader:
        assert reader.schema_version() == 1
        assert reader.trades() == [V1_TRADE]
