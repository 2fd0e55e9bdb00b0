"""Properties of the journal: SQLite and memory agree on any sequence of records, and real
threads writing at once lose or mix up nothing."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fillguard.journal import (
    Baseline,
    Booking,
    Journal,
    JournalError,
    OutcomeKind,
    SubmitAttempt,
    SubmitOutcome,
    TradeFinal,
    TradeIntent,
)
from fillguard.journal_memory import InMemoryJournal
from fillguard.journal_sqlite import Durability, SqliteJournal
from fillguard.results import FillStatus
from tests.journal_support import ACCOUNT, T0, at, intent

COIDS = ("a", "b", "c")
ORDERS = ("o1", "o2", "o3")
SYMBOLS = ("AAPL", "MSFT")
SIDES = ("buy", "sell")

times = st.builds(
    lambda seconds, micros, offset: (
        T0 + timedelta(seconds=seconds, microseconds=micros)
    ).astimezone(timezone(timedelta(minutes=offset))),
    st.integers(0, 10**6),
    st.integers(0, 999_999),
    st.integers(-12 * 60, 12 * 60),
)
quantities = st.decimals(
    min_value=Decimal("0.000000001"),
    max_value=Decimal("123456789.123456789"),
    places=9,
    allow_nan=False,
    allow_infinity=False,
)
non_negative = st.one_of(st.just(Decimal(0)), quantities)
signed = st.builds(lambda q, neg: -q if neg else q, non_negative, st.booleans())
maybe_price = st.one_of(st.none(), quantities)

# Each trade has its symbol and side; records mostly agree with it (and sometimes not, which
# the journal must refuse the same way in both implementations).
TRADE_OF = {"a": ("AAPL", "buy"), "b": ("MSFT", "sell"), "c": ("AAPL", "sell")}
ORDER_OF = {"o1": "a", "o2": "b", "o3": "c"}


@st.composite
def _symbol_side(draw: st.DrawFn, coid: str) -> tuple[str, str]:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from(SYMBOLS)), draw(st.sampled_from(SIDES))
    return TRADE_OF[coid]


@st.composite
def intents(draw: st.DrawFn) -> TradeIntent:
    coid = draw(st.sampled_from(COIDS))
    symbol, side = draw(_symbol_side(coid))
    return TradeIntent(
        client_order_id=coid,
        symbol=symbol,
        side=side,
        qty=draw(st.sampled_from((Decimal(1), Decimal("0.000000001"))) | quantities),
        order_type=draw(st.sampled_from(("market", "limit"))),
        time_in_force="day",
        created_at=T0,
        limit_price=draw(maybe_price),
        stop_price=draw(maybe_price),
        expected_price=draw(maybe_price),
        notional=draw(maybe_price),
    )


attempts = st.builds(
    lambda coid, number: SubmitAttempt(client_order_id=coid, attempt=number, at=at(number)),
    st.sampled_from(COIDS),
    st.integers(1, 3),
)


def _outcome(coid: str, kind: OutcomeKind, order_id: str, code: int | None, at: datetime) -> Any:
    if kind is OutcomeKind.PLACED:
        return SubmitOutcome(client_order_id=coid, outcome=kind, order_id=order_id, at=at)
    return SubmitOutcome(
        client_order_id=coid,
        outcome=kind,
        status_code=code,
        code=None if code is None else 40010001,
        message=None if code is None else f"HTTP {code}",
        at=at,
    )


outcomes = st.builds(
    _outcome,
    st.sampled_from(COIDS),
    st.sampled_from(list(OutcomeKind)),
    st.sampled_from(ORDERS),
    st.one_of(st.none(), st.sampled_from((422, 429, 504))),
    times,
)


@st.composite
def bookings(draw: st.DrawFn) -> Booking:
    order_id = draw(st.sampled_from((*ORDERS, "o4")))
    coid = ORDER_OF.get(order_id) or draw(st.sampled_from(COIDS))
    if draw(st.integers(0, 9)) == 0:
        coid = draw(st.sampled_from(COIDS))
    symbol, side = draw(_symbol_side(coid))
    return Booking(
        order_id=order_id,
        client_order_id=coid,
        symbol=symbol,
        side=side,
        filled_qty=draw(non_negative),
        at=draw(times),
    )


baselines = st.builds(Baseline, symbol=st.sampled_from(SYMBOLS), qty=signed, at=times)


def _final(coid: str, status: FillStatus, qty: Decimal, price: Decimal | None, at: datetime) -> Any:
    if status is FillStatus.FILLED:
        qty, price = max(qty, Decimal(1)), price or Decimal("1.5")
    return TradeFinal(
        client_order_id=coid,
        status=status,
        filled_qty=qty,
        fill_price=price,
        order_ids=ORDERS[: len(coid)],
        at=at,
    )


finals = st.builds(
    _final,
    st.sampled_from(COIDS),
    st.sampled_from(list(FillStatus)),
    non_negative,
    maybe_price,
    times,
)
# Most examples open with some intents, so later records usually have a trade to belong to;
# records for unknown trades still come up (and must be refused alike).
operations = st.builds(
    lambda opening, rest: opening + rest,
    st.lists(intents(), max_size=3),
    st.lists(
        st.one_of(intents(), attempts, outcomes, bookings(), bookings(), baselines, finals),
        min_size=1,
        max_size=25,
    ),
)


def _apply(journal: Journal, record: object) -> tuple[str, object]:
    """What recording ``record`` gave: the return value, or the error's type."""
    writers: dict[type, Callable[[Any], object]] = {
        TradeIntent: journal.record_intent,
        SubmitAttempt: journal.record_attempt,
        SubmitOutcome: journal.record_outcome,
        Booking: journal.record_booking,
        Baseline: journal.record_baseline,
        TradeFinal: journal.record_final,
    }
    try:
        return ("ok", writers[type(record)](record))
    except JournalError as exc:
        return ("error", type(exc).__name__)


def _read_model(journal: Journal) -> dict[str, object]:
    return {
        "trades": journal.trades(),
        "unfinished": journal.unfinished(),
        "bookings": journal.bookings(),
        "baselines": journal.baselines(),
        "each": [journal.trade(c) for c in (*COIDS, "zz")],
        "page": journal.trades(limit=1, offset=1),
    }


@settings(max_examples=120, deadline=None)
@given(operations)
def test_sqlite_and_memory_agree_on_any_sequence_of_records(records: list[object]) -> None:
    """Same answers (no-op, written, which conflict) and the same read model, also after the
    SQLite file is closed and read again."""
    memory = InMemoryJournal(ACCOUNT)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "journal.sqlite3"
        with SqliteJournal(path, ACCOUNT, durability=Durability.PROCESS_CRASH) as sqlite:
            for record in records:
                assert _apply(sqlite, record) == _apply(memory, record), record
            expected = _read_model(memory)
            assert _read_model(sqlite) == expected
        with SqliteJournal(path, read_only=True) as reader:
            assert _read_model(reader) == expected
    # A booking is stored only once something filled: a zero is never written.
    assert all(b.filled_qty > 0 for b in memory.bookings())


# ---------------------------------------------------------------------------------- threads
THREADS = 8
TRADES_PER_THREAD = 12
SHARED_BOOKINGS = 25


def _trade_records(coid: str, symbol: str) -> list[object]:
    order = f"o-{coid}"
    return [
        intent(coid, symbol=symbol),
        SubmitAttempt(client_order_id=coid, attempt=1, at=at(1)),
        SubmitAttempt(client_order_id=coid, attempt=2, at=at(2)),
        SubmitOutcome(client_order_id=coid, outcome=OutcomeKind.PLACED, order_id=order, at=at(3)),
        Booking(
            order_id=order,
            client_order_id=coid,
            symbol=symbol,
            side="buy",
            filled_qty=Decimal("0.4"),
            at=at(4),
        ),
        Booking(
            order_id=order,
            client_order_id=coid,
            symbol=symbol,
            side="buy",
            filled_qty=Decimal("1"),
            at=at(5),
        ),
        TradeFinal(
            client_order_id=coid,
            status=FillStatus.FILLED,
            filled_qty=Decimal("1"),
            fill_price=Decimal("10.5"),
            order_ids=(order,),
            at=at(6),
        ),
    ]


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_threads_writing_at_once_lose_and_mix_up_nothing(kind: str, tmp_path: Path) -> None:
    """8 threads write whole trades (intent to final) and all book one shared order at once:
    every record lands under its own trade, in order, and the shared booking ends at the max."""
    path = tmp_path / "journal.sqlite3"
    journal: Journal = (
        InMemoryJournal(ACCOUNT) if kind == "memory" else SqliteJournal(path, ACCOUNT)
    )
    journal.record_intent(intent("shared"))
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def shared_booking(value: int) -> Booking:
        return Booking(
            order_id="o-shared",
            client_order_id="shared",
            symbol="AAPL",
            side="buy",
            filled_qty=Decimal(value) / 1000,
            at=at(value),
        )

    def worker(number: int) -> None:
        try:
            start.wait(10)
            for k in range(TRADES_PER_THREAD):
                coid = f"t{number}-{k:02}"
                for record in _trade_records(coid, SYMBOLS[k % 2]):
                    assert _apply(journal, record)[0] == "ok"
                if k < SHARED_BOOKINGS:  # interleave bookings of one order from every thread
                    journal.record_booking(shared_booking(number + THREADS * k))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    if kind == "sqlite":
        journal.close()
        journal = SqliteJournal(path, read_only=True)
    try:
        trades = {t.client_order_id: t for t in journal.trades()}
        assert len(trades) == THREADS * TRADES_PER_THREAD + 1
        for number in range(THREADS):
            for k in range(TRADES_PER_THREAD):
                coid = f"t{number}-{k:02}"
                records = _trade_records(coid, SYMBOLS[k % 2])
                trade = trades[coid]
                assert trade.intent == records[0]
                assert trade.attempts == tuple(records[1:3])
                assert trade.outcomes == (records[3],)
                assert trade.bookings == (records[5],)
                assert trade.final == records[6]
        highest = THREADS * TRADES_PER_THREAD - 1
        assert trades["shared"].bookings == (shared_booking(highest),)
        assert [t.client_order_id for t in journal.unfinished()] == ["shared"]
        assert len(journal.bookings()) == THREADS * TRADES_PER_THREAD + 1
    finally:
        journal.close()
