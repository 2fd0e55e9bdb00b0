"""The Journal contract, run against InMemoryJournal and SqliteJournal alike; records; paths."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fillguard.errors import InvalidInputError
from fillguard.journal import (
    Baseline,
    Booking,
    Journal,
    JournalAccount,
    JournalConflictError,
    JournalError,
    JournalTrade,
    OutcomeKind,
    SubmitAttempt,
    SubmitOutcome,
    TradeFinal,
    TradeIntent,
    default_journal_path,
    normalize_base_url,
)
from fillguard.journal_memory import InMemoryJournal
from fillguard.journal_sqlite import SqliteJournal
from fillguard.results import FillStatus
from tests.journal_support import (
    ACCOUNT,
    T0,
    at,
    attempt,
    baseline,
    booking,
    final,
    intent,
    placed,
)


class Subject:
    """A journal under test; ``reopen()`` closes and opens it again (same object in memory)."""

    def __init__(self, kind: str, path: Path) -> None:
        self.kind = kind
        self.path = path
        self.journal: Journal = self._open()

    def _open(self) -> Journal:
        if self.kind == "memory":
            return InMemoryJournal(ACCOUNT)
        return SqliteJournal(self.path, ACCOUNT)

    def reopen(self) -> Journal:
        if self.kind == "sqlite":
            self.journal.close()
            self.journal = self._open()
        return self.journal


@pytest.fixture(params=["memory", "sqlite"])
def subject(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Subject]:
    s = Subject(request.param, tmp_path / "journal.sqlite3")
    yield s
    s.journal.close()


def full_intent(coid: str = "c1") -> TradeIntent:
    return TradeIntent(
        client_order_id=coid,
        symbol="AAPL",
        side="sell",
        qty=Decimal("0.000000001"),
        order_type="stop_limit",
        time_in_force="gtc",
        created_at=datetime(2026, 11, 24, 8, 0, 0, 1, tzinfo=timezone(timedelta(hours=-5))),
        limit_price=Decimal("123456789.123456789"),
        stop_price=Decimal("1.10"),
        expected_price=Decimal("190.000"),
        notional=Decimal("12.5"),
    )


# ---------------------------------------------------------------------------------- round trips
def test_every_record_round_trips(subject: Subject) -> None:
    """Each record comes back equal, field by field, including after a reopen."""
    j = subject.journal
    assert isinstance(j, Journal)  # both satisfy the protocol, at run time too
    i = full_intent()
    outcomes = [
        SubmitOutcome(
            client_order_id="c1",
            outcome=OutcomeKind.UNRESOLVED,
            message="read timeout",
            status_code=504,
            at=at(1.5),
        ),
        SubmitOutcome(
            client_order_id="c1",
            outcome=OutcomeKind.REFUSED,
            status_code=422,
            code=40010001,
            message="qty must be > 0",
            at=at(2),
        ),
        SubmitOutcome(client_order_id="c1", outcome=OutcomeKind.NOT_PLACED, at=at(2.5)),
        placed("c1", "o1"),
    ]
    book = booking("o1", "c1", "0.000000001", side="sell")
    base = baseline("AAPL", "-12.000000001")
    end = TradeFinal(
        client_order_id="c1",
        status=FillStatus.PARTIALLY_FILLED,
        filled_qty=Decimal("0.000000001"),
        fill_price=Decimal("123456789.123456789"),
        order_ids=("o0", "o1"),
        at=at(9),
    )
    assert j.record_intent(i)
    assert j.record_attempt(attempt("c1", 1))
    assert j.record_attempt(attempt("c1", 2))
    for outcome in outcomes:
        j.record_outcome(outcome)
    assert j.record_booking(book)
    j.record_baseline(base)
    assert j.record_final(end)
    expected = JournalTrade(
        intent=i,
        attempts=(attempt("c1", 1), attempt("c1", 2)),
        outcomes=tuple(outcomes),
        bookings=(book,),
        final=end,
    )
    for reopen in (False, True):
        journal = subject.reopen() if reopen else j
        got = journal.trade("c1")
        assert got == expected
        assert got is not None
        # Exact, not just numerically equal: digits and exponent survive ("1.10" stays "1.10").
        assert str(got.intent.stop_price) == "1.10"
        assert str(got.intent.expected_price) == "190.000"
        assert str(got.intent.limit_price) == "123456789.123456789"
        assert str(got.bookings[0].filled_qty) == "1E-9"
        assert got.intent.created_at == datetime(2026, 11, 24, 13, 0, 0, 1, tzinfo=UTC)
        assert got.intent.created_at.tzinfo is UTC
        assert journal.baselines() == {"AAPL": base}
        assert journal.bookings() == [book]
        assert journal.trades() == [expected]
        assert journal.account == ACCOUNT


@pytest.mark.parametrize(
    "text",
    ["0.000000001", "123456789.123456789", "1.10", "100000000000000000000.5", "1E+3", "-0"],
)
def test_decimals_are_exact(subject: Subject, text: str) -> None:
    """A baseline quantity comes back with the same digits and exponent, never through float."""
    subject.journal.record_baseline(baseline("AAPL", text))
    got = subject.reopen().baselines()["AAPL"].qty
    assert got.as_tuple() == Decimal(text).as_tuple()


# ---------------------------------------------------------------------------------- rules
def test_intent_is_idempotent_and_conflicts_are_refused(subject: Subject) -> None:
    """The same intent again is a no-op; a different one under the same id is refused."""
    j = subject.journal
    assert j.record_intent(intent("c1"))
    assert not j.record_intent(intent("c1"))
    with pytest.raises(JournalConflictError, match="already has a different intent"):
        j.record_intent(intent("c1", qty="2"))
    assert j.trades() == [JournalTrade(intent=intent("c1"))]


def test_attempts_are_numbered_without_gaps(subject: Subject) -> None:
    """1, 2, ...; a repeat is a no-op, a gap, a changed repeat or an unknown trade a conflict."""
    j = subject.journal
    with pytest.raises(JournalConflictError, match="no intent for client_order_id 'c1'"):
        j.record_attempt(attempt("c1", 1))
    j.record_intent(intent("c1"))
    with pytest.raises(JournalConflictError, match="follows attempt 0"):
        j.record_attempt(attempt("c1", 2))
    assert j.record_attempt(attempt("c1", 1))
    assert not j.record_attempt(attempt("c1", 1))
    with pytest.raises(JournalConflictError, match="already recorded differently"):
        j.record_attempt(SubmitAttempt(client_order_id="c1", attempt=1, at=at(99)))
    assert j.record_attempt(attempt("c1", 2))
    trade = j.trade("c1")
    assert trade is not None
    assert trade.attempt_count == 2


def test_nothing_is_sent_after_the_final_status(subject: Subject) -> None:
    """No attempt or outcome after the final; a booking still lands (late fills)."""
    j = subject.journal
    j.record_intent(intent("c1"))
    j.record_attempt(attempt("c1", 1))
    j.record_outcome(placed("c1", "o1"))
    j.record_final(final("c1", "partially_filled", "0.5"))
    with pytest.raises(JournalConflictError, match="finished"):
        j.record_attempt(attempt("c1", 2))
    with pytest.raises(JournalConflictError, match="finished"):
        j.record_outcome(placed("c1", "o2"))
    assert j.record_booking(booking("o1", "c1", "0.7"))
    trade = subject.reopen().trade("c1")
    assert trade is not None
    assert trade.bookings == (booking("o1", "c1", "0.7"),)
    assert trade.outcomes == (placed("c1", "o1"),)


def test_outcome_needs_an_intent(subject: Subject) -> None:
    """An outcome for an unknown trade is refused."""
    with pytest.raises(JournalConflictError, match="no intent"):
        subject.journal.record_outcome(placed("zz"))


def test_bookings_only_grow(subject: Subject) -> None:
    """Per order id the stored cumulative quantity only grows; smaller or equal is a no-op."""
    j = subject.journal
    j.record_intent(intent("c1"))
    assert not j.record_booking(booking("o1", "c1", "0"))  # nothing filled: nothing to store
    assert j.record_booking(booking("o1", "c1", "0.25"))
    assert not j.record_booking(booking("o1", "c1", "0.25"))
    assert not j.record_booking(booking("o1", "c1", "0.2"))
    grown = dataclasses.replace(booking("o1", "c1", "0.5"), at=at(30))
    assert j.record_booking(grown)
    assert j.record_booking(booking("o2", "c1", "0.5"))  # the replacement order in the chain
    assert subject.reopen().bookings() == [grown, booking("o2", "c1", "0.5")]
    trade = subject.journal.trade("c1")
    assert trade is not None
    assert trade.order_ids == ("o1", "o2")


def test_bookings_must_match_their_trade(subject: Subject) -> None:
    """An order booked for another trade, or another symbol or side, is a conflict."""
    j = subject.journal
    j.record_intent(intent("c1"))
    j.record_intent(intent("c2"))
    j.record_booking(booking("o1", "c1", "1"))
    with pytest.raises(JournalConflictError, match="booked for 'c1', not 'c2'"):
        j.record_booking(booking("o1", "c2", "2"))
    with pytest.raises(JournalConflictError, match="is buy MSFT, but trade 'c2' is buy AAPL"):
        j.record_booking(booking("o2", "c2", "1", symbol="MSFT"))
    with pytest.raises(JournalConflictError, match="is sell AAPL"):
        j.record_booking(booking("o2", "c2", "1", side="sell"))
    with pytest.raises(JournalConflictError, match="no intent"):
        j.record_booking(booking("o3", "c3", "1"))
    assert j.bookings() == [booking("o1", "c1", "1")]


def test_baselines_give_the_latest_per_symbol(subject: Subject) -> None:
    """Every baseline is kept; the latest recorded one per symbol is the answer."""
    j = subject.journal
    j.record_baseline(baseline("AAPL", "5", 0))
    j.record_baseline(baseline("MSFT", "-2", 1))
    j.record_baseline(baseline("AAPL", "7", 2))
    assert subject.reopen().baselines() == {
        "AAPL": baseline("AAPL", "7", 2),
        "MSFT": baseline("MSFT", "-2", 1),
    }


def test_final_is_written_once(subject: Subject) -> None:
    """The same final again is a no-op; a different one is refused."""
    j = subject.journal
    j.record_intent(intent("c1"))
    assert j.record_final(final("c1"))
    assert not j.record_final(final("c1"))
    with pytest.raises(JournalConflictError, match="already finished as filled"):
        j.record_final(final("c1", "canceled", "0", None))
    with pytest.raises(JournalConflictError, match="no intent"):
        j.record_final(final("c9"))


def test_unfinished_lists_trades_without_a_final_in_intent_order(subject: Subject) -> None:
    """unfinished() is every intent without a final status, oldest first, with its records."""
    j = subject.journal
    for coid in ("c1", "c2", "c3", "c4"):
        j.record_intent(intent(coid))
    j.record_attempt(attempt("c3", 1))
    j.record_outcome(placed("c3", "o3"))
    j.record_booking(booking("o3", "c3", "0.5"))
    j.record_final(final("c2"))
    j.record_final(final("c4", "canceled", "0", None))
    unfinished = subject.reopen().unfinished()
    assert [t.client_order_id for t in unfinished] == ["c1", "c3"]
    assert unfinished[1] == JournalTrade(
        intent=intent("c3"),
        attempts=(attempt("c3", 1),),
        outcomes=(placed("c3", "o3"),),
        bookings=(booking("o3", "c3", "0.5"),),
    )
    assert unfinished[0].attempt_count == 0
    assert unfinished[0].last_outcome is None
    assert not unfinished[0].finished


def test_trades_pages_in_intent_order(subject: Subject) -> None:
    """trades(limit, offset) pages through intents in the order they were recorded."""
    j = subject.journal
    coids = [f"c{n:02}" for n in range(7)]
    for coid in reversed(coids):  # recorded order, not name order
        j.record_intent(intent(coid))
    j.record_attempt(attempt("c03", 1))
    everything = j.trades()
    assert [t.client_order_id for t in everything] == list(reversed(coids))
    assert j.trades(limit=3) == everything[:3]
    assert j.trades(limit=3, offset=3) == everything[3:6]
    assert j.trades(offset=5) == everything[5:]
    assert j.trades(limit=0) == []
    assert j.trades(offset=50) == []
    assert j.trade("nope") is None
    for bad in ({"limit": -1}, {"offset": -1}, {"limit": True}, {"offset": 1.5}):
        with pytest.raises(InvalidInputError):
            j.trades(**bad)


def test_a_closed_journal_refuses_every_call(subject: Subject) -> None:
    """After close(), reads and writes raise JournalError; close() is idempotent."""
    j = subject.journal
    j.close()
    j.close()
    with pytest.raises(JournalError, match="closed"):
        j.record_intent(intent("c1"))
    with pytest.raises(JournalError, match="closed"):
        j.trades()


def test_read_model_serialises_to_json(subject: Subject) -> None:
    """JournalTrade.to_dict() is plain JSON: fixed-point decimals, ISO times, enum values."""
    j = subject.journal
    j.record_intent(intent("c1", qty="0.000000001", order_type="limit", limit_price="190.10"))
    j.record_attempt(attempt("c1", 1))
    j.record_outcome(placed("c1", "o1"))
    trade = j.trade("c1")
    assert trade is not None
    data = json.loads(json.dumps(trade.to_dict()))
    assert data["intent"]["qty"] == "0.000000001"
    assert data["intent"]["limit_price"] == "190.10"
    assert data["intent"]["created_at"] == "2026-11-24T13:00:00.123456+00:00"
    assert data["last_outcome"] == "placed"
    assert data["order_ids"] == ["o1"]
    assert data["attempt_count"] == 1
    assert data["final"] is None
    assert data["finished"] is False


# ---------------------------------------------------------------------------------- records
def _bad(build: Callable[[], Any]) -> InvalidInputError:
    with pytest.raises(InvalidInputError) as info:
        build()
    return info.value


def _untyped(value: object) -> Any:
    """A wrong-typed value, passed on as the type checker would never allow."""
    return value


@pytest.mark.parametrize(
    ("field", "build"),
    [
        ("client_order_id", lambda: dataclasses.replace(intent(), client_order_id="")),
        ("side", lambda: dataclasses.replace(intent(), side="short")),
        ("qty", lambda: dataclasses.replace(intent(), qty=Decimal(0))),
        ("qty", lambda: dataclasses.replace(intent(), qty=_untyped(1.5))),
        ("qty", lambda: dataclasses.replace(intent(), qty=Decimal("NaN"))),
        ("order_type", lambda: dataclasses.replace(intent(), order_type="MARKET")),
        ("time_in_force", lambda: dataclasses.replace(intent(), time_in_force="week")),
        ("limit_price", lambda: dataclasses.replace(intent(), limit_price=Decimal("-1"))),
        ("created_at", lambda: dataclasses.replace(intent(), created_at=datetime(2026, 1, 1))),
        ("attempt", lambda: SubmitAttempt(client_order_id="c", attempt=0, at=T0)),
        ("attempt", lambda: SubmitAttempt(client_order_id="c", attempt=True, at=T0)),
        (
            "outcome",
            lambda: SubmitOutcome(client_order_id="c", outcome=_untyped("maybe"), at=T0),
        ),
        (
            "order_id",
            lambda: SubmitOutcome(client_order_id="c", outcome=OutcomeKind.PLACED, at=T0),
        ),
        (
            "order_id",
            lambda: SubmitOutcome(
                client_order_id="c", outcome=OutcomeKind.REFUSED, order_id="o", at=T0
            ),
        ),
        (
            "message",
            lambda: SubmitOutcome(
                client_order_id="c", outcome=OutcomeKind.PLACED, order_id="o", message="x", at=T0
            ),
        ),
        ("filled_qty", lambda: dataclasses.replace(booking(), filled_qty=Decimal("-0.1"))),
        ("qty", lambda: Baseline(symbol="AAPL", qty=Decimal("Infinity"), at=T0)),
        ("status", lambda: dataclasses.replace(final(), status=_untyped("done"))),
        ("status", lambda: final("c1", "filled", "0", None)),
        ("fill_price", lambda: final("c1", "partially_filled", "1", "0")),
        ("order_ids", lambda: dataclasses.replace(final(), order_ids=_untyped("o1"))),
        ("key_id", lambda: JournalAccount(key_id=" ", base_url="http://x")),
        ("base_url", lambda: JournalAccount(key_id="k", base_url="paper-api.alpaca.markets")),
    ],
)
def test_bad_records_name_the_field(field: str, build: Callable[[], Any]) -> None:
    """A record that breaks a rule cannot be built; the error names the field."""
    assert _bad(build).field == field


def test_records_normalise_times_and_enums() -> None:
    """Times are kept in UTC; outcome and status strings become their enums."""
    eastern = timezone(timedelta(hours=-5))
    outcome = SubmitOutcome(
        client_order_id="c",
        outcome=_untyped("unresolved"),
        at=datetime(2026, 1, 1, 8, tzinfo=eastern),
    )
    assert outcome.at == datetime(2026, 1, 1, 13, tzinfo=UTC)
    assert outcome.at.tzinfo is UTC
    assert outcome.outcome is OutcomeKind.UNRESOLVED
    assert final("c1", "canceled", "0", None).status is FillStatus.CANCELED
    assert isinstance(booking(), Booking)


# ---------------------------------------------------------------------------------- paths
def test_default_path_is_per_account_under_xdg_state_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """$XDG_STATE_HOME/fillguard/journal-<16 hex>.sqlite3, one per key id and base URL."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    paper = default_journal_path("PKA", "https://paper-api.alpaca.markets")
    assert paper.parent == tmp_path / "fillguard"
    assert paper.name.startswith("journal-")
    assert paper.suffix == ".sqlite3"
    assert len(paper.stem.removeprefix("journal-")) == 16
    assert default_journal_path("PKA", "https://PAPER-api.alpaca.markets/") == paper
    others = {
        default_journal_path("PKB", "https://paper-api.alpaca.markets"),
        default_journal_path("PKA", "https://api.alpaca.markets"),
        default_journal_path("PKA", "http://127.0.0.1:8787"),
    }
    assert paper not in others
    assert len(others) == 3
    assert "PKA" not in str(paper)
    assert not paper.parent.exists()  # nothing is created


def test_default_path_falls_back_to_local_state(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without $XDG_STATE_HOME, or with a relative one (the spec says ignore it): ~/.local/state."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    path = default_journal_path("PKA", "https://paper-api.alpaca.markets")
    assert path.parent == tmp_path / ".local" / "state" / "fillguard"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/state")
    assert default_journal_path("PKA", "https://paper-api.alpaca.markets") == path


def test_base_urls_are_normalised() -> None:
    """Scheme and host lower-case, no trailing slash; a path is kept."""
    assert normalize_base_url("HTTPS://Paper-API.alpaca.markets/") == (
        "https://paper-api.alpaca.markets"
    )
    assert normalize_base_url("http://127.0.0.1:8787/prefix/") == "http://127.0.0.1:8787/prefix"
    assert JournalAccount(key_id="k", base_url="http://H:1/").base_url == "http://h:1"
    assert JournalAccount(key_id="PKABCDEF", base_url="http://h").masked_key_id() == "PKAB…"
