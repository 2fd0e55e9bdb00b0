"""One trade, step by step: submit, watch, settle (the executor's pipeline).

Each step takes the :class:`~fillguard.executor.SmartOrderExecutor` whose parts it uses and a
:class:`Trade` (what the call has done so far, for the last-resort guard). The journal is
written at each step (:mod:`fillguard.journaling`): the intent before anything is sent, an
attempt before each POST, the outcome, the bookings and the final status.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from fillguard.intent import OrderIntent
from fillguard.journaling import AttemptNotRecorded
from fillguard.logs import log_event
from fillguard.outcome import TradeOutcome, TradeResult, log_trade_finished
from fillguard.results import FillResult, FillStatus
from fillguard.retry import RetryStats
from fillguard.submission import Submission, SubmitResult
from fillguard.submitter import run_submission
from fillguard.unresolved import UnresolvedTrade

if TYPE_CHECKING:
    from fillguard.executor import SmartOrderExecutor

__all__ = ["Trade", "after_internal_error", "monitor_args", "run_trade", "settle", "submit"]


class Trade:
    """What one ``execute_trade`` call has done so far (for the last-resort guard)."""

    def __init__(self, intent: OrderIntent, start: float) -> None:
        self.intent = intent
        self.start = start
        self.posted = False
        self.last_post = start
        self.order_id: str | None = None
        self.posts = 0
        self.stats = RetryStats()


def run_trade(ex: SmartOrderExecutor, trade: Trade) -> TradeResult:
    placed = submit(ex, trade)
    if isinstance(placed, TradeResult):
        return placed
    args = monitor_args(trade, placed)
    ex.trade_journal.checkpoint("monitoring")
    return settle(ex, trade, placed, ex._wait_for_fill(**args))


def submit(ex: SmartOrderExecutor, trade: Trade) -> TradeResult | SubmitResult:
    """Touch the symbol, take its baseline, submit: the trade's result if nothing was
    placed, else the submission (its order is booked and watched next)."""
    intent = trade.intent
    symbol = intent.symbol
    log_event(
        ex._logger,
        logging.INFO,
        "trade_started",
        **intent.to_log_dict(),
        fill_detection="engine" if ex.fill_detection_enabled else "legacy",
    )
    stats = trade.stats
    why_unsent = ex.trade_journal.intent(intent)
    if why_unsent is not None:
        return unsent(ex, trade, why_unsent)
    touch_deadline = ex.clock.monotonic() + ex.config.consistency_timeout_seconds
    if any(t.intent.symbol == symbol for t in ex.unresolved_trades()):
        touched = ex._resolve(symbol, touch_deadline)
        with ex._lock:
            ex._resolved_unreported.extend(touched)
    ex.positions.reconcile(symbol, deadline=touch_deadline)
    with ex.positions.symbol_lock(symbol):
        if ex.config.consistency_check:
            baseline_deadline = ex.clock.monotonic() + ex.config.consistency_timeout_seconds
            ex.positions.ensure_baseline(symbol, deadline=baseline_deadline, stats=stats)
        ex.book.reserve(intent.client_order_id, symbol)
        ex.positions.changed(symbol)
    machine = Submission(
        intent,
        deadline=ex.clock.monotonic() + ex.config.submit_timeout_seconds,
        max_posts=ex.config.submit_attempts,
        lookups_per_round=ex.config.lookup_attempts,
        lookup_spacing_seconds=ex.config.lookup_spacing_seconds,
    )

    def before_post(attempt: int) -> None:
        ex.trade_journal.attempt(intent.client_order_id, attempt)  # before it may apply
        trade.posted = True
        trade.posts = attempt
        trade.last_post = ex.clock.monotonic()

    try:
        submitted = run_submission(
            machine,
            ex.broker,
            ex.recovery,
            ex.clock,
            stats=stats,
            before_post=before_post,
            after_post=lambda _n: ex.trade_journal.checkpoint("post_answered"),
        )
    except AttemptNotRecorded as err:
        return attempt_unrecorded(ex, trade, err)
    ex.observer.submit_outcome(submitted.outcome.value)
    refusal = submitted.refusal
    ex.trade_journal.outcome(
        intent.client_order_id,
        submitted.outcome,
        order_id=None if submitted.order is None else str(submitted.order.order_id),
        status_code=None if refusal is None else refusal.status_code,
        code=None if refusal is None else refusal.code,
        message=submitted.reason if refusal is None else refusal.message,
    )
    if submitted.outcome is not TradeOutcome.PLACED or submitted.order is None:
        return not_placed(ex, trade, submitted.outcome, submitted.reason, submitted, stats)
    order = submitted.order
    trade.order_id = str(order.order_id)
    ex.book.book(
        trade.order_id,
        symbol=(order.symbol or symbol).upper(),
        side=order.side or intent.side,
        filled_qty=order.filled_qty,
        open_=not order.is_terminal,
        client_order_id=intent.client_order_id,
    )
    ex.positions.changed(symbol)
    return submitted


def monitor_args(trade: Trade, submitted: SubmitResult) -> dict[str, Any]:
    order = submitted.order
    assert order is not None
    return {
        "order_id": str(order.order_id),
        "expected_price": trade.intent.expected_price,
        "client_order_id": trade.intent.client_order_id,
        "submitted_at": order.submitted_at,
    }


def settle(
    ex: SmartOrderExecutor, trade: Trade, submitted: SubmitResult, fill: FillResult
) -> TradeResult:
    """Book the trade's orders, keep it if its state is unknown, check the position."""
    intent = trade.intent
    order_id = trade.order_id
    assert order_id is not None
    ex.trade_journal.checkpoint("fill_seen")
    ex.book.book_fill(
        order_id,
        fill,
        symbol=intent.symbol,
        side=intent.side,
        client_order_id=intent.client_order_id,
    )
    ex.positions.changed(intent.symbol)
    ex.trade_journal.checkpoint("booked")
    if fill.status is FillStatus.UNKNOWN:
        # The first order: resolving reads the chain from it, so fills made before a
        # replace stay in the trade's quantity.
        keep(ex, trade, f"final state unknown: {fill.error}", order_id=order_id)
    consistency = None
    if ex.config.consistency_check and fill.filled_qty > 0:
        check_deadline = ex.clock.monotonic() + ex.config.consistency_timeout_seconds
        consistency = ex.positions.check(intent.symbol, deadline=check_deadline)
    result = TradeResult(
        intent.client_order_id,
        order_id,
        fill,
        consistency,
        fill.error if not fill.filled else None,
        submitted.posts,
        trade.stats.calls + fill.api_calls,
        outcome=TradeOutcome.PLACED,
        elapsed_seconds=ex.clock.monotonic() - trade.start,
    )
    ex.trade_journal.final(result)
    log_trade_finished(ex._logger, result)
    return result


def not_placed(
    ex: SmartOrderExecutor,
    trade: Trade,
    outcome: TradeOutcome,
    reason: str,
    submitted: SubmitResult,
    stats: RetryStats,
) -> TradeResult:
    intent = trade.intent
    if outcome is TradeOutcome.UNKNOWN:
        keep(ex, trade, reason)
    else:
        ex.book.release(intent.client_order_id)
        ex.positions.changed(intent.symbol)
    result = TradeResult(
        intent.client_order_id,
        None,
        None,
        None,
        reason,
        submitted.posts,
        stats.calls,
        outcome=outcome,
        refusal=submitted.refusal,
        elapsed_seconds=ex.clock.monotonic() - trade.start,
    )
    ex.trade_journal.final(result)
    log_trade_finished(ex._logger, result)
    return result


def unsent(ex: SmartOrderExecutor, trade: Trade, reason: str) -> TradeResult:
    """Nothing was sent and nothing will be (the journal could not record the trade)."""
    ex.book.release(trade.intent.client_order_id)
    result = TradeResult(
        trade.intent.client_order_id,
        None,
        None,
        None,
        reason,
        0,
        trade.stats.calls,
        outcome=TradeOutcome.NOT_PLACED,
        elapsed_seconds=ex.clock.monotonic() - trade.start,
    )
    log_trade_finished(ex._logger, result)
    return result


def attempt_unrecorded(
    ex: SmartOrderExecutor, trade: Trade, err: AttemptNotRecorded
) -> TradeResult:
    """An attempt could not be journaled, so its POST was not sent."""
    if not trade.posted:
        return unsent(ex, trade, f"not sent: {err}")
    reason = f"stopped before attempt {err.attempt}: {err}; an earlier attempt may have applied"
    keep(ex, trade, reason)
    result = TradeResult(
        trade.intent.client_order_id,
        None,
        None,
        None,
        reason,
        trade.posts,
        trade.stats.calls,
        outcome=TradeOutcome.UNKNOWN,
        elapsed_seconds=ex.clock.monotonic() - trade.start,
    )
    log_trade_finished(ex._logger, result)
    return result


def keep(ex: SmartOrderExecutor, trade: Trade, reason: str, *, order_id: str | None = None) -> None:
    """Hold the trade as unresolved: an order may exist, or its final state is unknown."""
    ex.keep_unresolved(
        UnresolvedTrade(
            intent=trade.intent,
            since=ex.clock.monotonic(),
            reason=reason,
            order_id=order_id,
            last_attempt=trade.last_post,
            submit_attempts=trade.posts,
        )
    )
    log_event(
        ex._logger,
        logging.WARNING,
        "trade_unresolved",
        client_order_id=trade.intent.client_order_id,
        order_id=order_id,
        reason=reason,
    )


def after_internal_error(ex: SmartOrderExecutor, trade: Trade, exc: Exception) -> TradeResult:
    intent = trade.intent
    reason = f"internal error: {type(exc).__name__}: {exc}"
    if trade.posted:
        keep(ex, trade, reason, order_id=trade.order_id)
        outcome = TradeOutcome.PLACED if trade.order_id else TradeOutcome.UNKNOWN
    else:
        ex.book.release(intent.client_order_id)
        outcome = TradeOutcome.NOT_PLACED
    return TradeResult(
        intent.client_order_id,
        trade.order_id,
        None,
        None,
        reason,
        trade.posts,
        0,
        outcome=outcome,
        elapsed_seconds=ex.clock.monotonic() - trade.start,
    )
