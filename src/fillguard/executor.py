"""SmartOrderExecutor: execute one trade and tell the truth about it.

1. Validate every argument before any request (:func:`~fillguard.intent.validate_intent`; a
   bad one raises :class:`InvalidInputError`, also a ``ValueError``, naming the field).
2. Touch the symbol: resolve its unresolved trades, book what its open orders filled, and
   take its baseline position before the first order in it is sent.
3. Submit through the submission state machine (:mod:`fillguard.submission`): one
   ``client_order_id`` for every attempt, look-ups before any resend, and an honest outcome.
4. Wait for the fill with :class:`FillDetectionEngine` (or the legacy loop, behind the flag),
   following replacements, and book every order of the trade by id (idempotent).
5. Check the broker's position when the symbol is quiet (:mod:`fillguard.positions`).

From the first POST on, nothing raises: every answer is a :class:`TradeResult` whose
``outcome`` says whether an order exists; an ``UNKNOWN`` trade stays in the executor until
:meth:`SmartOrderExecutor.resolve_unknown` (or a later trade in the symbol) learns its truth.
A trade returns within ``config.max_trade_seconds``.
"""

from __future__ import annotations

import logging
import os
import threading
from decimal import Decimal
from typing import Any

from fillguard.book import Book
from fillguard.broker import EXECUTOR_METHODS, BrokerClient
from fillguard.clock import Clock, SystemClock
from fillguard.config import OrderConfig
from fillguard.consistency import ConsistencyResult, StateConsistencyValidator
from fillguard.engine import FillDetectionEngine
from fillguard.intent import IdFactory, OrderIntent, new_client_order_id, validate_intent
from fillguard.journal import Journal
from fillguard.journaling import Checkpoint, TradeJournal, open_journal
from fillguard.legacy import legacy_wait_for_fill
from fillguard.logs import log_context
from fillguard.observer import NULL_OBSERVER, Observer
from fillguard.outcome import TradeOutcome, TradeResult
from fillguard.positions import PositionKeeper
from fillguard.recovery import RecoveryReport, recover, restore_book
from fillguard.results import FillResult
from fillguard.trade_steps import (
    Trade,
    after_internal_error,
    monitor_args,
    run_trade,
    settle,
    submit,
)
from fillguard.unresolved import Resolver, UnresolvedTrade

__all__ = ["ENV_FLAG", "OrderConfig", "SmartOrderExecutor", "TradeOutcome", "TradeResult"]

_logger = logging.getLogger("fillguard.executor")

#: Set to ``legacy`` to roll back to the legacy fill loop.
ENV_FLAG = "FILLGUARD_FILL_DETECTION"


class SmartOrderExecutor:
    """Executes trades idempotently and reports the broker's truth about each one.

    Thread-safe: trades, reconciles and resolves may run from many threads; trades in the same
    symbol take the symbol's baseline in order, and the book never counts a fill twice.

    Args:
        alpaca_client: alpaca-py's ``TradingClient`` (or an object with its methods).
        config: how to submit, wait and check.
        clock: time source (a ``FakeClock`` in tests).
        id_factory: makes ``client_order_id`` values (default: random UUIDs).
        observer: receives reports for metrics (default: none).
        journal: a journal to write (default: one at ``config.journal_path``, if set).
        checkpoint: a test hook called at each :data:`~fillguard.journaling.CHECKPOINTS` name.
        auto_recover: run :meth:`recover` when the journal holds unfinished trades.

    Raises:
        JournalError: the journal cannot be opened (corrupt, newer, another account, locked).
    """

    def __init__(
        self,
        alpaca_client: Any,
        config: OrderConfig | None = None,
        *,
        clock: Clock | None = None,
        logger: logging.Logger | None = None,
        id_factory: IdFactory | None = None,
        observer: Observer | None = None,
        journal: Journal | None = None,
        checkpoint: Checkpoint | None = None,
        auto_recover: bool = True,
    ) -> None:
        self.client = alpaca_client
        self.config = config or OrderConfig()
        if not isinstance(self.config, OrderConfig):
            raise ValueError("config must be an OrderConfig")
        self.clock: Clock = clock or SystemClock()
        self._logger = logger or _logger
        self.observer: Observer = observer or NULL_OBSERVER
        self._id_factory = id_factory or new_client_order_id
        needs = [
            m for m in EXECUTOR_METHODS if self.config.consistency_check or "position" not in m
        ]
        self.broker = BrokerClient(alpaca_client, needs=needs)
        # The engine takes over the client's transport (a total deadline per request, no
        # hidden SDK retries) whichever path runs, so a legacy submit is never re-POSTed.
        self.engine = FillDetectionEngine(
            alpaca_client, self.config.fill_detection, clock=self.clock, observer=self.observer
        )
        self.recovery = self.engine.recovery
        self.validator = StateConsistencyValidator(
            alpaca_client,
            clock=self.clock,
            timeout_seconds=self.config.consistency_timeout_seconds,
            initial_delay=self.config.consistency_initial_delay,
            max_delay=self.config.consistency_max_delay,
            recovery=self.recovery,
        )
        self._own_journal = journal is None and self.config.journal_path is not None
        journal = open_journal(alpaca_client, self.config.journal_path, journal, self.clock)
        self.trade_journal = TradeJournal(
            journal, self.clock, checkpoint=checkpoint, observer=self.observer
        )
        self.book = Book(
            self.clock,
            on_booked=self.trade_journal.booked,
            on_baseline=self.trade_journal.baseline,
        )
        self.positions = PositionKeeper(
            self.broker,
            self.recovery,
            self.validator,
            self.book,
            self.clock,
            self.config,
            self.observer,
            position_hint=self._position_hint,
            watching=self._watching,
        )
        self.resolver = Resolver(
            self.broker,
            self.recovery,
            self.clock,
            self.book,
            horizon_seconds=self.config.unknown_horizon_seconds,
        )
        env = os.environ.get(ENV_FLAG, "").strip().lower()
        self._flag = self.config.use_fill_detection_engine and env != "legacy"
        self.observer.fill_detection_engine_enabled(self._flag)
        self._lock = threading.Lock()
        self._unresolved: dict[str, UnresolvedTrade] = {}
        # Trades resolved on the way (a later trade touched the symbol), not yet returned.
        self._resolved_unreported: list[TradeResult] = []
        #: What the automatic recovery at open found (None: there was nothing to recover).
        self.last_recovery: RecoveryReport | None = None
        if journal is not None:
            restore_book(journal, self.book)
            if auto_recover and journal.unfinished():
                self.last_recovery = self.recover()

    # ------------------------------------------------------------------ the journal
    @property
    def journal(self) -> Journal | None:
        """The journal this executor writes, if any."""
        return self.trade_journal.journal

    def recover(self, *, resubmit: bool = False) -> RecoveryReport:
        """Finish, resume or keep every unfinished trade in the journal (see
        :mod:`fillguard.recovery`); ``resubmit`` sends never-sent trades under their own id."""
        return recover(self, resubmit=resubmit)

    def close(self) -> None:
        """Close the journal this executor opened (idempotent)."""
        if self._own_journal and self.journal is not None:
            self.journal.close()

    def __enter__(self) -> SmartOrderExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _watching(self, order_id: str) -> bool:
        return self.engine.tracker.is_watching(order_id)

    def _position_hint(self, symbol: str) -> Decimal | None:
        known = self.engine.tracker.position_qty(symbol)
        return None if known is None else known[1]

    # ------------------------------------------------------------------ the flag
    @property
    def fill_detection_enabled(self) -> bool:
        """The feature flag: True runs the engine, False the legacy loop (settable at run time)."""
        return self._flag

    @fill_detection_enabled.setter
    def fill_detection_enabled(self, enabled: bool) -> None:
        self._flag = bool(enabled)
        self.observer.fill_detection_engine_enabled(self._flag)

    # ------------------------------------------------------------------ public API
    def expected_position(self, symbol: str) -> Decimal | None:
        """The position the executor expects in ``symbol`` (None before its baseline)."""
        return self.book.expected(symbol.strip().upper())

    def open_orders(self, symbol: str) -> dict[str, Decimal]:
        """Our orders in ``symbol`` that may still fill, with the quantity booked for each."""
        return {b.order_id: b.filled_qty for b in self.book.open_orders(symbol.strip().upper())}

    def unresolved_trades(self) -> list[UnresolvedTrade]:
        """The trades whose truth is not known yet (copies)."""
        with self._lock:
            return list(self._unresolved.values())

    def execute_trade(
        self,
        symbol: str,
        side: Any,
        qty: Any = None,
        *,
        order_type: Any = "market",
        limit_price: Any = None,
        time_in_force: Any = "day",
        expected_price: Any = None,
        client_order_id: str | None = None,
        stop_price: Any = None,
        notional: Any = None,
    ) -> TradeResult:
        """Submit one order, wait for the broker's final word, check the position.

        Raises only :class:`InvalidInputError`, for bad arguments, before any request. Every
        other outcome is a :class:`TradeResult`: ``PLACED`` (``status`` says how it ended),
        ``NOT_PLACED``, ``REFUSED`` (``refusal`` says why) or ``UNKNOWN`` (kept and resolved
        later). Returns within ``config.max_trade_seconds``.
        """
        intent = self._intent(
            symbol,
            side,
            qty,
            order_type,
            limit_price,
            time_in_force,
            expected_price,
            client_order_id,
            stop_price=stop_price,
            notional=notional,
        )
        with log_context(client_order_id=intent.client_order_id):
            trade = Trade(intent, self.clock.monotonic())
            try:
                return run_trade(self, trade)
            except Exception as exc:  # the last guard: nothing raises once an order may exist
                self._logger.exception("trade failed inside fillguard")
                return after_internal_error(self, trade, exc)

    async def execute_trade_async(
        self,
        symbol: str,
        side: Any,
        qty: Any = None,
        *,
        order_type: Any = "market",
        limit_price: Any = None,
        time_in_force: Any = "day",
        expected_price: Any = None,
        client_order_id: str | None = None,
        stop_price: Any = None,
        notional: Any = None,
    ) -> TradeResult:
        """:meth:`execute_trade` for asyncio bots, with the same guarantees.

        The submission and the position check (a few short requests) run in a worker thread
        (with the caller's context, so log records carry the trade);
        while the order works, fill detection awaits the driver and holds no thread. Never
        calls ``asyncio.run``; safe inside a running loop.
        """
        import asyncio

        intent = self._intent(
            symbol,
            side,
            qty,
            order_type,
            limit_price,
            time_in_force,
            expected_price,
            client_order_id,
            stop_price=stop_price,
            notional=notional,
        )
        trade = Trade(intent, self.clock.monotonic())
        with log_context(client_order_id=intent.client_order_id):
            try:
                placed = await asyncio.to_thread(submit, self, trade)
                if isinstance(placed, TradeResult):
                    return placed
                args = monitor_args(trade, placed)
                self.trade_journal.checkpoint("monitoring")
                if self.fill_detection_enabled:
                    fill = await self.engine.monitor_order_fill_async(**args)
                else:
                    fill = await asyncio.to_thread(self._wait_for_fill, **args)
                return await asyncio.to_thread(settle, self, trade, placed, fill)
            except Exception as exc:  # the last guard, as in execute_trade
                self._logger.exception("trade failed inside fillguard")
                return after_internal_error(self, trade, exc)

    def _intent(
        self,
        symbol: Any,
        side: Any,
        qty: Any,
        order_type: Any,
        limit_price: Any,
        time_in_force: Any,
        expected_price: Any,
        client_order_id: Any,
        *,
        stop_price: Any = None,
        notional: Any = None,
    ) -> OrderIntent:
        return validate_intent(
            symbol,
            side,
            qty,
            order_type=order_type,
            limit_price=limit_price,
            time_in_force=time_in_force,
            expected_price=expected_price,
            client_order_id=client_order_id,
            id_factory=self._id_factory,
            created_at=self.clock.now(),
            stop_price=stop_price,
            notional=notional,
        )

    def resolve_unknown(self, symbol: str | None = None) -> list[TradeResult]:
        """Look up every unresolved trade (in ``symbol``, or all); return those resolved.

        A trade found is booked and reported ``PLACED`` with its order's current state; one
        the broker has not known for ``unknown_horizon_seconds`` after its last attempt is
        ``NOT_PLACED``. The others stay unresolved. The answer also holds the trades resolved
        since the last call on the way (when a later trade touched their symbol), so every
        resolution is returned exactly once. Never raises.
        """
        resolved = self._resolve(symbol)
        with self._lock:
            earlier, self._resolved_unreported = self._resolved_unreported, []
        return earlier + resolved

    def _resolve(self, symbol: str | None, deadline: float | None = None) -> list[TradeResult]:
        with self._lock:
            todo = [
                t
                for t in self._unresolved.values()
                if symbol is None or t.intent.symbol == symbol.strip().upper()
            ]
        if deadline is None:
            deadline = self.clock.monotonic() + self.config.consistency_timeout_seconds * max(
                1, len(todo)
            )
        resolved: list[TradeResult] = []
        for trade in todo:
            try:
                result = self.resolver.resolve(trade, deadline=deadline)
            except Exception:
                self._logger.exception("resolving %s failed", trade.intent.client_order_id)
                continue
            if result is None:
                continue
            self.positions.changed(trade.intent.symbol)
            with self._lock:
                if self._unresolved.pop(trade.intent.client_order_id, None) is None:
                    continue  # another thread resolved it first and reports it
                left = len(self._unresolved)
            self.observer.unresolved_trades(left)
            self.trade_journal.final(result)
            resolved.append(result)
        return resolved

    def reconcile_open_orders(self, symbol: str) -> bool:
        """Book what our open orders in ``symbol`` filled since; whether the book changed."""
        symbol = symbol.strip().upper()
        deadline = self.clock.monotonic() + self.config.consistency_timeout_seconds
        try:
            return self.positions.reconcile(symbol, deadline=deadline)
        except Exception:
            self._logger.exception("reconciling %s failed", symbol)
            return False

    def check_position(self, symbol: str) -> ConsistencyResult | None:
        """Compare the book with the broker's position in ``symbol`` now (None: deferred)."""
        symbol = symbol.strip().upper()
        deadline = self.clock.monotonic() + self.config.consistency_timeout_seconds
        return self.positions.check(symbol, deadline=deadline)

    def keep_unresolved(self, unresolved: UnresolvedTrade) -> None:
        """Hold ``unresolved`` until :meth:`resolve_unknown` (or a later trade) learns its truth."""
        with self._lock:
            self._unresolved[unresolved.intent.client_order_id] = unresolved
            count = len(self._unresolved)
        self.observer.unresolved_trades(count)

    # ------------------------------------------------------------------ fill detection
    def _wait_for_fill(
        self,
        order_id: str,
        timeout: float | None = None,
        expected_price: Decimal | None = None,
        *,
        client_order_id: str | None = None,
        submitted_at: Any = None,
    ) -> FillResult:
        """Wait for the order's outcome: the engine, or the legacy loop when the flag is off."""
        if self.fill_detection_enabled:
            return self.engine.monitor_order_fill(
                order_id,
                expected_price=expected_price,
                timeout=timeout,
                submitted_at=submitted_at,
                client_order_id=client_order_id,
            )
        return legacy_wait_for_fill(
            self.client,
            self.clock,
            order_id,
            timeout_seconds=self.config.fill_detection.timeout_seconds
            if timeout is None
            else timeout,
            poll_interval_seconds=self.config.legacy_poll_interval,
            client_order_id=client_order_id,
            observer=self.observer,
        )
