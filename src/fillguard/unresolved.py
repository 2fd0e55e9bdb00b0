"""Trades whose truth is not known yet, and how a later look-up resolves them.

A trade is unresolved when its submission ended ``UNKNOWN`` (an order may exist under its
``client_order_id``) or its order's final state could not be learned (``UNKNOWN`` fill). It
stays in the executor: its reservation in the book keeps the symbol's position check back, so
it never causes a false mismatch, and :class:`Resolver` looks it up again later. An order found
is booked (idempotently, by order id) and reported; "not placed" is believed only once the
broker has answered 404 for ``horizon_seconds`` after the last attempt that may have applied.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from decimal import Decimal

from fillguard.book import Book
from fillguard.broker import BrokerClient
from fillguard.clock import Clock
from fillguard.errors import BrokerError, RefusedError
from fillguard.intent import OrderIntent
from fillguard.logs import log_event
from fillguard.monitoring import link_of
from fillguard.outcome import TradeOutcome, TradeResult
from fillguard.results import ChainLink, FillResult, FillStatus, Refusal
from fillguard.retry import ErrorRecoveryManager, RetryStats
from fillguard.snapshot import OrderSnapshot

__all__ = ["Resolver", "UnresolvedTrade", "fill_from_snapshot"]

_logger = logging.getLogger("fillguard.resolve")
_NOT_FOUND = frozenset({404})
_MAX_CHAIN = 20


@dataclass(slots=True)
class UnresolvedTrade:
    """A trade kept until its truth is known."""

    intent: OrderIntent
    since: float
    reason: str
    #: The order, when it is known to exist (its final state is what is unknown).
    order_id: str | None = None
    #: ``clock.monotonic()`` of the last POST that may have applied.
    last_attempt: float = 0.0
    submit_attempts: int = 0


def fill_from_snapshot(
    snap: OrderSnapshot,
    *,
    order_id: str,
    links: tuple[ChainLink, ...] = (),
    client_order_id: str | None = None,
    method: str = "resolved",
) -> FillResult | None:
    """What ``snap`` (the last order of a chain) says about the trade, or None if nothing yet.

    A live order is reported as it stands (``TIMEOUT`` or ``PARTIALLY_FILLED``, ``order_open``).
    """
    if snap.status is None or snap.is_half_updated:
        return None
    qty = snap.filled_qty + sum((link.filled_qty for link in links), Decimal(0))
    notional = Decimal(0)
    for link in (*links, link_of(order_id, snap)):
        if link.filled_qty > 0:
            if link.fill_price is None:
                return None  # a fill whose price is not written yet: look again later
            notional += link.filled_qty * link.fill_price
    price = (notional / qty).quantize(Decimal("0.000000001")) if qty > 0 else None
    if snap.status == "filled":
        status = FillStatus.FILLED
    elif snap.status == "rejected" and qty <= 0:
        status = FillStatus.REJECTED
    elif qty > 0:
        status = FillStatus.PARTIALLY_FILLED
    elif snap.status == "expired":
        status = FillStatus.EXPIRED
    elif snap.is_terminal:
        status = FillStatus.CANCELED
    else:
        status = FillStatus.TIMEOUT
    try:
        return FillResult(
            filled=status is FillStatus.FILLED,
            status=status,
            order_id=links[0].order_id if links else order_id,
            client_order_id=snap.client_order_id or client_order_id,
            symbol=snap.symbol,
            side=snap.side,
            requested_qty=snap.qty,
            filled_qty=qty,
            fill_price=price,
            filled_at=snap.filled_at,
            detection_method=method,
            verification=None,
            elapsed_seconds=0.0,
            api_calls=0,
            retries=0,
            slippage_pct=None,
            slippage_exceeded=False,
            order_open=snap.is_open,
            chain=(*links, link_of(order_id, snap)) if links else (),
        )
    except ValueError:
        return None


class Resolver:
    """Looks unresolved trades up and books what it finds."""

    def __init__(
        self,
        broker: BrokerClient,
        recovery: ErrorRecoveryManager,
        clock: Clock,
        book: Book,
        *,
        horizon_seconds: float,
        logger: logging.Logger | None = None,
    ) -> None:
        self.broker = broker
        self.recovery = recovery
        self.clock = clock
        self.book = book
        self.horizon_seconds = horizon_seconds
        self._logger = logger or _logger

    def resolve(self, trade: UnresolvedTrade, *, deadline: float) -> TradeResult | None:
        """The trade's truth, if the broker tells it now (booked); None if still unknown."""
        stats = RetryStats()
        intent = trade.intent
        if trade.order_id is None:
            found = self._look_up(trade, deadline, stats)
            if isinstance(found, TradeResult):
                return found
            if found is None:
                return None
            trade.order_id = str(found.order_id)
        chain = self._read_chain(trade.order_id, deadline, stats)
        if chain is None:
            return None
        links, last_id, last = chain
        first_id = links[0].order_id if links else last_id
        for link in links:
            self._book(
                intent, link.order_id, link.symbol, link.side, link.filled_qty, False, first_id
            )
        self._book(intent, last_id, last.symbol, last.side, last.filled_qty, last.is_open, first_id)
        fill = fill_from_snapshot(
            last, order_id=last_id, links=links, client_order_id=intent.client_order_id
        )
        if fill is None:
            return None
        log_event(
            self._logger,
            logging.INFO,
            "trade_resolved",
            client_order_id=intent.client_order_id,
            order_id=first_id,
            status=fill.status,
            filled_qty=fill.filled_qty,
            order_open=fill.order_open,
        )
        return TradeResult(
            intent.client_order_id,
            first_id,
            fill,
            None,
            None if fill.filled else f"resolved later: {fill.status.value}",
            trade.submit_attempts,
            stats.calls,
            outcome=TradeOutcome.PLACED,
        )

    def _book(
        self,
        intent: OrderIntent,
        order_id: str,
        symbol: str | None,
        side: str | None,
        filled_qty: Decimal,
        open_: bool,
        first_id: str,
    ) -> None:
        self.book.book(
            order_id,
            symbol=(symbol or intent.symbol).upper(),
            side=side or intent.side,
            filled_qty=filled_qty,
            open_=open_,
            client_order_id=intent.client_order_id if order_id == first_id else None,
            counted_like=None if order_id == first_id else first_id,
        )

    def _look_up(
        self, trade: UnresolvedTrade, deadline: float, stats: RetryStats
    ) -> OrderSnapshot | TradeResult | None:
        intent = trade.intent
        coid = intent.client_order_id
        try:
            raw = self.recovery.call(
                lambda: self.broker.get_order_by_client_id(coid),
                deadline=deadline,
                client_order_id=coid,
                stats=stats,
                expected_statuses=_NOT_FOUND,
                max_retries=0,
            )
        except RefusedError as err:
            if err.status_code == 404 and self.absent_long_enough(trade):
                self.book.release(coid)
                reason = (
                    f"not placed: the broker has answered 404 for {self.horizon_seconds:g} s "
                    "after the last attempt"
                )
                log_event(
                    self._logger,
                    logging.INFO,
                    "trade_resolved",
                    client_order_id=coid,
                    outcome=TradeOutcome.NOT_PLACED,
                )
                return TradeResult(
                    coid,
                    None,
                    None,
                    None,
                    reason,
                    trade.submit_attempts,
                    stats.calls,
                    outcome=TradeOutcome.NOT_PLACED,
                )
            return None
        except BrokerError:
            return None
        snap = OrderSnapshot.from_any(raw)
        if snap.order_id is None:
            return None
        match = intent.compare(snap)
        if match.verdict == "different":
            self.book.release(coid)
            refusal = Refusal(
                None,
                None,
                f"client_order_id {coid} is already used by a different order "
                f"({snap.order_id}; differs in {', '.join(match.fields)})",
            )
            return TradeResult(
                coid,
                None,
                None,
                None,
                refusal.message,
                trade.submit_attempts,
                stats.calls,
                outcome=TradeOutcome.REFUSED,
                refusal=refusal,
            )
        if match.verdict == "incomplete":
            return None
        return snap

    def absent_long_enough(self, trade: UnresolvedTrade) -> bool:
        """Whether 404s now outlast the horizon since the trade's last possible apply."""
        return self.clock.monotonic() - trade.last_attempt >= self.horizon_seconds

    def _read_chain(
        self, order_id: str, deadline: float, stats: RetryStats
    ) -> tuple[tuple[ChainLink, ...], str, OrderSnapshot] | None:
        links: list[ChainLink] = []
        current = order_id
        for _hop in range(_MAX_CHAIN):
            try:
                raw = self.recovery.call(
                    functools.partial(self.broker.get_order, current),
                    deadline=deadline,
                    order_id=current,
                    stats=stats,
                    max_retries=0,
                )
            except BrokerError:
                return None
            snap = OrderSnapshot.from_any(raw)
            if snap.status is None or snap.is_half_updated:
                return None
            if snap.status == "replaced":
                if not snap.replaced_by:
                    return None
                links.append(link_of(current, snap))
                current = snap.replaced_by
                continue
            return tuple(links), current, snap
        return None
