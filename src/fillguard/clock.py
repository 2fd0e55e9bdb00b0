"""Time as an injected dependency.

Every loop in fillguard (the monitor, retries, the simulator's broker core) reads time and
waits through a :class:`Clock`, so unit and property tests run in fake time with no real
``sleep``. :class:`SystemClock` is the production clock; :class:`FakeClock` stands still until
something sleeps or waits on it, then jumps straight to the deadline (trio's ``autojump``).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "FakeClock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """Monotonic time, wall time and waiting."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""
        ...

    def now(self) -> datetime:
        """The current wall time, timezone-aware UTC."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block for ``seconds`` (no-op for zero or less)."""
        ...

    def wait(self, event: threading.Event, timeout: float) -> bool:
        """Block until ``event`` is set or ``timeout`` passes; return whether it is set.

        This is the per-order wake-up: an event source (the trade_updates stream) sets the
        event to end a monitor's wait early.
        """
        ...


class SystemClock:
    """The real clock: ``time.monotonic``, UTC wall time, real sleeping."""

    def monotonic(self) -> float:
        """Seconds from ``time.monotonic``."""
        return time.monotonic()

    def now(self) -> datetime:
        """UTC wall time."""
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        """Sleep for real."""
        if seconds > 0:
            time.sleep(seconds)

    def wait(self, event: threading.Event, timeout: float) -> bool:
        """Wait on the event for real."""
        return event.wait(max(0.0, timeout))


class FakeClock:
    """A clock for tests: time moves only when code sleeps, waits or calls :meth:`advance`.

    ``sleep(s)`` returns at once with the clock ``s`` later. ``wait(event, t)`` returns at
    once if the event is set, else jumps ``t`` ahead. Wall time is ``start`` plus the
    monotonic offset, so both stay consistent. Thread-safe, but meant for one driving thread.
    """

    def __init__(self, start: datetime | None = None, *, monotonic_start: float = 1000.0) -> None:
        self._lock = threading.Lock()
        self._mono = monotonic_start
        self._mono0 = monotonic_start
        self._wall0 = start or datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
        self.slept: list[float] = []

    def monotonic(self) -> float:
        """Fake monotonic seconds."""
        with self._lock:
            return self._mono

    def now(self) -> datetime:
        """Fake UTC wall time, moving with the monotonic clock."""
        with self._lock:
            return self._wall0 + timedelta(seconds=self._mono - self._mono0)

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``."""
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0, got {seconds}")
        with self._lock:
            self._mono += seconds

    def sleep(self, seconds: float) -> None:
        """Jump ahead by ``seconds`` and record it."""
        if seconds > 0:
            self.slept.append(seconds)
            self.advance(seconds)

    def wait(self, event: threading.Event, timeout: float) -> bool:
        """Return at once if set; otherwise jump ``timeout`` ahead and report the event."""
        if event.is_set():
            return True
        self.sleep(timeout)
        return event.is_set()
