"""The SQLite journal's schema and its forward migrations.

A journal file is marked as ours twice: ``PRAGMA application_id`` in the database header
(:data:`APPLICATION_ID`, "FGJL") and the row ``app = fillguard-journal`` in ``journal_meta``. The
``schema_version`` table has one row per applied version (the current one is the highest), with
what it changed and when.

New files are created at version 1 (:data:`SCHEMA_V1`, frozen: never edit it) and then migrated
step by step like any old file, so every migration runs on every new journal. A migration is a
list of statements applied in one transaction together with its ``schema_version`` row: it
either happens completely or not at all. To change the schema, append a :class:`Migration` and
raise nothing else; :data:`MIN_READABLE_VERSION` says which older versions a read-only open (which
cannot migrate) can still read as they are.

Quantities and prices are ``TEXT`` holding ``str(Decimal)`` (exact, never ``REAL``); times are
ISO 8601 UTC text with microseconds.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

__all__ = [
    "APPLICATION_ID",
    "APP_MARKER",
    "MIGRATIONS",
    "MIN_READABLE_VERSION",
    "SCHEMA_V1",
    "SCHEMA_VERSION",
    "TABLES",
    "Migration",
    "apply_migration",
    "create_v1",
    "current_version",
]

#: "FGJL" in the SQLite header's application id field.
APPLICATION_ID = 0x46474A4C
APP_MARKER = "fillguard-journal"

SCHEMA_V1: tuple[str, ...] = (
    "CREATE TABLE journal_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE schema_version ("
    " version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)",
    "CREATE TABLE intents ("
    " seq INTEGER PRIMARY KEY,"
    " client_order_id TEXT NOT NULL UNIQUE,"
    " symbol TEXT NOT NULL, side TEXT NOT NULL, qty TEXT NOT NULL,"
    " order_type TEXT NOT NULL, time_in_force TEXT NOT NULL,"
    " limit_price TEXT, stop_price TEXT, expected_price TEXT, notional TEXT,"
    " created_at TEXT NOT NULL)",
    "CREATE TABLE attempts ("
    " client_order_id TEXT NOT NULL REFERENCES intents (client_order_id),"
    " attempt INTEGER NOT NULL, at TEXT NOT NULL,"
    " PRIMARY KEY (client_order_id, attempt))",
    "CREATE TABLE outcomes ("
    " seq INTEGER PRIMARY KEY,"
    " client_order_id TEXT NOT NULL REFERENCES intents (client_order_id),"
    " outcome TEXT NOT NULL, order_id TEXT, status_code INTEGER, code INTEGER, message TEXT,"
    " at TEXT NOT NULL)",
    "CREATE TABLE bookings ("
    " seq INTEGER PRIMARY KEY,"
    " order_id TEXT NOT NULL UNIQUE,"
    " client_order_id TEXT NOT NULL REFERENCES intents (client_order_id),"
    " symbol TEXT NOT NULL, side TEXT NOT NULL, filled_qty TEXT NOT NULL, at TEXT NOT NULL)",
    "CREATE TABLE baselines ("
    " seq INTEGER PRIMARY KEY, symbol TEXT NOT NULL, qty TEXT NOT NULL, at TEXT NOT NULL)",
    "CREATE TABLE finals ("
    " client_order_id TEXT PRIMARY KEY REFERENCES intents (client_order_id),"
    " status TEXT NOT NULL, filled_qty TEXT NOT NULL, fill_price TEXT,"
    " order_ids TEXT NOT NULL, at TEXT NOT NULL)",
)

#: Every table a journal of any version has.
TABLES = frozenset(
    {
        "journal_meta",
        "schema_version",
        "intents",
        "attempts",
        "outcomes",
        "bookings",
        "baselines",
        "finals",
    }
)


@dataclass(frozen=True, slots=True)
class Migration:
    """One forward step: from ``to_version - 1`` to ``to_version``."""

    to_version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        2,
        "index outcomes, bookings and baselines by trade and symbol",
        (
            # trade(client_order_id) and unfinished() read a trade's outcomes and bookings;
            # without these they scan both tables.
            "CREATE INDEX outcomes_by_trade ON outcomes (client_order_id, seq)",
            "CREATE INDEX bookings_by_trade ON bookings (client_order_id, seq)",
            "CREATE INDEX baselines_by_symbol ON baselines (symbol, seq)",
        ),
    ),
)

SCHEMA_VERSION = MIGRATIONS[-1].to_version if MIGRATIONS else 1
#: A read-only open reads these versions without migrating (v2 only added indexes).
MIN_READABLE_VERSION = 1


def create_v1(conn: sqlite3.Connection, *, key_id: str, base_url: str, created_at: str) -> None:
    """Create the version 1 tables and rows in an empty database (inside the caller's BEGIN)."""
    for statement in SCHEMA_V1:
        conn.execute(statement)
    conn.executemany(
        "INSERT INTO journal_meta (key, value) VALUES (?, ?)",
        [
            ("app", APP_MARKER),
            ("key_id", key_id),
            ("base_url", base_url),
            ("created_at", created_at),
        ],
    )
    conn.execute(
        "INSERT INTO schema_version (version, description, applied_at) VALUES (1, ?, ?)",
        ("initial schema", created_at),
    )


def apply_migration(conn: sqlite3.Connection, migration: Migration, applied_at: str) -> None:
    """Run one migration's statements and record it (inside the caller's BEGIN)."""
    for statement in migration.statements:
        conn.execute(statement)
    conn.execute(
        "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
        (migration.to_version, migration.description, applied_at),
    )


def current_version(conn: sqlite3.Connection) -> int | None:
    """The highest applied version, None if the table is empty."""
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return None if row is None or row[0] is None else int(row[0])
