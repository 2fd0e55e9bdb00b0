"""The fill detection engine: monitor one order until the broker says how it ended.

The loop reads the order with adaptive intervals and asks :class:`MultiMethodVerifier` after
every read. It ends at once on a complete, priced fill, a rejection, or a cancel or expiry by
someone else (a partial fill then reported as such). A partial fill is handled by policy
(cancel the remainder and report the true partial, or wait). ``done_for_day`` is not an end:
the order resumes next session, so it stays watched. A ``replaced`` order is followed to its
replacement (``replaced_by``) and the chain's totals are reported.

Reads that prove nothing are read again, never believed: failing or refused requests, garbage
bodies, stale versions (an older state of the order) and half-written records (``filled``
without its quantity, a quantity without its price). At the deadline,
:class:`FinalVerificationHandler` makes the last check and, if the order is still open,
cancels it and reads until the broker's final word: a fill that raced the cancel is returned
as a fill, and when the final state cannot be learned the result is ``UNKNOWN``, never a
guess of "not filled".

Once :meth:`FillDetectionEngine.monitor_order_fill` has a valid order id, it never raises:
whatever the broker does, the answer is a :class:`FillResult`.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from fillguard.broker import ENGINE_METHODS, BrokerClient
from fillguard.clock import Clock, SystemClock
from fillguard.config import FillDetectionConfig
from fillguard.errors import BrokerError, InvalidInputError, RefusedError
from fillguard.final import FinalCheck, FinalVerificationHandler, is_older_read
from fillguard.gateway import OrderGateway
from fillguard.logs import log_event
from fillguard.monitoring import Monitor, build_result
from fillguard.observer import NULL_OBSERVER, Observer
from fillguard.polling import poll_interval
from fillguard.results import FillResult, FillStatus, FillVerification, Refusal
from fillguard.retry import ErrorRecoveryManager
from fillguard.snapshot import OrderSnapshot, to_decimal
from fillguard.transport import own_transport
from fillguard.verify import MultiMethodVerifier
from fillguard.waiting import pause

__all__ = ["FillDetectionEngine", "validate_order_id"]

_logger = logging.getLogger("fillguard.engine")

_ENDED_BY_OTHERS = {"canceled": FillStatus.CANCELED, "expired": FillStatus.EXPIRED}
#: How many replacements one run follows before it stops and says UNKNOWN.
_MAX_CHAIN = 20


def validate_order_id(order_id: object) -> str:
    """``order_id`` as Alpaca's canonical UUID text, or :class:`InvalidInputError`."""
    text = str(order_id).strip() if isinstance(order_id, str | uuid.UUID) else ""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise InvalidInputError(
            "order_id", f"must be an Alpaca order id (a UUID), got {order_id!r}"
        ) from None


class FillDetectionEngine:
    """Monitors orders until they fill, fail or time out, and reports the broker's truth.

    Args:
        alpaca_client: alpaca-py's ``TradingClient`` or any object with its methods
            (``get_order_by_id``, ``cancel_order_by_id``; ``get`` for activities, optional).
        config: timing, retry and policy settings.
        clock: time source (a ``FakeClock`` in tests).
        rng: random source for retry jitter.
        observer: receives fill detection, request and retry reports (metrics).

    One engine may monitor many orders from many threads at once. A client with bad
    credentials (whitespace, control characters) or without the needed methods is refused
    here with :class:`InvalidInputError`, before any request.
    """

    def __init__(
        self,
        alpaca_client: Any,
        config: FillDetectionConfig | None = None,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        logger: logging.Logger | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.client = alpaca_client
        self.config = config or FillDetectionConfig()
        self.clock: Clock = clock or SystemClock()
        self._logger = logger or _logger
        self.observer: Observer = observer or NULL_OBSERVER
        self.broker = BrokerClient(alpaca_client, needs=ENGINE_METHODS)
        # The SDK has no request timeout and retries 429/504 itself with blocking sleeps:
        # take both over so that our policy is the only one.
        self.transport_owned = own_transport(
            alpaca_client, request_timeout=self.config.request_timeout_seconds, observer=observer
        )
        self.verifier = MultiMethodVerifier()
        self.recovery = ErrorRecoveryManager(
            self.config, clock=self.clock, rng=rng, observer=self.observer
        )
        self.gateway = OrderGateway(alpaca_client, self.recovery, self.clock, broker=self.broker)
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

        Returns within ``timeout + final_verification_seconds`` (each request is cut to the
        time left). Raises only :class:`InvalidInputError`, for bad arguments, before any
        request; from then on every outcome is a :class:`FillResult` (``UNKNOWN`` with
        ``refusal`` set when the broker refused to tell: 401, 403, a 404 that never ended).
        """
        order_id = validate_order_id(order_id)
        timeout = self.config.timeout_seconds if timeout is None else timeout
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not math.isfinite(timeout)
            or not timeout > 0
        ):
            raise InvalidInputError("timeout", f"must be > 0 seconds, got {timeout!r}")
        price = None if expected_price is None else to_decimal(expected_price)
        if expected_price is not None and (price is None or price <= 0):
            raise InvalidInputError(
                "expected_price", f"must be a positive number, got {expected_price!r}"
            )
        start = self.clock.monotonic()
        mon = Monitor(
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
        except Exception as exc:  # the last guard: an order we watch never makes us raise
            self._logger.exception("monitoring failed inside fillguard for %s", order_id)
            result = self._unknown(mon, f"internal error: {type(exc).__name__}: {exc}")
        finally:
            with self._wake_lock:
                waiting = self._wakeups.get(order_id, [])
                waiting[:] = [event for event in waiting if event is not wake]
                if not waiting:
                    self._wakeups.pop(order_id, None)
        log_event(self._logger, logging.INFO, "monitoring_finished", **result.to_log_dict())
        return result

    # ------------------------------------------------------------------ the loop
    def _run(self, mon: Monitor, wake: threading.Event) -> FillResult:
        iteration = 0
        while self.clock.monotonic() < mon.deadline:
            snap, soon = self._read(mon)
            if snap is not None:
                result = self._decide(mon, snap)
                if result is not None:
                    return result
                soon = soon or mon.last is None or self._fill_missing_price(mon.last)
            interval = (
                self.config.max_poll_interval
                if mon.degraded
                else poll_interval(iteration, self.config)
            )
            if soon:
                # A half-written record, a missing price, a new replacement: read again soon.
                interval = self.config.initial_poll_interval
            waited = pause(self.clock, interval, deadline=mon.deadline, wake=wake)
            if waited <= 0:
                break
            mon.intervals.append(waited)
            log_event(
                self._logger,
                logging.DEBUG,
                "poll_interval",
                order_id=mon.order_id,
                iteration=iteration,
                interval=waited,
                degraded=mon.degraded,
            )
            iteration += 1
        return self._handle_timeout(mon)

    def _read(self, mon: Monitor) -> tuple[OrderSnapshot | None, bool]:
        """The next read worth deciding on, and whether to read again soon."""
        try:
            snap = self.gateway.read(
                mon.current_id, deadline=mon.deadline, stats=mon.stats, grace_until=mon.grace()
            )
        except BrokerError as err:
            if isinstance(err, RefusedError):
                mon.refusal = Refusal(err.status_code, err.code, err.message)
            if not mon.degraded:
                log_event(
                    self._logger,
                    logging.ERROR,
                    "monitoring_degraded",
                    order_id=mon.current_id,
                    reason=str(err),
                    next_interval=self.config.max_poll_interval,
                )
            mon.degraded = True
            return None, False
        mon.degraded = False
        mon.checks += 1
        if snap.status is None:
            return None, False  # garbage read: says nothing; read again
        mon.refusal = None
        if snap.is_half_updated:
            log_event(
                self._logger,
                logging.INFO,
                "half_updated_read",
                order_id=mon.current_id,
                status=snap.status,
                filled_qty=snap.filled_qty,
                filled_avg_price=snap.filled_avg_price,
            )
            return None, True
        if not self._observe(mon, snap):
            return None, False  # an older version of the order: says nothing new
        return snap, False

    def _observe(self, mon: Monitor, snap: OrderSnapshot) -> bool:
        """Take ``snap`` as the latest known state; False (ignored) if it is a stale read."""
        if mon.last is not None and is_older_read(mon.last, snap):
            log_event(
                self._logger,
                logging.INFO,
                "stale_read_ignored",
                order_id=mon.current_id,
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

    def _freshest(self, mon: Monitor, check: FinalCheck) -> FinalCheck:
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

    def _fill_missing_price(self, snap: OrderSnapshot) -> bool:
        return snap.filled_avg_price is None and (snap.status == "filled" or snap.quantity_complete)

    def _follow(self, mon: Monitor, snap: OrderSnapshot) -> bool:
        """Follow a replaced order to its replacement; False if it cannot be followed."""
        if snap.status != "replaced" or not snap.replaced_by:
            return False
        if len(mon.links) >= _MAX_CHAIN or snap.replaced_by == mon.current_id:
            return False
        log_event(
            self._logger,
            logging.WARNING,
            "order_replaced",
            order_id=mon.current_id,
            replaced_by=snap.replaced_by,
            filled_qty=snap.filled_qty,
        )
        mon.follow(snap, snap.replaced_by)
        return True

    def _decide(self, mon: Monitor, snap: OrderSnapshot) -> FillResult | None:
        if snap.status == "replaced":
            if not self._follow(mon, snap):
                log_event(
                    self._logger, logging.WARNING, "replacement_unknown", order_id=mon.current_id
                )
            return None  # read the replacement (or the replaced order again) soon
        verification = self.verifier.verify_fill(snap, submitted_at=mon.submitted_at)
        if verification.is_filled:
            if snap.filled_avg_price is not None:
                return self._result(mon, snap, FillStatus.FILLED, "polling", verification)
            log_event(
                self._logger,
                logging.INFO,
                "fill_price_pending",
                order_id=mon.current_id,
                status=snap.status,
                filled_qty=snap.filled_qty,
            )
            return None
        if snap.status == "rejected":
            return self._result(mon, snap, FillStatus.REJECTED, "polling", verification)
        if snap.status in _ENDED_BY_OTHERS:
            method = "partial_fill_cancel" if mon.cancel_sent else "polling"
            if self._chain_filled(mon, snap) > 0:
                # Shares executed before the cancel or expiry: that is the answer.
                return self._result(mon, snap, FillStatus.PARTIALLY_FILLED, method, verification)
            return self._result(mon, snap, _ENDED_BY_OTHERS[snap.status], method, verification)
        if (
            snap.filled_qty > 0
            and self.config.partial_fill_policy == "cancel_remainder"
            and not mon.cancel_sent
        ):
            return self._cancel_remainder(mon, snap)
        return None  # still live (new, partially filled, done for the day, pending ...)

    @staticmethod
    def _chain_filled(mon: Monitor, snap: OrderSnapshot) -> Decimal:
        return snap.filled_qty + sum((link.filled_qty for link in mon.links), Decimal(0))

    def _cancel_remainder(self, mon: Monitor, snap: OrderSnapshot) -> FillResult | None:
        log_event(
            self._logger,
            logging.WARNING,
            "partial_fill_detected",
            order_id=mon.current_id,
            filled_qty=snap.filled_qty,
            requested_qty=snap.qty,
            fill_price=snap.filled_avg_price,
            action="cancel_remainder",
        )
        budget = min(
            self.clock.monotonic() + self.config.final_verification_seconds, mon.final_deadline
        )
        check = self.final.verify_after_cancel_attempt(
            mon.current_id,
            deadline=budget,
            stats=mon.stats,
            submitted_at=mon.submitted_at,
            grace_until=mon.grace(),
        )
        if check.cancel is not None and check.cancel.kind == "accepted":
            mon.cancel_sent = True  # accepted: don't resend, but keep reading to the end
        check = self._freshest(mon, check)
        if check.snapshot is not None and self._follow(mon, check.snapshot):
            return None  # replaced meanwhile: watch the replacement
        if not check.settled:
            log_event(
                self._logger,
                logging.WARNING,
                "partial_cancel_unsettled",
                order_id=mon.current_id,
                cancel=check.cancel.kind if check.cancel else None,
            )
            return None  # keep monitoring; the cancel may be resent if it failed
        return self._from_final(mon, check, "partial_fill_cancel")

    # ------------------------------------------------------------------ deadline
    def _handle_timeout(self, mon: Monitor) -> FillResult:
        log_event(
            self._logger,
            logging.INFO,
            "deadline_reached",
            order_id=mon.order_id,
            checks=mon.checks,
            last_status=mon.last.status if mon.last else None,
        )
        for _hop in range(_MAX_CHAIN):
            check = self.final.perform_final_check(
                mon.current_id,
                deadline=mon.final_deadline,
                stats=mon.stats,
                submitted_at=mon.submitted_at,
                grace_until=mon.grace(),
            )
            check = self._freshest(mon, check)
            if check.snapshot is not None and self._follow(mon, check.snapshot):
                continue
            if check.filled or check.settled:
                return self._from_final(mon, check, "final_check")
            if check.verification is not None and check.verification.is_filled:
                # The broker says filled but never showed the price within the budget.
                return self._from_final(mon, check, "final_check")
            if not self.config.cancel_on_timeout:
                return self._not_canceled(mon, check)
            post = self.final.verify_after_cancel_attempt(
                mon.current_id,
                deadline=mon.final_deadline,
                stats=mon.stats,
                submitted_at=mon.submitted_at,
                grace_until=mon.grace(),
            )
            post = self._freshest(mon, post)
            if post.snapshot is not None and self._follow(mon, post.snapshot):
                continue  # our cancel met a replace: the replacement is the order now
            return self._from_final(mon, post, "cancel_verification")
        return self._unknown(mon, "the order kept being replaced past the verification budget")

    def _not_canceled(self, mon: Monitor, check: FinalCheck) -> FillResult:
        snap = check.snapshot
        if snap is None:
            return self._unknown(mon, "final state could not be read")
        status = (
            FillStatus.PARTIALLY_FILLED if self._chain_filled(mon, snap) > 0 else FillStatus.TIMEOUT
        )
        return self._result(
            mon,
            snap,
            status,
            "final_check",
            check.verification,
            error=f"still {snap.status} at the deadline (not canceled)",
        )

    def _from_final(self, mon: Monitor, check: FinalCheck, method: str) -> FillResult:
        snap = check.snapshot
        if snap is None:
            return self._unknown(mon, "the broker's final state could not be read in time")
        verification = check.verification
        if verification is not None and verification.is_filled:
            if check.price_source == "activities":
                method = f"{method}+activities"
            if snap.filled_avg_price is None:
                price = self.gateway.fill_price_from_activities(
                    mon.current_id, snap.filled_qty, deadline=mon.final_deadline, stats=mon.stats
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
        filled = self._chain_filled(mon, snap)
        if status == "rejected" and filled <= 0:
            return self._result(mon, snap, FillStatus.REJECTED, method, verification)
        if filled > 0:
            return self._result(mon, snap, FillStatus.PARTIALLY_FILLED, method, verification)
        if status == "expired" and check.cancel is None:
            return self._result(mon, snap, FillStatus.EXPIRED, method, verification)
        if check.cancel is not None:
            return self._result(mon, snap, FillStatus.TIMEOUT, method, verification)
        return self._result(
            mon, snap, _ENDED_BY_OTHERS.get(status, FillStatus.CANCELED), method, verification
        )

    # ------------------------------------------------------------------ results
    def _unknown(self, mon: Monitor, reason: str) -> FillResult:
        snap = mon.last or OrderSnapshot(order_id=mon.current_id)
        return self._result(mon, snap, FillStatus.UNKNOWN, "final_check", None, error=reason)

    def _result(
        self,
        mon: Monitor,
        snap: OrderSnapshot,
        status: FillStatus,
        method: str,
        verification: FillVerification | None,
        *,
        error: str | None = None,
    ) -> FillResult:
        return build_result(
            mon,
            snap,
            status,
            method,
            verification,
            config=self.config,
            clock=self.clock,
            logger=self._logger,
            observer=self.observer,
            error=error,
        )


def _with_price(snap: OrderSnapshot, price: Decimal) -> OrderSnapshot:
    from dataclasses import replace

    return replace(snap, filled_avg_price=price)
