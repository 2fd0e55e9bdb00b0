"""One monitoring run's state (:class:`Monitor`) and how it becomes a :class:`FillResult`.

A run follows an order and, when the broker replaces it, its replacements (``replaced_by``):
the finished orders of the chain are kept as :class:`ChainLink` values and the result reports
the chain's totals. Building a result never raises: a combination of values that a
:class:`FillResult` cannot hold (a fill without a price) is reported as ``UNKNOWN`` instead.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from fillguard.config import FillDetectionConfig
from fillguard.gateway import CancelOutcome
from fillguard.logs import log_event
from fillguard.observer import Observer
from fillguard.results import ChainLink, FillResult, FillStatus, FillVerification, Refusal
from fillguard.retry import RetryStats
from fillguard.slippage import compute_slippage_pct, slippage_exceeded
from fillguard.snapshot import OrderSnapshot

__all__ = [
    "Monitor",
    "build_result",
    "link_of",
    "log_final_check",
    "log_post_cancel",
    "note_transition",
]

_PRICE_QUANTUM = Decimal("0.000000001")


@dataclass(slots=True)
class Monitor:
    """Per-call state of one monitoring run (never shared between threads)."""

    order_id: str
    start: float
    deadline: float
    final_deadline: float
    grace_until: float
    expected_price: Decimal | None
    submitted_at: datetime | None
    current_id: str = ""
    stats: RetryStats = field(default_factory=RetryStats)
    intervals: list[float] = field(default_factory=list)
    last: OrderSnapshot | None = None
    checks: int = 0
    degraded: bool = False
    cancel_sent: bool = False
    client_order_id: str | None = None
    links: list[ChainLink] = field(default_factory=list)
    refusal: Refusal | None = None

    def __post_init__(self) -> None:
        """The run starts on the order it was asked about."""
        self.current_id = self.current_id or self.order_id

    def grace(self) -> float:
        """Until when a 404 may mean "not visible yet" (forever once the order was seen)."""
        return math.inf if self.last is not None else self.grace_until

    def follow(self, replaced: OrderSnapshot, replacement_id: str) -> None:
        """The watched order was replaced: keep it as a link, watch ``replacement_id``."""
        self.links.append(link_of(self.current_id, replaced))
        self.current_id = replacement_id
        self.last = None
        self.cancel_sent = False
        # The replacement is known to exist: a 404 is a lagging read, not "no such order".
        self.grace_until = math.inf


def link_of(order_id: str, snap: OrderSnapshot) -> ChainLink:
    """The chain link of ``order_id`` as ``snap`` shows it."""
    return ChainLink(
        order_id=order_id,
        symbol=snap.symbol,
        side=snap.side,
        status=snap.status,
        filled_qty=snap.filled_qty,
        fill_price=snap.filled_avg_price if snap.filled_qty > 0 else None,
    )


def _chain_totals(links: list[ChainLink], last: ChainLink) -> tuple[Decimal, Decimal | None, bool]:
    """Filled quantity and average price over the chain, and whether every price is known."""
    qty = Decimal(0)
    notional = Decimal(0)
    priced = True
    for link in (*links, last):
        if link.filled_qty <= 0:
            continue
        qty += link.filled_qty
        if link.fill_price is None:
            priced = False
        else:
            notional += link.filled_qty * link.fill_price
    if qty <= 0 or not priced:
        return qty, None, priced
    if not links:
        return qty, last.fill_price, True
    return qty, (notional / qty).quantize(_PRICE_QUANTUM), True


def build_result(
    mon: Monitor,
    snap: OrderSnapshot,
    status: FillStatus,
    method: str,
    verification: FillVerification | None,
    *,
    config: FillDetectionConfig,
    now: float,
    logger: logging.Logger,
    observer: Observer,
    error: str | None = None,
) -> FillResult:
    """The :class:`FillResult` for ``mon`` ending in ``status`` on ``snap``; never raises."""
    last = link_of(mon.current_id, snap)
    links = tuple(mon.links)
    filled_qty, fill_price, priced = _chain_totals(mon.links, last)
    if not priced and status is FillStatus.FILLED:
        status, error = FillStatus.UNKNOWN, "a replaced order's fill price is not known"
    side = snap.side or next((link.side for link in links if link.side), None)
    slippage = None
    exceeded = False
    if mon.expected_price is not None and fill_price is not None and side in ("buy", "sell"):
        slippage = compute_slippage_pct(side, mon.expected_price, fill_price)
        exceeded = slippage_exceeded(slippage, config.slippage_threshold_pct)
        log_event(
            logger,
            logging.WARNING if exceeded else logging.INFO,
            "slippage_exceeded" if exceeded else "slippage",
            order_id=mon.order_id,
            side=side,
            expected_price=mon.expected_price,
            fill_price=fill_price,
            slippage_pct=slippage,
            threshold_pct=config.slippage_threshold_pct,
        )
    requested = snap.qty
    if requested is not None and links:
        requested += sum((link.filled_qty for link in links), Decimal(0))
    symbol = snap.symbol or next((link.symbol for link in links if link.symbol), None)

    def make(
        status: FillStatus, error: str | None, slippage: Decimal | None, exceeded: bool
    ) -> FillResult:
        return FillResult(
            filled=status is FillStatus.FILLED,
            status=status,
            order_id=mon.order_id,
            client_order_id=snap.client_order_id or mon.client_order_id,
            symbol=symbol,
            side=side,
            requested_qty=requested,
            filled_qty=filled_qty,
            fill_price=fill_price,
            filled_at=snap.filled_at,
            detection_method=method,
            verification=verification,
            elapsed_seconds=now - mon.start,
            api_calls=mon.stats.calls,
            retries=mon.stats.retries,
            slippage_pct=slippage,
            slippage_exceeded=exceeded,
            poll_intervals=tuple(mon.intervals),
            error=error,
            order_open=status is FillStatus.UNKNOWN or snap.is_open,
            chain=(*links, last) if links else (),
            refusal=mon.refusal if status is FillStatus.UNKNOWN else None,
        )

    try:
        result = make(status, error, slippage, exceeded)
    except ValueError as err:
        # The broker's values contradict each other: say so rather than claim anything.
        result = make(FillStatus.UNKNOWN, f"inconsistent broker state: {err}", None, False)
    observer.fill_detection(result.status.value, result.elapsed_seconds)
    if result.slippage_pct is not None:
        observer.slippage(float(result.slippage_pct) / 100)
    if result.status is FillStatus.FILLED:
        log_event(
            logger,
            logging.INFO,
            "fill_confirmed",
            order_id=mon.order_id,
            client_order_id=result.client_order_id,
            fill_price=result.fill_price,
            filled_qty=result.filled_qty,
            filled_at=result.filled_at,
            method=method,
            methods_confirmed=verification.methods_confirmed if verification else (),
            confidence=verification.confidence if verification else None,
            elapsed=result.elapsed_seconds,
            checks=mon.checks,
            chain=[link.order_id for link in result.chain] or None,
        )
    return result


def note_transition(logger: logging.Logger, mon: Monitor, snap: OrderSnapshot, now: float) -> None:
    """Log a change of the order's state and take ``snap`` as the latest known."""
    old = mon.last.status if mon.last is not None else None
    log_event(
        logger,
        logging.INFO,
        "status_transition",
        order_id=mon.order_id,
        old=old,
        new=snap.status,
        filled_qty=snap.filled_qty,
        elapsed=round(now - mon.start, 6),
        checks=mon.checks,
    )
    if mon.submitted_at is None and snap.submitted_at is not None:
        mon.submitted_at = snap.submitted_at
    if mon.client_order_id is None:
        mon.client_order_id = snap.client_order_id
    mon.last = snap


def log_final_check(
    logger: logging.Logger, order_id: str, snap: OrderSnapshot | None, *, settled: bool
) -> None:
    """The final check's verdict at the deadline."""
    log_event(
        logger,
        logging.INFO,
        "final_check",
        order_id=order_id,
        status=snap.status if snap else None,
        filled=bool(snap is not None and snap.status == "filled" and snap.filled_avg_price),
        settled=settled,
    )


def log_post_cancel(
    logger: logging.Logger,
    order_id: str,
    cancel: CancelOutcome | None,
    snap: OrderSnapshot | None,
    *,
    settled: bool,
) -> None:
    """What reading after a cancel request established."""
    log_event(
        logger,
        logging.INFO,
        "post_cancel_check",
        order_id=order_id,
        cancel=cancel.kind if cancel else None,
        status=snap.status if snap else None,
        filled_qty=snap.filled_qty if snap else None,
        filled=bool(snap is not None and snap.status == "filled"),
        settled=settled,
    )
