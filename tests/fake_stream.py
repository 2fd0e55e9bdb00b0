"""trade_updates in fake time: the broker's events reach a tracker with the stream faults applied.

The in-process simulator has no sockets, so no stream. :class:`FakeTimeStream` plays the one
connection of the account on the tracker's own driver: every broker event is delivered as the
real client would (the wire message through :func:`fillguard.stream_parse.parse_message`), with
the profile's stream knobs drawn per event as the simulator's hub draws them. A drop loses the
event; a duplicate sends it twice; a delay sends it ``stream_delay_seconds`` later (so events
reorder); a disconnect drops the connection after the event and reconnects a second later with
a gap signal; a gap loses the event and everything for ``stream_gap_seconds``, then reconnects;
a silence keeps the connection "up" but loses every event for ``stream_silence_seconds``, until
the client's watchdog reconnects. A timer on the driver lets the broker apply what is due, so
events come in fake time even when nobody sends a request.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

from fillguard.lifecycle import Observation
from fillguard.sim.core import Broker, TradeEventRecord
from fillguard.stream_parse import TradeEvent, parse_message
from fillguard.tracker import OrderTracker

__all__ = ["FakeTimeStream"]

#: How often (fake seconds) the broker is let apply what is due while a caller waits.
PUMP_SECONDS = 0.02
#: The client's reconnect backoff after a drop, and its silence watchdog.
RECONNECT_SECONDS = 1.0


class FakeTimeStream:
    """One fake trade_updates connection between ``broker`` and ``tracker`` (same fake clock)."""

    def __init__(self, broker: Broker, tracker: OrderTracker) -> None:
        self.broker = broker
        self.tracker = tracker
        self.driver = tracker.driver
        self.clock = tracker.clock
        self.up = True
        self.lost_until = 0.0
        self.delivered = 0
        self.lost = 0
        self.reconnects = 0
        self._unsubscribe = broker.subscribe(self._on_record)
        tracker.on_stream_state(True)
        self.driver.call_at(self.clock.monotonic(), self._pump)

    def close(self) -> None:
        """Stop delivering (the tracker sees the stream go down)."""
        self._unsubscribe()
        self.tracker.on_stream_state(False)

    # ------------------------------------------------------------------ the driver's side
    def _pump(self, now: float) -> None:
        self.broker.advance()
        self.driver.call_at(now + PUMP_SECONDS, self._pump)

    def _on_record(self, record: TradeEventRecord) -> None:
        # Called under the broker's lock from the one thread of a fake-time test.
        faults = self.broker.faults
        rng = self.broker.rng
        drop = rng.chance("stream_drop", faults.stream_drop_rate)
        duplicate = rng.chance("stream_duplicate", faults.stream_duplicate_rate)
        delay = rng.chance("stream_delay", faults.stream_delay_rate)
        disconnect = rng.chance("stream_disconnect", faults.stream_disconnect_rate)
        gap = rng.chance("stream_gap", faults.stream_gap_rate)
        silence = rng.chance("stream_silence", faults.stream_silence_rate)
        now = self.clock.monotonic()
        if not self.up or now < self.lost_until:
            self.lost += 1
            return
        if silence:
            # Open but mute: the watchdog notices after the bound and reconnects.
            self.lost += 1
            self.lost_until = now + faults.stream_silence_seconds
            self._drop_at(now + min(faults.stream_silence_seconds, RECONNECT_SECONDS * 2), 0.0)
            return
        if gap:
            self.lost += 1
            self._drop_at(now, faults.stream_gap_seconds)
            return
        if drop:
            self.lost += 1
        else:
            copies = 2 if duplicate else 1
            when = now + (faults.stream_delay_seconds if delay else 0.0)
            for _ in range(copies):
                self.driver.call_at(when, functools.partial(self._deliver, record.message()))
        if disconnect:
            self._drop_at(now, 0.0)

    def _deliver(self, message: dict[str, Any], now: float) -> None:
        if not self.up:
            self.lost += 1
            return
        parsed = parse_message(message, now)
        if not isinstance(parsed, TradeEvent):
            return
        self.delivered += 1
        self.tracker.on_stream_event(
            Observation(
                snapshot=parsed.order,
                source="stream",
                at=now,
                event=parsed.event,
                execution_id=parsed.execution_id,
                execution_qty=parsed.qty,
                position_qty=parsed.position_qty,
                event_time=parsed.timestamp,
            )
        )

    def _drop_at(self, when: float, held_seconds: float) -> None:
        def drop(now: float) -> None:
            if not self.up:
                return
            self.up = False
            self.tracker.on_stream_state(False)
            since = datetime.now(UTC)
            self.driver.call_at(
                now + max(held_seconds, RECONNECT_SECONDS), functools.partial(self._back, since)
            )

        self.driver.call_at(when, drop)

    def _back(self, since: datetime, _now: float) -> None:
        self.up = True
        self.lost_until = 0.0
        self.reconnects += 1
        self.tracker.on_stream_state(True)
        self.tracker.on_gap(since)
