"""One order's fill detection as a state machine without I/O (in the manner of h11 and wsproto).

:class:`MonitorMachine` is given what happened (a view of the order, a failed read, a cancel's
answer, a price from the FILL activities, a timer) and the time, and returns what to do next:
:class:`Read`, :class:`Cancel`, :class:`FetchPrice`, :class:`Follow` or :class:`Finish`; after
every call :attr:`MonitorMachine.wake_at` says when it wants a timer. A driver
(:mod:`fillguard.driver`) does the requests and feeds the answers back, for any number of
machines at once, so no thread is held per order.

The rules are the engine's: a complete, priced fill ends it at once (from the stream or a
read); so do a rejection and a cancel or expiry by someone else (a partial fill then reported as
such); a partial fill is handled by policy; ``done_for_day`` is not an end; a replaced order is
followed to its replacement. At the deadline a final check is made and, if the order is still
open, it is canceled and read until the broker's final word; when that cannot be learned in
time the answer is ``UNKNOWN``, never a guess.
"""

from __future__ import annotations

import logging
import math
from decimal import Decimal
from typing import Literal

from fillguard.config import FillDetectionConfig
from fillguard.gateway import CancelOutcome
from fillguard.lifecycle import OrderView
from fillguard.logs import log_event
from fillguard.monitor_actions import Action, Cancel, FetchPrice, Finish, Follow, Read
from fillguard.monitoring import (
    Monitor,
    build_result,
    log_final_check,
    log_post_cancel,
    note_transition,
)
from fillguard.observer import NULL_OBSERVER, Observer
from fillguard.polling import poll_interval
from fillguard.results import FillResult, FillStatus, FillVerification, Refusal
from fillguard.snapshot import OrderSnapshot
from fillguard.verify import MultiMethodVerifier

__all__ = ["Action", "Cancel", "FetchPrice", "Finish", "Follow", "MonitorMachine", "Read"]

_logger = logging.getLogger("fillguard.engine")
_ENDED_BY_OTHERS = {"canceled": FillStatus.CANCELED, "expired": FillStatus.EXPIRED}
# Live statuses in which a cancel that failed to arrive is worth sending again.
_RESEND = frozenset({"accepted", "pending_new", "new", "partially_filled", "done_for_day"})
_MAX_CHAIN = 20

Phase = Literal["watch", "partial_cancel", "final", "cancel_verify", "done"]


class MonitorMachine:
    """The fill detection of one order, driven by observations and time."""

    def __init__(
        self,
        mon: Monitor,
        config: FillDetectionConfig,
        *,
        stream_live: bool = False,
        stream_silence_seconds: float = 2.0,
        uses_stream: bool = True,
        verifier: MultiMethodVerifier | None = None,
        observer: Observer = NULL_OBSERVER,
        logger: logging.Logger | None = None,
    ) -> None:
        self.mon = mon
        self.config = config
        self.verifier = verifier or MultiMethodVerifier()
        self.observer = observer
        self._logger = logger or _logger
        self.phase: Phase = "watch"
        #: Whether stream events may decide (False: REST only, even on a shared live stream).
        self.uses_stream = uses_stream
        self.stream_live = stream_live and uses_stream
        self.stream_silence_seconds = stream_silence_seconds
        self.result: FillResult | None = None
        self.iteration = 0
        self.next_read_at = mon.start + (stream_silence_seconds if stream_live else 0.0)
        self.reading = False
        self.cancel_pending = False
        self.price_pending = False
        self.price_asked = False
        self.unpriced = 0
        self.cancel: CancelOutcome | None = None
        self.cancels = 0
        self.poked = False
        self.final_logged = False
        self.verify_until = math.inf
        self.price_source = "order"
        self.view: OrderView | None = None
        self._now = mon.start

    # ------------------------------------------------------------------ state
    @property
    def done(self) -> bool:
        """Whether monitoring is over (``result`` is set)."""
        return self.result is not None

    @property
    def order_id(self) -> str:
        """The order being watched now (the last replacement)."""
        return self.mon.current_id

    @property
    def wake_at(self) -> float | None:
        """When the machine wants :meth:`on_timer` (None: only when something happens)."""
        if self.done:
            return None
        times: list[float] = []
        if not (self.reading or self.cancel_pending or self.price_pending):
            times.append(self.next_read_at)
        if self.phase == "watch":
            times.append(self.mon.deadline)
        elif self.phase in ("final", "cancel_verify"):
            times.append(self.mon.final_deadline)
        elif self.phase == "partial_cancel":
            times.append(self.verify_until)
        return min(times) if times else None

    # ------------------------------------------------------------------ inputs
    def start(self, now: float) -> list[Action]:
        """Begin: read at once unless a live stream is expected to speak first."""
        self._now = now
        return self.on_timer(now)

    def on_stream(self, live: bool, now: float) -> list[Action]:
        """The stream went up or down; down means reading by REST at once."""
        self._now = now
        self.stream_live = live and self.uses_stream
        if not live:
            self.next_read_at = min(self.next_read_at, now)
        return self.on_timer(now)

    def poke(self, now: float) -> list[Action]:
        """Read soon (``engine.notify``: something may have happened)."""
        self._now = now
        self.poked = True
        self.next_read_at = min(self.next_read_at, now)
        return self.on_timer(now)

    def on_timer(self, now: float) -> list[Action]:
        """Time passed: move phases at deadlines and read when a read is due."""
        self._now = now
        if self.done:
            return []
        mon = self.mon
        if self.phase == "watch" and now >= mon.deadline:
            log_event(
                self._logger,
                logging.INFO,
                "deadline_reached",
                order_id=mon.order_id,
                checks=mon.checks,
                last_status=mon.last.status if mon.last else None,
            )
            self.phase = "final"
            self.next_read_at = now
        if self.phase == "partial_cancel" and now >= self.verify_until:
            self._log_post_cancel(self.view.snapshot if self.view else None, settled=False)
            log_event(
                self._logger,
                logging.WARNING,
                "partial_cancel_unsettled",
                order_id=self.order_id,
                cancel=self.cancel.kind if self.cancel else None,
            )
            self.phase = "watch"  # keep monitoring; the cancel may be resent if it failed
        if self.phase in ("final", "cancel_verify") and now >= mon.final_deadline:
            return self._give_up()
        if self.reading or self.cancel_pending or self.price_pending or now < self.next_read_at:
            return []
        self.reading = True
        return [Read(self.order_id, self.phase, mon.grace(), self._budget_end())]

    def on_view(
        self,
        view: OrderView,
        now: float,
        *,
        changed: bool,
        half_updated: bool = False,
        source: str = "rest",
    ) -> list[Action]:
        """What is known about the order now (after a read, or a stream event)."""
        self._now = now
        if self.done:
            return []
        was_read = source == "rest" and self.reading
        if was_read:
            self.reading = False
            self.mon.checks += 1
            self.mon.degraded = False
            self.mon.refusal = None
        self.view = view
        snap = view.snapshot
        if changed and snap.status is not None:
            self._note_transition(snap, now)
        actions: list[Action] = []
        if snap.status is not None:
            actions = self._decide(snap, now, source)
        if self.done or self.phase == "done":
            return actions
        if was_read or changed:
            self._schedule_read(now, soon=half_updated or self._wants_soon(snap))
        return actions + self.on_timer(now)

    def on_read_failed(self, refusal: Refusal | None, reason: str, now: float) -> list[Action]:
        """A read said nothing (refused, failing, unreadable)."""
        self._now = now
        if self.done:
            return []
        self.reading = False
        if refusal is not None:
            self.mon.refusal = refusal
        if not self.mon.degraded:
            log_event(
                self._logger,
                logging.ERROR,
                "monitoring_degraded",
                order_id=self.order_id,
                reason=reason,
                next_interval=self.config.max_poll_interval,
            )
        self.mon.degraded = True
        if self.phase == "final" and self.config.cancel_on_timeout and not self.cancel_pending:
            # The final state could not be read: the order is likely live, so cancel it anyway
            # and read until the broker's final word.
            self._log_final(self.view.snapshot if self.view else None, settled=False)
            self.phase = "cancel_verify"
            self._schedule_read(now, soon=True)
            return [self._send_cancel()]
        self._schedule_read(now, soon=self.phase != "watch")
        return self.on_timer(now)

    def on_cancel(self, outcome: CancelOutcome, now: float) -> list[Action]:
        """The broker's answer to our cancel request."""
        self._now = now
        if self.done:
            return []
        self.cancel_pending = False
        self.cancel = outcome
        if outcome.kind == "accepted":
            self.mon.cancel_sent = True
        if self.cancels == 1:
            # Read until the broker says how it ended; with a live stream its event should
            # come first, so the read waits for it a while, but never for more than half of
            # the verification budget left: a dropped event must not cost the final word.
            wait = self.stream_silence_seconds if self.stream_live else 0.0
            wait = min(wait, max(0.0, (self.mon.final_deadline - now) / 2))
            self.next_read_at = now + wait
        return self.on_timer(now)

    def on_price(self, price: Decimal | None, now: float) -> list[Action]:
        """The price from the FILL activities (None: they do not add up yet)."""
        self._now = now
        if self.done:
            return []
        self.price_pending = False
        view = self.view
        if price is not None and view is not None:
            from dataclasses import replace

            priced = replace(view.snapshot, filled_avg_price=price)
            self.price_source = "activities"
            method = {"watch": "polling", "partial_cancel": "partial_fill_cancel"}.get(
                self.phase, "final_check" if self.phase == "final" else "cancel_verification"
            )
            verification = self.verifier.verify_fill(priced, submitted_at=self.mon.submitted_at)
            return [self._finish(priced, FillStatus.FILLED, f"{method}+activities", verification)]
        if self.phase in ("final", "cancel_verify") and now >= self.mon.final_deadline:
            return self._give_up()
        return self.on_timer(now)

    # ------------------------------------------------------------------ decisions
    def _decide(self, snap: OrderSnapshot, now: float, source: str) -> list[Action]:
        mon = self.mon
        if snap.status == "replaced":
            return self._follow(snap, now)
        verification = self.verifier.verify_fill(snap, submitted_at=mon.submitted_at)
        method = self._method(source)
        if verification.is_filled:
            if snap.filled_avg_price is not None:
                return [self._finish(snap, FillStatus.FILLED, method, verification)]
            log_event(
                self._logger,
                logging.INFO,
                "fill_price_pending",
                order_id=self.order_id,
                status=snap.status,
                filled_qty=snap.filled_qty,
            )
            self.unpriced += 1
            # Before the deadline the order's own price is awaited; after it, the FILL
            # activities are asked once the price is still missing on a second look.
            late = self.phase in ("final", "cancel_verify", "partial_cancel")
            if late and self.unpriced >= 2 and not self.price_asked:
                self.price_asked = True
                self.price_pending = True
                return [FetchPrice(self.order_id, snap.filled_qty, self._budget_end())]
            return []
        filled = self._chain_filled(snap)
        if snap.is_terminal:
            if snap.status == "rejected" and filled <= 0:
                return [self._finish(snap, FillStatus.REJECTED, method, verification)]
            if filled > 0:
                return [self._finish(snap, FillStatus.PARTIALLY_FILLED, method, verification)]
            if self.phase == "cancel_verify" or (self.phase == "final" and self.cancel):
                return [self._finish(snap, FillStatus.TIMEOUT, method, verification)]
            if snap.status == "expired" and self.cancel is None:
                return [self._finish(snap, FillStatus.EXPIRED, method, verification)]
            return [
                self._finish(
                    snap,
                    _ENDED_BY_OTHERS.get(snap.status or "", FillStatus.CANCELED),
                    method,
                    verification,
                )
            ]
        # Still live (new, partially filled, done for the day, pending ...).
        if self.phase == "final":
            return self._at_deadline(snap, verification, now)
        if self.phase == "cancel_verify":
            return self._maybe_resend(snap)
        if (
            self.phase == "watch"
            and snap.filled_qty > 0
            and self.config.partial_fill_policy == "cancel_remainder"
            and not mon.cancel_sent
            and not self.cancel_pending
        ):
            log_event(
                self._logger,
                logging.WARNING,
                "partial_fill_detected",
                order_id=self.order_id,
                filled_qty=snap.filled_qty,
                requested_qty=snap.qty,
                fill_price=snap.filled_avg_price,
                action="cancel_remainder",
            )
            self.phase = "partial_cancel"
            self.verify_until = min(
                now + self.config.final_verification_seconds, mon.final_deadline
            )
            return [self._send_cancel()]
        if self.phase == "partial_cancel":
            return self._maybe_resend(snap)
        return []

    def _at_deadline(
        self, snap: OrderSnapshot, verification: FillVerification, now: float
    ) -> list[Action]:
        self._log_final(snap, settled=False)
        if not self.config.cancel_on_timeout:
            status = (
                FillStatus.PARTIALLY_FILLED if self._chain_filled(snap) > 0 else FillStatus.TIMEOUT
            )
            return [
                self._finish(
                    snap,
                    status,
                    "final_check",
                    verification,
                    error=f"still {snap.status} at the deadline (not canceled)",
                )
            ]
        self.phase = "cancel_verify"
        return [self._send_cancel()]

    def _maybe_resend(self, snap: OrderSnapshot) -> list[Action]:
        if (
            self.cancel is not None
            and self.cancel.kind == "failed"
            and not self.cancel_pending
            and snap.status in _RESEND
        ):
            return [self._send_cancel()]  # the cancel never got through: send it again
        return []

    def _send_cancel(self) -> Cancel:
        self.cancel_pending = True
        self.cancels += 1
        return Cancel(self.order_id, self._budget_end())  # the gateway logs the request

    def _log_final(self, snap: OrderSnapshot | None, *, settled: bool) -> None:
        """The final check's verdict, once per deadline (also when no read could be made)."""
        if not self.final_logged:
            self.final_logged = True
            log_final_check(self._logger, self.order_id, snap, settled=settled)

    def _log_post_cancel(self, snap: OrderSnapshot | None, *, settled: bool) -> None:
        log_post_cancel(self._logger, self.order_id, self.cancel, snap, settled=settled)

    def _follow(self, snap: OrderSnapshot, now: float) -> list[Action]:
        new_id = snap.replaced_by
        if not new_id or len(self.mon.links) >= _MAX_CHAIN or new_id == self.mon.current_id:
            log_event(self._logger, logging.WARNING, "replacement_unknown", order_id=self.order_id)
            return []
        old_id = self.mon.current_id
        log_event(
            self._logger,
            logging.WARNING,
            "order_replaced",
            order_id=old_id,
            replaced_by=new_id,
            filled_qty=snap.filled_qty,
        )
        self.mon.follow(snap, new_id)
        self.view = None
        self.unpriced = 0
        self.price_asked = False
        self.cancel = None
        if self.phase == "cancel_verify":
            self.phase = "final"  # our cancel met a replace: check the replacement now
        elif self.phase == "partial_cancel":
            self.phase = "watch"
        self.next_read_at = now
        return [Follow(old_id, new_id)]

    # ------------------------------------------------------------------ helpers
    def _method(self, source: str) -> str:
        if self.phase == "final":
            return "final_check"
        if self.phase == "cancel_verify":
            return "cancel_verification"
        if self.phase == "partial_cancel" or self.mon.cancel_sent:
            return "partial_fill_cancel"
        return "stream" if source == "stream" else "polling"

    def _budget_end(self) -> float:
        return self.mon.deadline if self.phase == "watch" else self.mon.final_deadline

    def _chain_filled(self, snap: OrderSnapshot) -> Decimal:
        return snap.filled_qty + sum((link.filled_qty for link in self.mon.links), Decimal(0))

    def _wants_soon(self, snap: OrderSnapshot) -> bool:
        missing_price = snap.filled_avg_price is None and (
            snap.status == "filled" or snap.quantity_complete
        )
        return missing_price or self.phase in ("final", "cancel_verify", "partial_cancel")

    def _schedule_read(self, now: float, *, soon: bool) -> None:
        config = self.config
        if self.poked:
            self.poked = False
            self.next_read_at = now  # woken: read at once, the schedule resumes after
            return
        if soon:
            interval = config.initial_poll_interval
        elif self.mon.degraded:
            interval = config.max_poll_interval
        elif self.stream_live and self.phase == "watch":
            interval = max(self.stream_silence_seconds, poll_interval(self.iteration, config))
        else:
            interval = poll_interval(self.iteration, config)
        wait = min(interval, max(0.0, self._phase_end() - now))
        if self.phase == "watch" and wait > 0:
            # The poll schedule of the watch (reads after the deadline keep their own pace).
            self.mon.intervals.append(wait)
            log_event(
                self._logger,
                logging.DEBUG,
                "poll_interval",
                order_id=self.mon.order_id,
                iteration=self.iteration,
                interval=wait,
                degraded=self.mon.degraded,
            )
        self.iteration += 1
        self.next_read_at = now + wait

    def _phase_end(self) -> float:
        if self.phase == "watch":
            return self.mon.deadline
        if self.phase == "partial_cancel":
            return self.verify_until
        return self.mon.final_deadline

    def _note_transition(self, snap: OrderSnapshot, now: float) -> None:
        note_transition(self._logger, self.mon, snap, now)

    def _give_up(self) -> list[Action]:
        snap = self.view.snapshot if self.view is not None else None
        if self.phase == "final":
            self._log_final(snap, settled=False)
        if snap is None or snap.status is None:
            return [self._unknown("the broker's final state could not be read in time")]
        verification = self.verifier.verify_fill(snap, submitted_at=self.mon.submitted_at)
        if verification.is_filled:
            return [
                self._finish(
                    snap,
                    FillStatus.UNKNOWN,
                    self._method("rest"),
                    verification,
                    error="broker reports the order filled but its fill price is not available yet",
                )
            ]
        return [
            self._finish(
                snap,
                FillStatus.UNKNOWN,
                self._method("rest"),
                verification,
                error=f"order still {snap.status} when the verification budget ran out",
            )
        ]

    def _unknown(self, reason: str) -> Finish:
        snap = self.mon.last or OrderSnapshot(order_id=self.mon.current_id)
        return self._finish(snap, FillStatus.UNKNOWN, "final_check", None, error=reason)

    def _finish(
        self,
        snap: OrderSnapshot,
        status: FillStatus,
        method: str,
        verification: FillVerification | None,
        *,
        error: str | None = None,
    ) -> Finish:
        settled = status is not FillStatus.UNKNOWN
        if self.phase == "final":
            self._log_final(snap, settled=settled)
        elif self.phase in ("cancel_verify", "partial_cancel"):
            self._log_post_cancel(snap, settled=settled)
        self.phase = "done"
        self.result = build_result(
            self.mon,
            snap,
            status,
            method,
            verification,
            config=self.config,
            now=self._now,
            logger=self._logger,
            observer=self.observer,
            error=error,
        )
        return Finish(self.result)
