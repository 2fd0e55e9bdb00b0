"""Keeping the book equal to the broker: baselines, catching up on open orders, checks, syncs.

* A symbol's **baseline** is read before the first order in it is sent, and only while none
  of our orders in it may still fill; the per-symbol lock holds other trades in the symbol
  back until it is taken, so no order of ours can be both inside the baseline and booked.
* **Open orders** (ours, left live when their trade returned) are read again and their new
  fills booked, cumulatively, so a reconcile can never count a fill twice.
* A **position check** is made only when the symbol is quiet (no order of ours open,
  unresolved or in flight), and its answer is kept only if the book did not change meanwhile.
  A difference read past the lag window (``position_settle_seconds`` after our last fill) is a
  mismatch: it is reported and the book is synced to the broker. An earlier difference may be
  the broker's position lagging: it is ``unverified`` and never written into the book.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal

from fillguard.book import Book
from fillguard.broker import BrokerClient
from fillguard.clock import Clock
from fillguard.config import OrderConfig
from fillguard.consistency import ConsistencyResult, StateConsistencyValidator, side_of
from fillguard.errors import BrokerError
from fillguard.logs import log_event
from fillguard.observer import Observer
from fillguard.retry import ErrorRecoveryManager, RetryStats
from fillguard.snapshot import OrderSnapshot

__all__ = ["PositionKeeper"]

_logger = logging.getLogger("fillguard.positions")
_MAX_CHAIN = 20


class PositionKeeper:
    """Baselines, open-order catch-up and position checks over one :class:`Book`."""

    def __init__(
        self,
        broker: BrokerClient,
        recovery: ErrorRecoveryManager,
        validator: StateConsistencyValidator,
        book: Book,
        clock: Clock,
        config: OrderConfig,
        observer: Observer,
        *,
        logger: logging.Logger | None = None,
        position_hint: Callable[[str], Decimal | None] | None = None,
        watching: Callable[[str], bool] | None = None,
    ) -> None:
        self.broker = broker
        self.recovery = recovery
        self.validator = validator
        self.book = book
        self.clock = clock
        self.config = config
        self.observer = observer
        self._logger = logger or _logger
        #: The account's position after the newest execution event in a symbol (the stream's
        #: ``position_qty``): when it equals the book, no REST read is needed.
        self.position_hint = position_hint
        #: Whether the tracker watches an order now: its own trade books it when it ends, so a
        #: catch-up read of it would only repeat the monitor's work (once per trade in flight).
        self.watching = watching
        self._lock = threading.Lock()
        self._symbol_locks: dict[str, threading.Lock] = {}
        self._versions: dict[str, int] = {}

    def symbol_lock(self, symbol: str) -> threading.Lock:
        """The lock that orders baselines, reservations and syncs in ``symbol``."""
        with self._lock:
            return self._symbol_locks.setdefault(symbol, threading.Lock())

    def changed(self, symbol: str) -> None:
        """Note that the book of ``symbol`` changed (a reservation, a booking)."""
        with self._lock:
            self._versions[symbol] = self._versions.get(symbol, 0) + 1

    def _version(self, symbol: str) -> int:
        with self._lock:
            return self._versions.get(symbol, 0)

    # ------------------------------------------------------------------ baseline
    def ensure_baseline(self, symbol: str, *, deadline: float, stats: RetryStats) -> None:
        """Read ``symbol``'s position as its baseline if it has none and is quiet.

        Call with :meth:`symbol_lock` held, before reserving the trade.
        """
        if self.book.baseline(symbol) is not None or not self.book.is_quiet(symbol):
            return
        last_fill = self.book.last_fill_monotonic(symbol)
        if last_fill is not None and (
            self.clock.monotonic() - last_fill < self.config.position_settle_seconds
        ):
            # An order of ours (sent before any baseline, so uncounted) filled within the lag
            # window: the position may not show it yet, and a baseline read now would leave
            # that fill out of the book for good. Take it once the window has passed.
            log_event(self._logger, logging.INFO, "baseline_deferred", symbol=symbol)
            return
        try:
            qty = self.validator.get_broker_position(symbol, deadline=deadline, stats=stats)
        except BrokerError as err:
            log_event(
                self._logger, logging.WARNING, "baseline_unavailable", symbol=symbol, error=str(err)
            )
            return
        if self.book.set_baseline(symbol, qty):
            log_event(self._logger, logging.INFO, "position_baseline", symbol=symbol, qty=qty)

    # ------------------------------------------------------------------ open orders
    def reconcile(self, symbol: str, *, deadline: float) -> bool:
        """Read our open orders in ``symbol`` and book what they filled; whether it changed."""
        changed = False
        for booking in self.book.open_orders(symbol):
            if self.clock.monotonic() >= deadline:
                break
            if self.watching is not None and self.watching(booking.order_id):
                continue
            changed |= self._catch_up(booking.order_id, deadline)
        if changed:
            self.changed(symbol)
        return changed

    def _catch_up(self, order_id: str, deadline: float) -> bool:
        current, first = order_id, order_id
        changed = False
        for _hop in range(_MAX_CHAIN):
            try:
                raw = self.recovery.call(
                    functools.partial(self.broker.get_order, current),
                    deadline=deadline,
                    priority="position",
                    order_id=current,
                    stats=RetryStats(),
                    max_retries=0,
                )
            except BrokerError as err:
                log_event(
                    self._logger,
                    logging.WARNING,
                    "open_order_unreadable",
                    order_id=current,
                    error=str(err),
                )
                return changed
            snap = OrderSnapshot.from_any(raw)
            if snap.status is None or snap.is_half_updated:
                return changed  # says nothing reliable: look again next time
            known = self.book.booking(current)
            replaced = snap.status == "replaced" and bool(snap.replaced_by)
            gained = self.book.book(
                current,
                symbol=(snap.symbol or (known.symbol if known else "")).upper(),
                side=snap.side or (known.side if known else "buy"),
                filled_qty=snap.filled_qty,
                open_=snap.is_open,
                counted_like=None if current == first else first,
            )
            changed |= gained > 0 or not snap.is_open
            if gained > 0 or not snap.is_open:
                log_event(
                    self._logger,
                    logging.INFO,
                    "open_order_reconciled",
                    order_id=current,
                    status=snap.status,
                    filled_qty=snap.filled_qty,
                    gained=gained,
                )
            if not replaced or snap.replaced_by is None:
                return changed
            current = snap.replaced_by
            self.book.book(
                current,
                symbol=(snap.symbol or "").upper(),
                side=snap.side or "buy",
                filled_qty=Decimal(0),
                open_=True,
                counted_like=first,
            )
        return changed

    # ------------------------------------------------------------------ checks
    def check(self, symbol: str, *, deadline: float) -> ConsistencyResult | None:
        """Compare the book with the broker's position in ``symbol``; None when deferred."""
        self.reconcile(symbol, deadline=deadline)
        version = self._version(symbol)
        expected = self.book.expected(symbol)
        if expected is None:
            return None
        if not self.book.is_quiet(symbol):
            still_open = len(self.book.open_orders(symbol))
            log_event(
                self._logger,
                logging.INFO,
                "consistency_deferred",
                symbol=symbol,
                reason="orders still open" if still_open else "orders in flight or unresolved",
                open_orders=still_open,
                unresolved=len(self.book.unbound(symbol)),
            )
            return None
        hint = self.position_hint(symbol) if self.position_hint is not None else None
        if hint is not None and hint == expected:
            return self._consistent_by_stream(symbol, expected, hint)
        last_fill = self.book.last_fill_monotonic(symbol)
        settled_after = (
            None if last_fill is None else last_fill + self.config.position_settle_seconds
        )
        result = self.validator.validate_fill_consistency(
            symbol, expected, settled_after=settled_after, deadline=deadline
        )
        if self._version(symbol) != version or not self.book.is_quiet(symbol):
            # Another trade in the symbol started meanwhile: its fill may be in the reading.
            result = replace(
                result,
                consistent=False,
                verdict="unverified",
                discrepancy=f"{symbol}: the book changed during the check",
            )
        elif result.verdict == "mismatch" and result.broker_qty is not None:
            result = self._sync(symbol, result, version)
        self.observer.position_check(result.verdict or "unverified")
        self.observer.position_check_by_symbol(symbol, result.verdict or "unverified")
        return result

    def _consistent_by_stream(
        self, symbol: str, expected: Decimal, hint: Decimal
    ) -> ConsistencyResult:
        """The broker's own word with the fill (its ``position_qty``) agrees: no read needed."""
        result = ConsistencyResult(
            consistent=True,
            symbol=symbol,
            expected_qty=expected,
            broker_qty=hint,
            expected_side=side_of(expected),
            broker_side=side_of(hint),
            discrepancy=None,
            checks=0,
            verdict="consistent",
        )
        log_event(
            self._logger,
            logging.INFO,
            "consistency_check",
            symbol=symbol,
            consistent=True,
            verdict="consistent",
            expected_qty=expected,
            broker_qty=hint,
            discrepancy=None,
            checks=0,
            source="position_qty",
        )
        self.observer.position_check("consistent")
        self.observer.position_check_by_symbol(symbol, "consistent")
        return result

    def _sync(self, symbol: str, result: ConsistencyResult, version: int) -> ConsistencyResult:
        broker_qty = result.broker_qty
        assert broker_qty is not None
        with self.symbol_lock(symbol):
            if self._version(symbol) != version or not self.book.is_quiet(symbol):
                return replace(result, verdict="unverified")
            delta = self.book.sync(symbol, broker_qty)
            self.changed(symbol)
        log_event(
            self._logger,
            logging.ERROR,
            "position_synced",
            symbol=symbol,
            old_expected=result.expected_qty,
            broker_qty=broker_qty,
            delta=delta,
        )
        self.observer.position_sync()
        return replace(result, synced=True)
