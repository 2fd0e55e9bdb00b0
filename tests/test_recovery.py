"""The journal in the executor, and recovery after a crash at every window.

Each test runs the real alpaca-py client over the in-process simulator in fake time. A "crash"
is a ``BaseException`` raised by the executor's checkpoint hook (it passes every ``except
Exception`` guard, as a kill would), after which the process state is dropped and a NEW
executor opens the same journal, as a restarted process does. The promises checked after every
restart come from the simulator's ledger: every order at the broker has its client order id in
the journal (0 lost), one order per client order id (0 duplicated), and once quiet the
recovered book equals the broker's positions.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fillguard.errors import InvalidInputError
from fillguard.executor import SmartOrderExecutor
from fillguard.journal import (
    JournalAccount,
    JournalAccountError,
    JournalWriteError,
    SubmitAttempt,
    TradeIntent,
)
from fillguard.journal_memory import InMemoryJournal
from fillguard.journal_sqlite import SqliteJournal
from fillguard.journaling import CHECKPOINTS, journal_account
from fillguard.outcome import TradeOutcome
from fillguard.results import FillStatus
from fillguard.sim import SimServer
from tests.executor_support import Rig, answer_with, fast_config, make_rig, script


class Crash(BaseException):
    """What a kill looks like from inside: nothing after it runs."""


def crash_at(point: str, times: int = 1) -> Callable[[str], None]:
    left = [times]

    def hook(name: str) -> None:
        if name == point and left[0] > 0:
            left[0] -= 1
            raise Crash(point)

    return hook


def journal_for(rig: Rig) -> InMemoryJournal:
    return InMemoryJournal(journal_account(rig.client))


def restart(rig: Rig, journal: Any, **kwargs: Any) -> SmartOrderExecutor:
    """A new executor on the same broker and journal: the restarted process."""
    rig.executor = SmartOrderExecutor(
        rig.client, rig.executor.config, clock=rig.clock, journal=journal, **kwargs
    )
    return rig.executor


def assert_ledger_promises(rig: Rig, journal: Any, symbols: tuple[str, ...] = ("AAPL",)) -> None:
    journaled = {t.client_order_id for t in journal.trades()}
    orders = rig.broker.list_orders()
    coids = [o.client_order_id for o in orders]
    assert set(coids) <= journaled, "an order at the broker is missing from the journal"
    assert len(coids) == len(set(coids)), "a client order id was placed twice"
    for symbol in symbols:
        assert rig.executor.expected_position(symbol) in (None, rig.position(symbol))


def quiesce(rig: Rig) -> None:
    rig.advance(5.0)
    rig.executor.resolve_unknown()
    for symbol in rig.executor.book.symbols():
        rig.executor.reconcile_open_orders(symbol)


# --------------------------------------------------------------------------- writes
def test_intent_and_attempt_are_durable_before_the_post() -> None:
    rig = make_rig()
    journal = journal_for(rig)
    seen: list[tuple[str, bool, int]] = []

    def hook(name: str) -> None:
        trades = journal.trades()
        posts = sum(len(v) for v in rig.broker.posts.values())
        seen.append((name, bool(trades), posts))

    restart(rig, journal, checkpoint=hook)
    result = rig.trade("AAPL", "buy", 2)
    assert result.outcome is TradeOutcome.PLACED
    assert result.filled
    names = [n for n, _, _ in seen]
    assert names == [n for n in CHECKPOINTS if n in names]  # in the documented order
    assert ("intent_recorded", True, 0) in seen
    assert ("attempt_recorded", True, 0) in seen  # recorded, and still nothing sent
    trade = journal.trade(result.client_order_id)
    assert trade is not None
    assert trade.finished
    assert trade.attempt_count == 1
    assert trade.last_outcome is not None
    assert trade.last_outcome.order_id == result.order_id
    assert trade.final is not None
    assert trade.final.status is FillStatus.FILLED
    assert [b.filled_qty for b in trade.bookings] == [Decimal(2)]
    assert "AAPL" in journal.baselines()


def test_a_failed_intent_write_sends_nothing() -> None:
    class FullDisk(InMemoryJournal):
        def record_intent(self, intent: TradeIntent) -> bool:
            raise JournalWriteError("database or disk is full")

    rig = make_rig()
    restart(rig, FullDisk(journal_account(rig.client)))
    result = rig.trade("AAPL", "buy", 1)
    assert result.outcome is TradeOutcome.NOT_PLACED
    assert "journal" in (result.error or "")
    assert rig.broker.posts == {}
    assert rig.broker.list_orders() == []


def test_a_failed_second_attempt_write_is_unknown_not_resent() -> None:
    class FailsSecond(InMemoryJournal):
        def record_attempt(self, attempt: SubmitAttempt) -> bool:
            if attempt.attempt >= 2:
                raise JournalWriteError("disk I/O error")
            return super().record_attempt(attempt)

    rig = make_rig()
    script(
        rig.api, answer_with(503, method="POST", path="/v2/orders")
    )  # not applied: a resend follows
    journal = FailsSecond(journal_for(rig).account)
    restart(rig, journal)
    result = rig.trade("AAPL", "buy", 1)
    assert result.outcome in (TradeOutcome.UNKNOWN, TradeOutcome.PLACED)
    assert len(rig.posts(result.client_order_id)) == 1  # never a POST without its record


def test_a_journal_of_another_account_is_refused(tmp_path: Path) -> None:
    rig = make_rig()
    other = InMemoryJournal(JournalAccount(key_id="SOMEONE-ELSE", base_url="http://x.test"))
    with pytest.raises(JournalAccountError):
        restart(rig, other)
    path = tmp_path / "j.sqlite3"
    SqliteJournal(path, account=other.account).close()
    with pytest.raises(JournalAccountError, match=str(path)):
        SmartOrderExecutor(rig.client, fast_config(journal_path=path), clock=rig.clock)


def test_journal_path_must_be_a_path() -> None:
    with pytest.raises(InvalidInputError, match="journal_path"):
        fast_config(journal_path=12)


# --------------------------------------------------------------------------- recovery
@pytest.mark.parametrize("point", CHECKPOINTS)
@pytest.mark.parametrize("order_type", ["market", "limit"])
def test_a_crash_at_every_window_loses_nothing_and_duplicates_nothing(
    point: str, order_type: str
) -> None:
    rig = make_rig()
    journal = journal_for(rig)
    restart(rig, journal, checkpoint=crash_at(point))
    price = rig.broker.prices.price("AAPL", rig.clock.monotonic())
    kwargs: dict[str, Any] = {}
    if order_type == "limit":
        kwargs = {
            "order_type": "limit",
            "limit_price": str((price * Decimal("0.98")).quantize(Decimal("0.01"))),
        }
    with pytest.raises(Crash):
        rig.trade("AAPL", "buy", 3, **kwargs)
    rig.advance(1.0)  # the broker goes on while the process is down
    if order_type == "limit":  # and the resting order fills meanwhile
        rig.broker.prices.set_price("AAPL", rig.clock.monotonic(), price * Decimal("0.95"))
        rig.advance(2.0)
    executor = restart(rig, journal)
    report = executor.last_recovery
    assert report is not None, "opening a journal with an unfinished trade recovers it"
    coid = journal.trades()[0].client_order_id
    orders = rig.orders_of(coid)
    if orders:
        assert coid in report.resumed or coid in report.unresolved
    else:
        assert coid in report.not_placed or coid in report.unresolved
    quiesce(rig)
    assert_ledger_promises(rig, journal)
    # Once resolved, the journal says what the broker says.
    rig.advance(executor.config.unknown_horizon_seconds + 1)
    executor.resolve_unknown()
    trade = journal.trade(coid)
    assert trade is not None
    assert trade.finished
    filled = sum((o.filled_qty for o in orders), Decimal(0))
    assert trade.final is not None
    assert trade.final.filled_qty == filled
    if filled:
        assert executor.expected_position("AAPL") == rig.position("AAPL")
    # And trading carries on.
    after = rig.trade("AAPL", "sell", 1)
    assert after.filled
    assert_ledger_promises(rig, journal)


def test_fills_made_while_down_are_booked_and_reported() -> None:
    rig = make_rig()
    journal = journal_for(rig)
    restart(rig, journal, checkpoint=crash_at("monitoring"))
    with pytest.raises(Crash):
        rig.trade("AAPL", "buy", 4)
    rig.advance(2.0)
    coid = journal.trades()[0].client_order_id
    (order,) = rig.orders_of(coid)
    assert order.filled_qty == 4
    report = restart(rig, journal).last_recovery
    assert report is not None
    assert report.resumed == (coid,)
    assert [r.client_order_id for r in report.finished] == [coid]
    assert report.fills_booked == {str(order.id): Decimal(4)}
    assert report.position_differences == ()
    assert rig.executor.expected_position("AAPL") == rig.position("AAPL") == 4


def test_a_never_sent_trade_is_not_placed_or_resubmitted_under_its_own_id() -> None:
    rig = make_rig()
    journal = journal_for(rig)
    restart(rig, journal, checkpoint=crash_at("intent_recorded"))
    with pytest.raises(Crash):
        rig.trade("AAPL", "buy", 1)
    coid = journal.trades()[0].client_order_id
    executor = restart(rig, journal, auto_recover=False)
    report = executor.recover(resubmit=True)
    assert report.not_placed == (coid,)
    (again,) = report.resubmitted
    assert again.client_order_id == coid
    assert again.filled
    assert len(rig.orders_of(coid)) == 1
    assert executor.recover().not_placed == ()  # finished now: nothing left to do


def test_a_lost_order_stays_unresolved_then_not_placed_after_the_horizon() -> None:
    rig = make_rig()
    journal = journal_for(rig)
    restart(rig, journal, checkpoint=crash_at("attempt_recorded"))
    with pytest.raises(Crash):
        rig.trade("AAPL", "buy", 1)
    coid = journal.trades()[0].client_order_id
    executor = restart(rig, journal)
    report = executor.last_recovery
    assert report is not None
    assert report.unresolved == (coid,)
    assert [t.intent.client_order_id for t in executor.unresolved_trades()] == [coid]
    assert executor.resolve_unknown() == []  # 404 once is not yet "not placed"
    rig.advance(executor.config.unknown_horizon_seconds + 1)
    (resolved,) = executor.resolve_unknown()
    assert resolved.outcome is TradeOutcome.NOT_PLACED
    assert rig.posts(coid) == []  # never sent again
    trade = journal.trade(coid)
    assert trade is not None
    assert trade.finished


def test_a_position_difference_is_reported_never_synced() -> None:
    rig = make_rig()
    journal = journal_for(rig)
    restart(rig, journal)
    assert rig.trade("AAPL", "buy", 2).filled
    restart(rig, journal, checkpoint=crash_at("monitoring"))
    with pytest.raises(Crash):
        rig.trade("AAPL", "buy", 1)
    rig.outside_fill("AAPL", "buy", Decimal(5))  # someone else trades while we are down
    report = restart(rig, journal).last_recovery
    assert report is not None
    (diff,) = report.position_differences
    assert (diff.symbol, diff.expected, diff.broker) == ("AAPL", Decimal(3), Decimal(8))
    assert rig.executor.expected_position("AAPL") == 3  # not overwritten


def test_the_book_is_rebuilt_from_the_journal(tmp_path: Path) -> None:
    rig = make_rig()
    path = tmp_path / "journal.sqlite3"
    config = fast_config(journal_path=path)
    with SmartOrderExecutor(rig.client, config, clock=rig.clock) as first:
        rig.executor = first
        assert rig.trade("AAPL", "buy", 3).filled
        assert rig.trade("MSFT", "buy", 2).filled
        assert rig.trade("AAPL", "sell", 1).filled
    with SmartOrderExecutor(rig.client, config, clock=rig.clock) as second:
        assert second.last_recovery is None  # nothing unfinished
        assert second.expected_position("AAPL") == rig.position("AAPL") == 2
        assert second.expected_position("MSFT") == rig.position("MSFT") == 2
        rig.executor = second
        # Replaying a finished trade returns its order, booked once.
        coid = rig.coids[0]
        replay = rig.trade("AAPL", "buy", 3, client_order_id=coid)
        assert replay.outcome is TradeOutcome.PLACED
        assert len(rig.orders_of(coid)) == 1
        assert second.expected_position("AAPL") == 2


def test_threads_trading_with_a_sqlite_journal_rebuild_the_same_book(
    sim: SimServer, tmp_path: Path
) -> None:
    """Real threads and a real socket: concurrent trades journal every booking once; a new
    executor on the journal has the broker's positions as its book, with nothing to recover."""
    from concurrent.futures import ThreadPoolExecutor

    sim.set_faults({"lost_submit_rate": 0.3, "partial_fill_rate": 0.3, "stale_read_rate": 0.2})
    path = tmp_path / "journal.sqlite3"
    config = fast_config(journal_path=path, timeout=2.0, unknown_horizon_seconds=1.0)
    plan = [("TSLA", "buy", 2), ("TSLA", "sell", 1), ("META", "buy", 3)] * 4
    with SmartOrderExecutor(sim.trading_client(), config) as executor:
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(lambda t: executor.execute_trade(*t), plan))
        while executor.unresolved_trades():
            executor.resolve_unknown()
        for symbol in ("TSLA", "META"):
            executor.reconcile_open_orders(symbol)
    placed = {r.client_order_id for r in results if r.outcome is TradeOutcome.PLACED}
    assert placed <= {row["order"]["client_order_id"] for row in sim.ledger()["orders"]}
    ledger = sim.ledger()
    with SmartOrderExecutor(sim.trading_client(), config) as again:
        report = again.last_recovery
        assert report is None or report.clean
        for symbol in ("TSLA", "META"):
            broker = Decimal(ledger["positions"].get(symbol, {}).get("qty", "0"))
            assert again.expected_position(symbol) == broker
    with SqliteJournal(path, read_only=True) as journal:
        assert {t.client_order_id for t in journal.trades()} == {r.client_order_id for r in results}
        assert journal.unfinished() == []


def test_journal_writes_are_measured_by_kind() -> None:
    from prometheus_client import CollectorRegistry

    from fillguard.metrics import PrometheusMetrics

    rig = make_rig()
    metrics = PrometheusMetrics(registry=CollectorRegistry())
    rig.executor = SmartOrderExecutor(
        rig.client, rig.executor.config, clock=rig.clock, journal=journal_for(rig), observer=metrics
    )
    assert rig.trade("AAPL", "buy", 2).filled
    counts = {
        kind: metrics.registry.get_sample_value(
            "fillguard_journal_write_seconds_count", {"kind": kind}
        )
        for kind in ("intent", "attempt", "outcome", "booking", "baseline", "final")
    }
    assert counts == dict.fromkeys(counts, 1.0)


def test_a_notional_trade_is_journaled_and_resubmitted_as_it_was() -> None:
    rig = make_rig()
    journal = journal_for(rig)
    restart(rig, journal, checkpoint=crash_at("intent_recorded"))
    with pytest.raises(Crash):
        rig.trade("AAPL", "buy", None, notional="250")
    (trade,) = journal.trades()
    assert trade.intent.notional == Decimal(250)
    assert trade.intent.qty == 0
    report = restart(rig, journal, auto_recover=False).recover(resubmit=True)
    (again,) = report.resubmitted
    assert again.client_order_id == trade.client_order_id
    assert again.outcome is TradeOutcome.PLACED
    (order,) = rig.orders_of(trade.client_order_id)
    assert order.filled_qty > 0
    assert rig.executor.expected_position("AAPL") == order.filled_qty
