"""The fill detection engine: monitor one order until the broker says how it ended.

The loop reads the order with adaptive intervals and asks :class:`MultiMethodVerifier` after
every read. It ends at once on a complete, priced fill, a rejection, or a cancel or expiry by
someone else. A partial fill is handled by policy (cancel the remainder and report the true
partial, or wait). Transient errors never end monitoring early: the retry manager backs off
inside the deadline, and when retries run out the loop carries on at the maximum interval.
At the deadline, :class:`FinalVerificationHandler` makes the last check and, if the order is
still open, cancels it and reads until the broker's final word: a fill that raced the cancel
is returned as a fill, and when the final state cannot be learned the result is ``UNKNOWN``,
never a guess of "not filled".

Waiting goes through ``clock.wait`` on a per-order event, so an event source (the
trade_updates stream) can wake a monitor early with :meth:`FillDetectionEngine.notify`.
"""

from __future__ import annotations

import logging
import math
import random
import threading
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from fillguard.clock import Clock, SystemClock
from fillguard.config import FillDetectionConfig
from fillguard.errors import InvalidInputError, TransientError
from fillguard.final import FinalCheck, FinalVerificationHandler, is_older_read
from fillguard.gateway import OrderGateway
from fillguard.logs import log_event
from fillguard.polling import poll_interval
from fillguard.results import FillResult, FillStatus, FillVerification
from fillguard.retry import ErrorRecoveryManager, RetryStats
from fillguard.slippage import compute_slippage_pct, slippage_exceeded
from fillguard.snapshot import OrderSnapshot, to_decimal
from fillguard.transport import own_transport
from fillguard.verify import MultiMethodVerifier

__all__ = ["FillDetectionEngine"]

_logger = logging.getLogger("fillguard.engine")

_ENDED_BY_OTHERS = {"canceled": FillStatus.CANCELED, "expired": FillStatus.EXPIRED}


@dataclass(slots=True)
class _Monitor:
    """Per-call state of one monitoring run (never shared between threads)."""

    order_id: str
    start: float
    deadline: float
    final_deadline: float
    grace_until: float
    expected_price: Decimal | None
    submitted_at: datetime | None
    stats: RetryStats = field(default_factory=RetryStats)
    intervals: list[float] = field(default_factory=list)
    last: OrderSnapshot | None = None
    checks: int = 0
    degraded: bool = False
    cancel_sent: bool = False
    client_order_id: str | None = None

    def grace(self) -> float:
        # Once the broker has shown us the order, a 404 can only be a stale read.
        return math.inf if self.last is not None else self.grace_until


class FillDetectionEngine:
    """Monitors orders until they fill, fail or time out, and reports the broker's truth.

    Args:
        alpaca_client: alpaca-py's ``TradingClient`` or any object with its methods
            (``get_order_by_id``, ``cancel_order_by_id``; ``get`` for activities, optional).
        config: timing, retry and policy settings.
        clock: time source (a ``FakeClock`` in tests).
        rng: random source for retry jitter.

    One engine may monitor many orders from many threads at once.
    """

    def __init__(
        self,
        alpaca_client: Any,
        config: FillDetectionConfig | None = None,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.client = alpaca_client
        self.config = config or FillDetectionConfig()
        self.clock: Clock = clock or SystemClock()
        self._logger = logger or _logger
        # The SDK has no request timeout and retries 429/504 itself with blocking sleeps:
        # take both over so that our policy is the only one.
        self.transport_owned = own_transport(
            alpaca_client, request_timeout=self.config.request_timeout_seconds
        )
        self.verifier = MultiMethodVerifier()
        self.recovery = ErrorRecoveryManager(self.config, clock=self.clock, rng=rng)
        self.gateway = OrderGateway(alpaca_client, self.recovery, self.clock)
        self.final = FinalVerificationHandler(
            self.gateway, self.config, self.clock, verifier=self.verifier
        )
        self._wake_lock = threading.Lock()
        # Every monitor of an order has its own event (one order may be watched twice).
        self._wakeups: dict[str, list[threading.Event]] = {}

    # ------------------------------------------------------------------ wake-ups
    def notify(self, order_id: str) -> bool:
        """Wake every monitor of ``order_id`` now (e.g. a stream event arrived). False if none."""
        with self._wake_lock:
            events = list(self._wakeups.get(str(order_id), ()))
        for event in events:
            event.set()
        return bool(events)

    # ------------------------------------------------------------------ public API
    def monitor_order_fill(
        self,
        order_id: str,
        *,
        expected_price: Decimal | float | str | None = None,
        timeout: float | None = None,
        submitted_at: datetime | None = None,
        client_order_id: str | None = None,
    ) -> FillResult:
        """Watch ``order_id`` until the broker says how it ended, within the time budget.

        Returns within ``timeout + final_verification_seconds`` plus at most one request
        timeout. Raises :class:`~fillguard.errors.RefusedError` (with the order id) when the
        broker refuses to tell (401, 403, a 404 past the grace window).
        """
        order_id = str(order_id)
        if not order_id:
            raise InvalidInputError("order_id", "must be a non-empty order id")
        timeout = self.config.timeout_seconds if timeout is None else timeout
        if not timeout > 0:
            raise InvalidInputError("timeout", f"must be > 0 seconds, got {timeout}")
        price = None if expected_price is None else to_decimal(expected_price)
        if expected_price is not None and (price is None or price <= 0):
            raise InvalidInputError(
                "expected_price", f"must be a positive number, got {expected_price!r}"
            )
        start = self.clock.monotonic()
        mon = _Monitor(
            order_id=order_id,
            start=start,
            deadline=start + timeout,
            final_deadline=start + timeout + self.config.final_verification_seconds,
            grace_until=start + self.config.not_found_grace_seconds,
            expected_price=price,
            submitted_at=submitted_at,
            client_order_id=client_order_id,
        )
        wake = threading.Event()
        with self._wake_lock:
            self._wakeups.setdefault(order_id, []).append(wake)
        log_event(
            self._logger,
            logging.INFO,
            "monitoring_started",
            order_id=order_id,
            client_order_id=client_order_id,
            timeout=timeout,
            expected_price=price,
            config=self.config.to_log_dict(),
        )
        try:
            result = self._run(mon, wake)
        finally:
            with self._wake_lock:
                waiting = self._wakeups.get(order_id, [])
                waiting[:] = [event for event in waiting if event is not wake]
                if not waiting:
                    self._wakeups.pop(order_id, None)
        log_event(self._logger, logging.INFO, "monitoring_finished", **result.to_log_dict())
        return result

    # ------------------------------------------------------------------ the loop
    def _run(self, mon: _Monitor, wake: threading.Event) -> FillResult:
        iteration = 0
        while self.clock.monotonic() < mon.deadline:
            snap = self._read(mon)
            if snap is not None:
                result = self._decide(mon, snap)
                if result is not None:
                    return result
            interval = (
                self.config.max_poll_interval
                if mon.degraded
                else poll_interval(iteration, self.config)
            )
            if mon.last is not None and self._fill_missing_price(mon.last, mon):
                # Filled but the price is not there yet: read again soon.
                interval = self.config.initial_poll_interval
            left = mon.deadline - self.clock.monotonic()
            if left <= 0:
                break
            wait = min(interval, left)
            mon.intervals.append(wait)
            log_event(
                self._logger,
                logging.DEBUG,
                "poll_interval",
                order_id=mon.order_id,
                iteration=iteration,
                interval=wait,
                degraded=mon.degraded,
            )
            if self.clock.wait(wake, wait):
                wake.clear()
            iteration += 1
        return self._handle_timeout(mon)

    def _read(self, mon: _Monitor) -> OrderSnapshot | None:
        try:
            snap = self.gateway.read(
                mon.order_id, deadline=mon.deadline, stats=mon.stats, grace_until=mon.grace()
            )
        except TransientError as err:
            if not mon.degraded:
                log_event(
                    self._logger,
                    logging.ERROR,
                    "monitoring_degraded",
                    order_id=mon.order_id,
                    reason=str(err),
                    next_interval=self.config.max_poll_interval,
                )
            mon.degraded = True
            return None
        mon.degraded = False
        mon.checks += 1
        if snap.status is None:
            return None  # garbage read: says nothing; read again
        if not self._observe(mon, snap):
            return None  # an older version of the order: says nothing new
        return snap

    def _observe(self, mon: _Monitor, snap: OrderSnapshot) -> bool:
        """Take ``snap`` as the latest known state; False (ignored) if it is a stale read."""
        if mon.last is not None and is_older_read(mon.last, snap):
            log_event(
                self._logger,
                logging.INFO,
                "stale_read_ignored",
                order_id=mon.order_id,
                status=snap.status,
                filled_qty=snap.filled_qty,
                known_status=mon.last.status,
                known_filled_qty=mon.last.filled_qty,
            )
            return False
        old = mon.last.status if mon.last is not None else None
        if snap.status != old or (mon.last is not None and snap.filled_qty != mon.last.filled_qty):
            log_event(
                self._logger,
                logging.INFO,
                "status_transition",
                order_id=mon.order_id,
                old=old,
                new=snap.status,
                filled_qty=snap.filled_qty,
                elapsed=round(self.clock.monotonic() - mon.start, 6),
                checks=mon.checks,
            )
        if mon.submitted_at is None and snap.submitted_at is not None:
            mon.submitted_at = snap.submitted_at
        if mon.client_order_id is None:
            mon.client_order_id = snap.client_order_id
        mon.last = snap
        return True

    def _freshest(self, mon: _Monitor, check: FinalCheck) -> FinalCheck:
        """``check``, or what was already known in its place if it read an older version."""
        if check.snapshot is None or check.snapshot.status is None:
            return check
        if self._observe(mon, check.snapshot) or mon.last is None:
            return check
        known = mon.last
        verification = self.verifier.verify_fill(known, submitted_at=mon.submitted_at)
        settled = (verification.is_filled and known.filled_avg_price is not None) or (
            known.is_terminal and not verification.is_filled
        )
        return FinalCheck(known, verification, settled, check.cancel, check.price_source)

    def _fill_missing_price(self, snap: OrderSnapshot, mon: _Monitor) -> bool:
        return snap.filled_avg_price is None and (snap.status == "filled" or snap.quantity_complete)

    def _decide(self, mon: _Monitor, snap: OrderSnapshot) -> FillResult | None:
        verification = self.verifier.verify_fill(snap, submitted_at=mon.submitted_at)
        if verification.is_filled:
            if snap.filled_avg_price is not None:
                return self._result(mon, snap, FillStatus.FILLED, "polling", verification)
            log_event(
                self._logger,
                logging.INFO,
                "fill_price_pending",
                order_id=mon.order_id,
                status=snap.status,
                filled_qty=snap.filled_qty,
            )
            return None
        if snap.status == "rejected":
            return self._result(mon, snap, FillStatus.REJECTED, "polling", verification)
        if snap.status in _ENDED_BY_OTHERS:
            if mon.cancel_sent and snap.filled_qty > 0:
                # Our own remainder cancel settled: the shares that filled are the answer.
                return self._result(
                    mon, snap, FillStatus.PARTIALLY_FILLED, "partial_fill_cancel", verification
                )
            return self._result(mon, snap, _ENDED_BY_OTHERS[snap.status], "polling", verification)
        if snap.is_terminal:  # replaced, done_for_day: no further fills on this order id
            return self._result(
                mon,
                snap,
                FillStatus.CANCELED,
                "polling",
                verification,
                error=f"order ended as {snap.status}",
            )
        if (
            snap.filled_qty > 0
            and self.config.partial_fill_policy == "cancel_remainder"
            and not mon.cancel_sent
        ):
            return self._cancel_remainder(mon, snap)
        return None

    def _cancel_remainder(self, mon: _Monitor, snap: OrderSnapshot) -> FillResult | None:
        log_event(
            self._logger,
            logging.WARNING,
            "partial_fill_detected",
            order_id=mon.order_id,
            filled_qty=snap.filled_qty,
            requested_qty=snap.qty,
            fill_price=snap.filled_avg_price,
            action="cancel_remainder",
        )
        budget = min(
            self.clock.monotonic() + self.config.final_verification_seconds, mon.final_deadline
        )
        check = self.final.verify_after_cancel_attempt(
            mon.order_id,
            deadline=budget,
            stats=mon.stats,
            submitted_at=mon.submitted_at,
            grace_until=mon.grace(),
        )
        if check.cancel is not None and check.cancel.kind == "accepted":
            mon.cancel_sent = True  # accepted: don't resend, but keep reading to the end
        check = self._freshest(mon, check)
        if not check.settled:
            log_event(
                self._logger,
                logging.WARNING,
                "partial_cancel_unsettled",
                order_id=mon.order_id,
                cancel=check.cancel.kind if check.cancel else None,
            )
            return None  # keep monitoring; the cancel may be resent if it failed
        return self._from_final(mon, check, "partial_fill_cancel")

    # ------------------------------------------------------------------ deadline
    def _handle_timeout(self, mon: _Monitor) -> FillResult:
        log_event(
            self._logger,
            logging.INFO,
            "deadline_reached",
            order_id=mon.order_id,
            checks=mon.checks,
            last_status=mon.last.status if mon.last else None,
        )
        check = self.final.perform_final_check(
            mon.order_id,
            deadline=mon.final_deadline,
            stats=mon.stats,
            submitted_at=mon.submitted_at,
            grace_until=mon.grace(),
        )
        check = self._freshest(mon, check)
        if check.filled or check.settled:
            return self._from_final(mon, check, "final_check")
        if check.verification is not None and check.verification.is_filled:
            # The broker says filled but never showed the price within the budget.
            return self._from_final(mon, check, "final_check")
        if not self.config.cancel_on_timeout:
            if check.snapshot is None:
                return self._unknown(mon, "final state could not be read")
            status = (
                FillStatus.PARTIALLY_FILLED if check.snapshot.filled_qty > 0 else FillStatus.TIMEOUT
            )
            return self._result(
                mon,
                check.snapshot,
                status,
                "final_check",
                check.verification,
                error=f"still {check.snapshot.status} at the deadline (not canceled)",
            )
        post = self.final.verify_after_cancel_attempt(
            mon.order_id,
            deadline=mon.final_deadline,
            stats=mon.stats,
            submitted_at=mon.submitted_at,
            grace_until=mon.grace(),
        )
        post = self._freshest(mon, post)
        return self._from_final(mon, post, "cancel_verification")

    def _from_final(self, mon: _Monitor, check: FinalCheck, method: str) -> FillResult:
        snap = check.snapshot
        if snap is None:
            return self._unknown(mon, "the broker's final state could not be read in time")
        verification = check.verification
        if verification is not None and verification.is_filled:
            if check.price_source == "activities":
                method = f"{method}+activities"
            if snap.filled_avg_price is None:
                price = self.gateway.fill_price_from_activities(
                    mon.order_id, snap.filled_qty, deadline=mon.final_deadline, stats=mon.stats
                )
                if price is None:
                    return self._result(
                        mon,
                        snap,
                        FillStatus.UNKNOWN,
                        method,
                        verification,
                        error="broker reports the order filled but its fill price is not available yet",
                    )
                snap = _with_price(snap, price)
                method = f"{method}+activities"
            return self._result(mon, snap, FillStatus.FILLED, method, verification)
        if not check.settled:
            return self._result(
                mon,
                snap,
                FillStatus.UNKNOWN,
                method,
                verification,
                error=f"order still {snap.status} when the verification budget ran out",
            )
        status = snap.status or ""
        if status == "rejected":
            return self._result(mon, snap, FillStatus.REJECTED, method, verification)
        if status == "expired" and check.cancel is None:
            return self._result(mon, snap, FillStatus.EXPIRED, method, verification)
        if snap.filled_qty > 0:
            return self._result(mon, snap, FillStatus.PARTIALLY_FILLED, method, verification)
        if check.cancel is not None:
            return self._result(mon, snap, FillStatus.TIMEOUT, method, verification)
        return self._result(
            mon, snap, _ENDED_BY_OTHERS.get(status, FillStatus.CANCELED), method, verification
        )

    # ------------------------------------------------------------------ results
    def _unknown(self, mon: _Monitor, reason: str) -> FillResult:
        snap = mon.last or OrderSnapshot(order_id=mon.order_id)
        return self._result(mon, snap, FillStatus.UNKNOWN, "final_check", None, error=reason)

    def _result(
        self,
        mon: _Monitor,
        snap: OrderSnapshot,
        status: FillStatus,
        method: str,
        verification: FillVerification | None,
        *,
        error: str | None = None,
    ) -> FillResult:
        fill_price = snap.filled_avg_price if snap.filled_qty > 0 else None
        slippage = None
        exceeded = False
        if mon.expected_price is not None and fill_price is not None and snap.side:
            slippage = compute_slippage_pct(snap.side, mon.expected_price, fill_price)
            exceeded = slippage_exceeded(slippage, self.config.slippage_threshold_pct)
            log_event(
                self._logger,
                logging.WARNING if exceeded else logging.INFO,
                "slippage_exceeded" if exceeded else "slippage",
                order_id=mon.order_id,
                side=snap.side,
                expected_price=mon.expected_price,
                fill_price=fill_price,
                slippage_pct=slippage,
                threshold_pct=self.config.slippage_threshold_pct,
            )
        result = FillResult(
            filled=status is FillStatus.FILLED,
            status=status,
            order_id=mon.order_id,
            client_order_id=snap.client_order_id or mon.client_order_id,
            symbol=snap.symbol,
            side=snap.side,
            requested_qty=snap.qty,
            filled_qty=snap.filled_qty,
            fill_price=fill_price,
            filled_at=snap.filled_at,
            detection_method=method,
            verification=verification,
            elapsed_seconds=self.clock.monotonic() - mon.start,
            api_calls=mon.stats.calls,
            retries=mon.stats.retries,
            slippage_pct=slippage,
            slippage_exceeded=exceeded,
            poll_intervals=tuple(mon.intervals),
            error=error,
            order_open=status is FillStatus.UNKNOWN or snap.is_open,
        )
        if status is FillStatus.FILLED:
            log_event(
                self._logger,
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
            )
        return result


def _with_price(snap: OrderSnapshot, price: Decimal) -> OrderSnapshot:
    from dataclasses import replace

    return replace(snap, filled_avg_price=price)
