"""Recovery: what a restart does with a journal's unfinished trades.

:func:`restore_book` rebuilds the book from the journal: each symbol's baseline (syncs
included) and each order's booking. An order counts when its trade's first attempt came after
the symbol's baseline was taken (an order sent before is inside the baseline); an order may
still fill when its trade is unfinished or ended with the order possibly working (timeout,
partial fill).

:func:`recover` then looks at every unfinished trade:

* a placed order, or one found by ``client_order_id``: its fills made while the process was
  down are booked, it is watched again until it ends (as the trade would have been), and the
  trade is finished;
* never sent (no attempt recorded): ``NOT_PLACED``; with ``resubmit=True`` it is sent now,
  under the same ``client_order_id``;
* an attempt recorded but no order found: the lost-order procedure; the trade stays unresolved
  (spaced look-ups by the same ``client_order_id`` later, never a new id) and is reported so.

Last, each quiet symbol's book is compared once with the broker's position; a difference is
reported, never written into the book.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from fillguard.book import Book, Booking
from fillguard.errors import BrokerError
from fillguard.intent import OrderIntent
from fillguard.journal import Journal, JournalTrade, OutcomeKind
from fillguard.logs import log_event
from fillguard.outcome import TradeOutcome, TradeResult
from fillguard.results import FillResult, FillStatus
from fillguard.retry import RetryStats
from fillguard.unresolved import UnresolvedTrade

if TYPE_CHECKING:
    from fillguard.executor import SmartOrderExecutor

__all__ = ["PositionDifference", "RecoveryReport", "recover", "restore_book"]

_logger = logging.getLogger("fillguard.recovery")
_MAYBE_WORKING = frozenset({FillStatus.TIMEOUT, FillStatus.PARTIALLY_FILLED})


@dataclass(frozen=True, slots=True)
class PositionDifference:
    """A symbol whose rebuilt book differs from the broker's position (never synced here)."""

    symbol: str
    expected: Decimal
    broker: Decimal


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What recovery found and did. Trades are named by ``client_order_id``."""

    #: Orders found (placed, or found by client order id) and tracked again.
    resumed: tuple[str, ...] = ()
    #: Trades recovery finished (their final status is written), with their results.
    finished: tuple[TradeResult, ...] = ()
    #: Never sent; reported ``NOT_PLACED`` (or resubmitted with ``resubmit=True``).
    not_placed: tuple[str, ...] = ()
    #: Sent again under the same client order id (``resubmit=True``), with their results.
    resubmitted: tuple[TradeResult, ...] = ()
    #: Still unknown: kept by the executor, looked up again later.
    unresolved: tuple[str, ...] = ()
    #: Quantity booked during recovery, per order id (fills made while the process was down).
    fills_booked: dict[str, Decimal] = field(default_factory=dict)
    position_differences: tuple[PositionDifference, ...] = ()
    #: Symbols not compared: an order of ours may still fill there, or the read failed.
    positions_unchecked: tuple[str, ...] = ()
    elapsed_seconds: float = 0.0

    @property
    def clean(self) -> bool:
        """Nothing left unknown and no position difference."""
        return not self.unresolved and not self.position_differences

    def to_dict(self) -> dict[str, object]:
        """Plain JSON values."""
        return {
            "resumed": list(self.resumed),
            "finished": [r.to_log_dict() for r in self.finished],
            "not_placed": list(self.not_placed),
            "resubmitted": [r.to_log_dict() for r in self.resubmitted],
            "unresolved": list(self.unresolved),
            "fills_booked": {k: str(v) for k, v in self.fills_booked.items()},
            "position_differences": [
                {"symbol": d.symbol, "expected": str(d.expected), "broker": str(d.broker)}
                for d in self.position_differences
            ],
            "positions_unchecked": list(self.positions_unchecked),
            "elapsed_seconds": round(self.elapsed_seconds, 3),
        }


# ---------------------------------------------------------------------------- the book
def _counted(trade: JournalTrade | None, baseline_at: datetime | None) -> bool:
    if baseline_at is None or trade is None:
        return False
    first = trade.attempts[0].at if trade.attempts else trade.intent.created_at
    return first >= baseline_at


def _may_work(trade: JournalTrade | None) -> bool:
    return trade is None or trade.final is None or trade.final.status in _MAYBE_WORKING


def restore_book(journal: Journal, book: Book) -> int:
    """Rebuild ``book`` from ``journal``; the number of orders restored."""
    baselines = {s: (b.qty, b.at) for s, b in journal.baselines().items()}
    records = journal.bookings()
    # One bulk read of the trades (not one query per booking): a journal may hold many.
    trades = {t.client_order_id: t for t in journal.trades()} if records else {}
    entries: list[Booking] = []
    for record in records:
        coid = record.client_order_id
        trade = trades.get(coid)
        at = baselines.get(record.symbol, (None, None))[1]
        entries.append(
            Booking(
                record.order_id,
                record.symbol,
                record.side,
                record.filled_qty,
                _counted(trade, at),
                _may_work(trade),
                coid,
            )
        )
    book.restore(baselines, entries)
    return len(entries)


def intent_of(trade: JournalTrade) -> OrderIntent:
    """The journal's intent as the executor's value."""
    i = trade.intent
    return OrderIntent(
        client_order_id=i.client_order_id,
        symbol=i.symbol,
        side=i.side,
        qty=i.qty,
        order_type=i.order_type,
        time_in_force=i.time_in_force,
        limit_price=i.limit_price,
        expected_price=i.expected_price,
        created_at=i.created_at,
        stop_price=i.stop_price,
        notional=i.notional,
    )


# ---------------------------------------------------------------------------- recovery
@dataclass(slots=True)
class _Progress:
    resumed: list[str] = field(default_factory=list)
    finished: list[TradeResult] = field(default_factory=list)
    not_placed: list[str] = field(default_factory=list)
    resubmitted: list[TradeResult] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)
    watch: list[tuple[UnresolvedTrade, str]] = field(default_factory=list)


def recover(executor: SmartOrderExecutor, *, resubmit: bool = False) -> RecoveryReport:
    """Finish or keep every unfinished trade of the executor's journal; see the module."""
    journal = executor.trade_journal.journal
    if journal is None:
        return RecoveryReport()
    clock = executor.clock
    start = clock.monotonic()
    before = executor.book.filled_quantities()
    done = _Progress()
    known = {t.intent.client_order_id for t in executor.unresolved_trades()}
    for trade in journal.unfinished():
        if trade.client_order_id in known:
            continue  # this executor already holds it
        try:
            _one(executor, trade, done, resubmit=resubmit)
        except Exception:  # the last guard: one bad record never stops the others
            executor._logger.exception("recovering %s failed", trade.client_order_id)
            done.unresolved.append(trade.client_order_id)
    _watch(executor, done)
    for symbol in sorted({b.symbol for b in executor.book.open_orders()}):
        deadline = clock.monotonic() + executor.config.consistency_timeout_seconds
        executor.positions.reconcile(symbol, deadline=deadline)
    differences, unchecked = _compare(executor)
    after = executor.book.filled_quantities()
    booked = {
        oid: qty - before.get(oid, Decimal(0))
        for oid, qty in after.items()
        if qty > before.get(oid, Decimal(0))
    }
    report = RecoveryReport(
        resumed=tuple(done.resumed),
        finished=tuple(done.finished),
        not_placed=tuple(done.not_placed),
        resubmitted=tuple(done.resubmitted),
        unresolved=tuple(done.unresolved),
        fills_booked=booked,
        position_differences=differences,
        positions_unchecked=unchecked,
        elapsed_seconds=clock.monotonic() - start,
    )
    log_event(
        _logger,
        logging.WARNING if not report.clean else logging.INFO,
        "recovery_finished",
        resumed=len(report.resumed),
        finished=len(report.finished),
        not_placed=len(report.not_placed),
        resubmitted=len(report.resubmitted),
        unresolved=len(report.unresolved),
        fills_booked=len(booked),
        position_differences=len(differences),
    )
    return report


def _one(
    executor: SmartOrderExecutor, trade: JournalTrade, done: _Progress, *, resubmit: bool
) -> None:
    coid = trade.client_order_id
    intent = intent_of(trade)
    last = trade.last_outcome
    if last is not None and last.outcome in (OutcomeKind.REFUSED, OutcomeKind.NOT_PLACED):
        outcome = (
            TradeOutcome.REFUSED if last.outcome is OutcomeKind.REFUSED else TradeOutcome.NOT_PLACED
        )
        result = TradeResult(
            coid, None, None, None, last.message, trade.attempt_count, 0, outcome=outcome
        )
        executor.trade_journal.final(result)  # only the final status was missing
        done.finished.append(result)
        return
    if trade.attempt_count == 0:
        done.not_placed.append(coid)
        if resubmit:
            done.resubmitted.append(_resubmit(executor, intent))
        else:
            result = TradeResult(
                coid,
                None,
                None,
                None,
                "not placed: never sent before the restart",
                0,
                0,
                outcome=TradeOutcome.NOT_PLACED,
            )
            executor.trade_journal.final(result)
        return
    order_ids = trade.order_ids
    executor.book.reserve(coid, intent.symbol)
    kept = UnresolvedTrade(
        intent=intent,
        since=executor.clock.monotonic(),
        reason="unfinished when the process stopped",
        order_id=order_ids[0] if order_ids else None,
        # The horizon starts now: "not placed" needs 404s for that long from here on.
        last_attempt=executor.clock.monotonic(),
        submit_attempts=trade.attempt_count,
    )
    deadline = executor.clock.monotonic() + executor.config.consistency_timeout_seconds
    found = executor.resolver.resolve(kept, deadline=deadline)
    if found is None or found.fill is None:
        if found is not None:  # refused as another order's id, or taken as not placed
            executor.trade_journal.final(found)
            done.finished.append(found)
            return
        executor.keep_unresolved(kept)
        done.unresolved.append(coid)
        return
    done.resumed.append(coid)
    if found.fill.order_open:
        done.watch.append((kept, found.fill.final_order_id))
        return
    _finish(executor, kept, found.fill, found, done)


def _resubmit(executor: SmartOrderExecutor, intent: OrderIntent) -> TradeResult:
    return executor.execute_trade(
        intent.symbol,
        intent.side,
        intent.qty if intent.notional is None else None,
        order_type=intent.order_type,
        limit_price=intent.limit_price,
        time_in_force=intent.time_in_force,
        expected_price=intent.expected_price,
        client_order_id=intent.client_order_id,
        stop_price=intent.stop_price,
        notional=intent.notional,
    )


def _watch(executor: SmartOrderExecutor, done: _Progress) -> None:
    """Watch every resumed open order at once, as their trades would have."""
    if not done.watch:
        return
    fills = executor.engine.monitor_orders([oid for _, oid in done.watch])
    for (kept, _oid), fill in zip(done.watch, fills, strict=True):
        _finish(executor, kept, fill, None, done)


def _finish(
    executor: SmartOrderExecutor,
    kept: UnresolvedTrade,
    fill: FillResult,
    resolved: TradeResult | None,
    done: _Progress,
) -> None:
    intent = kept.intent
    first = kept.order_id or fill.order_id
    executor.trade_journal.checkpoint("fill_seen")
    executor.book.book_fill(
        first, fill, symbol=intent.symbol, side=intent.side, client_order_id=intent.client_order_id
    )
    executor.positions.changed(intent.symbol)
    executor.trade_journal.checkpoint("booked")
    if fill.status is FillStatus.UNKNOWN:
        kept.order_id = first
        executor.keep_unresolved(kept)
        done.unresolved.append(intent.client_order_id)
        return
    result = resolved or TradeResult(
        intent.client_order_id,
        first,
        fill,
        None,
        fill.error if not fill.filled else None,
        kept.submit_attempts,
        fill.api_calls,
        outcome=TradeOutcome.PLACED,
    )
    executor.trade_journal.final(result)
    done.finished.append(result)


def _compare(
    executor: SmartOrderExecutor,
) -> tuple[tuple[PositionDifference, ...], tuple[str, ...]]:
    differences: list[PositionDifference] = []
    unchecked: list[str] = []
    if not executor.config.consistency_check:
        return (), ()
    for symbol in executor.book.symbols():
        expected = executor.book.expected(symbol)
        if expected is None or not executor.book.is_quiet(symbol):
            unchecked.append(symbol)
            continue
        deadline = executor.clock.monotonic() + executor.config.consistency_timeout_seconds
        try:
            broker = executor.validator.get_broker_position(
                symbol, deadline=deadline, stats=RetryStats()
            )
        except BrokerError as err:
            log_event(
                _logger,
                logging.WARNING,
                "recovery_position_unreadable",
                symbol=symbol,
                error=str(err),
            )
            unchecked.append(symbol)
            continue
        if broker != expected:
            log_event(
                _logger,
                logging.WARNING,
                "recovery_position_difference",
                symbol=symbol,
                expected=expected,
                broker=broker,
            )
            differences.append(PositionDifference(symbol, expected, broker))
    return tuple(differences), tuple(unchecked)
