"""The SQLite journal's rows: each record written to and read back from its table.

Decimals are written as ``str(Decimal)`` and read back with :func:`fillguard.snapshot.to_decimal`
(exact both ways, trailing zeros kept); times as ISO 8601 UTC text with microseconds, read back
with :func:`fillguard.snapshot.parse_timestamp`. A stored value that does not parse, or breaks a
record's rule, raises :class:`BadRow` (the file was changed behind the journal's back).
Every function runs inside the caller's transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from fillguard.journal_records import (
    Baseline,
    Booking,
    JournalTrade,
    SubmitAttempt,
    SubmitOutcome,
    TradeFinal,
    TradeIntent,
)
from fillguard.snapshot import parse_timestamp, to_decimal

__all__ = [
    "BadRow",
    "find_booking",
    "insert_attempt",
    "insert_baseline",
    "insert_final",
    "insert_intent",
    "insert_outcome",
    "iso",
    "load_baselines",
    "load_bookings",
    "load_selected_trades",
    "load_trades",
    "store_booking",
]

T = TypeVar("T")


def iso(value: datetime) -> str:
    """A UTC datetime as stored: ISO 8601 with microseconds and ``+00:00``."""
    return value.isoformat(timespec="microseconds")


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


# ---------------------------------------------------------------------------------- writes
def insert_intent(conn: sqlite3.Connection, intent: TradeIntent) -> None:
    """Insert an intent row."""
    conn.execute(
        "INSERT INTO intents (client_order_id, symbol, side, qty, order_type, time_in_force, "
        "limit_price, stop_price, expected_price, notional, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            intent.client_order_id,
            intent.symbol,
            intent.side,
            str(intent.qty),
            intent.order_type,
            intent.time_in_force,
            _dec(intent.limit_price),
            _dec(intent.stop_price),
            _dec(intent.expected_price),
            _dec(intent.notional),
            iso(intent.created_at),
        ),
    )


def insert_attempt(conn: sqlite3.Connection, attempt: SubmitAttempt) -> None:
    """Insert an attempt row."""
    conn.execute(
        "INSERT INTO attempts (client_order_id, attempt, at) VALUES (?, ?, ?)",
        (attempt.client_order_id, attempt.attempt, iso(attempt.at)),
    )


def insert_outcome(conn: sqlite3.Connection, outcome: SubmitOutcome) -> None:
    """Insert an outcome row."""
    conn.execute(
        "INSERT INTO outcomes (client_order_id, outcome, order_id, status_code, code, message, at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            outcome.client_order_id,
            outcome.outcome.value,
            outcome.order_id,
            outcome.status_code,
            outcome.code,
            outcome.message,
            iso(outcome.at),
        ),
    )


def store_booking(conn: sqlite3.Connection, booking: Booking, *, new: bool) -> None:
    """Insert the order's first booking, or raise its quantity (the row keeps its place)."""
    values = (str(booking.filled_qty), iso(booking.at), booking.order_id)
    if new:
        conn.execute(
            "INSERT INTO bookings (client_order_id, symbol, side, filled_qty, at, order_id) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (booking.client_order_id, booking.symbol, booking.side, *values),
        )
    else:
        conn.execute("UPDATE bookings SET filled_qty = ?, at = ? WHERE order_id = ?", values)


def insert_baseline(conn: sqlite3.Connection, baseline: Baseline) -> None:
    """Insert a baseline row."""
    conn.execute(
        "INSERT INTO baselines (symbol, qty, at) VALUES (?, ?, ?)",
        (baseline.symbol, str(baseline.qty), iso(baseline.at)),
    )


def insert_final(conn: sqlite3.Connection, final: TradeFinal) -> None:
    """Insert a final-status row (the order chain as a JSON list)."""
    conn.execute(
        "INSERT INTO finals (client_order_id, status, filled_qty, fill_price, order_ids, at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (
            final.client_order_id,
            final.status.value,
            str(final.filled_qty),
            _dec(final.fill_price),
            json.dumps(list(final.order_ids)),
            iso(final.at),
        ),
    )


# ---------------------------------------------------------------------------------- reads
class BadRow(Exception):
    """A stored value does not parse: the file was changed behind the journal's back."""


def read_dec(text: object) -> Decimal:
    value = to_decimal(text) if isinstance(text, str) else None
    if value is None:
        raise BadRow(f"not a decimal: {text!r}")
    return value


def read_opt_dec(text: object) -> Decimal | None:
    return None if text is None else read_dec(text)


def read_time(text: object) -> datetime:
    value = parse_timestamp(text) if isinstance(text, str) else None
    if value is None:
        raise BadRow(f"not a timestamp: {text!r}")
    return value


def _record(build: Callable[..., T], **fields: Any) -> T:
    try:
        return build(**fields)
    except ValueError as exc:  # InvalidInputError: a stored value breaks a record's rule
        raise BadRow(str(exc)) from None


BOOKING_SELECT = "SELECT order_id, client_order_id, symbol, side, filled_qty, at FROM bookings"


def booking_from_row(row: tuple[Any, ...]) -> Booking:
    return _record(
        Booking,
        order_id=row[0],
        client_order_id=row[1],
        symbol=row[2],
        side=row[3],
        filled_qty=read_dec(row[4]),
        at=read_time(row[5]),
    )


def load_trades(
    conn: sqlite3.Connection, where: str, params: tuple[Any, ...]
) -> list[JournalTrade]:
    """Trades whose ``client_order_id`` matches ``where``: one query per table, then assembled."""
    attempts: dict[str, list[SubmitAttempt]] = {}
    for coid, number, at in conn.execute(
        f"SELECT client_order_id, attempt, at FROM attempts {where} "
        "ORDER BY client_order_id, attempt",
        params,
    ):
        attempts.setdefault(coid, []).append(
            _record(SubmitAttempt, client_order_id=coid, attempt=number, at=read_time(at))
        )
    outcomes: dict[str, list[SubmitOutcome]] = {}
    for row in conn.execute(
        "SELECT client_order_id, outcome, order_id, status_code, code, message, at "
        f"FROM outcomes {where} ORDER BY seq",
        params,
    ):
        outcomes.setdefault(row[0], []).append(
            _record(
                SubmitOutcome,
                client_order_id=row[0],
                outcome=row[1],
                order_id=row[2],
                status_code=row[3],
                code=row[4],
                message=row[5],
                at=read_time(row[6]),
            )
        )
    bookings: dict[str, list[Booking]] = {}
    for row in conn.execute(f"{BOOKING_SELECT} {where} ORDER BY seq", params):
        bookings.setdefault(row[1], []).append(booking_from_row(row))
    finals: dict[str, TradeFinal] = {}
    for row in conn.execute(
        "SELECT client_order_id, status, filled_qty, fill_price, order_ids, at "
        f"FROM finals {where}",
        params,
    ):
        try:
            order_ids = tuple(json.loads(row[4]))
        except (TypeError, ValueError):
            raise BadRow(f"order_ids is not a JSON list: {row[4]!r}") from None
        finals[row[0]] = _record(
            TradeFinal,
            client_order_id=row[0],
            status=row[1],
            filled_qty=read_dec(row[2]),
            fill_price=read_opt_dec(row[3]),
            order_ids=order_ids,
            at=read_time(row[5]),
        )
    trades = []
    for row in conn.execute(
        "SELECT client_order_id, symbol, side, qty, order_type, time_in_force, limit_price, "
        f"stop_price, expected_price, notional, created_at FROM intents {where} ORDER BY seq",
        params,
    ):
        coid = row[0]
        intent = _record(
            TradeIntent,
            client_order_id=coid,
            symbol=row[1],
            side=row[2],
            qty=read_dec(row[3]),
            order_type=row[4],
            time_in_force=row[5],
            limit_price=read_opt_dec(row[6]),
            stop_price=read_opt_dec(row[7]),
            expected_price=read_opt_dec(row[8]),
            notional=read_opt_dec(row[9]),
            created_at=read_time(row[10]),
        )
        trades.append(
            JournalTrade(
                intent=intent,
                attempts=tuple(attempts.get(coid, ())),
                outcomes=tuple(outcomes.get(coid, ())),
                bookings=tuple(bookings.get(coid, ())),
                final=finals.get(coid),
            )
        )
    return trades


def load_selected_trades(
    conn: sqlite3.Connection, ids_query: str, params: tuple[Any, ...]
) -> list[JournalTrade]:
    """The trades whose ids ``ids_query`` selects, in its order.

    The ids are read once and then looked up through each table's index in batches, instead of
    running the selecting query again for every table.
    """
    ids = [row[0] for row in conn.execute(ids_query, params)]
    trades: list[JournalTrade] = []
    for start in range(0, len(ids), _BATCH):
        batch = tuple(ids[start : start + _BATCH])
        marks = ", ".join("?" * len(batch))
        trades += load_trades(conn, f"WHERE client_order_id IN ({marks})", batch)
    return trades


# Well under SQLite's bound-parameter limit (999 before 3.32).
_BATCH = 500


def find_booking(conn: sqlite3.Connection, order_id: str) -> Booking | None:
    """The order's booking, None if it has none."""
    row = conn.execute(BOOKING_SELECT + " WHERE order_id = ?", (order_id,)).fetchone()
    return None if row is None else booking_from_row(row)


def load_bookings(conn: sqlite3.Connection) -> list[Booking]:
    """Every booking, in first-booked order."""
    return [booking_from_row(r) for r in conn.execute(BOOKING_SELECT + " ORDER BY seq")]


def load_baselines(conn: sqlite3.Connection) -> dict[str, Baseline]:
    """The latest baseline per symbol."""
    rows = conn.execute("SELECT symbol, qty, at FROM baselines ORDER BY seq")
    return {
        r[0]: _record(Baseline, symbol=r[0], qty=read_dec(r[1]), at=read_time(r[2])) for r in rows
    }
