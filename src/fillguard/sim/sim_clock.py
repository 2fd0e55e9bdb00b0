"""The simulator's clock: real, accelerated, fixed, or the tests' "always open" market.

``--clock`` values (``fillguard sim``, ``SimServer(clock=...)``, ``run_simulator(clock=...)``):

- ``open``: real time, and the market never closes (the default of ``run_simulator`` and the
  pytest helpers, so tests trade at any hour);
- ``real``: real New York time with sessions (the default of ``fillguard sim``);
- ``accelerated:N`` or ``accelerated:N@ISO``: time runs N times faster, from now or from ISO,
  so a bot goes through a close and an open in seconds (latencies and price ticks speed up too);
- ``fixed:ISO``: the wall clock stands still at ISO (the session never changes); orders still
  route and fill on real monotonic time.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = ["ClockSpec", "ScaledClock", "parse_clock"]


@dataclass(frozen=True, slots=True)
class ClockSpec:
    """A parsed ``--clock`` value: whether sessions apply, the speed and the start."""

    text: str
    market_hours: bool
    rate: float = 1.0  # broker seconds per real second (0: the wall clock stands still)
    start: datetime | None = None  # wall time at start (None: now)


def _iso(text: str, what: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{what}: {text!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{what}: {text!r} needs a UTC offset (e.g. -05:00 or Z)")
    return parsed.astimezone(UTC)


def parse_clock(text: str) -> ClockSpec:
    """Parse ``open | real | accelerated:N[@ISO] | fixed:ISO``; ValueError names what is wrong."""
    value = text.strip()
    if value in ("open", "real"):
        return ClockSpec(value, market_hours=value == "real")
    if value.startswith("accelerated:"):
        rest = value.removeprefix("accelerated:")
        factor_s, _, start_s = rest.partition("@")
        try:
            factor = float(factor_s)
        except ValueError:
            raise ValueError(f"accelerated: {factor_s!r} is not a number") from None
        if not 0 < factor <= 100_000:
            raise ValueError("accelerated: the factor must be > 0 and <= 100000")
        start = _iso(start_s, "accelerated") if start_s else None
        return ClockSpec(value, market_hours=True, rate=factor, start=start)
    if value.startswith("fixed:"):
        return ClockSpec(
            value, market_hours=True, rate=0.0, start=_iso(value.removeprefix("fixed:"), "fixed")
        )
    raise ValueError(f"unknown clock {text!r}: use open, real, accelerated:N[@ISO] or fixed:ISO")


class ScaledClock:
    """A :class:`~fillguard.clock.Clock` running ``rate`` times real time from ``start``.

    ``rate=0`` freezes the wall clock at ``start``; monotonic time then runs at real speed, so
    the broker's latencies still pass. ``rate`` is read by the broker to turn a wall instant
    (the next open or close) into its own time.
    """

    def __init__(self, rate: float = 1.0, start: datetime | None = None) -> None:
        self.rate = rate
        self._real0 = time.monotonic()
        self._wall0 = start or datetime.now(UTC)

    def monotonic(self) -> float:
        """Broker seconds: real seconds times the rate (real seconds when frozen)."""
        elapsed = time.monotonic() - self._real0
        return self._real0 + elapsed * (self.rate or 1.0)

    def now(self) -> datetime:
        """Wall time: the start plus scaled elapsed time (the start itself when frozen)."""
        return self.wall_at(self.monotonic())

    def wall_at(self, mono: float) -> datetime:
        """The wall time at monotonic time ``mono`` (exact: one function of the other)."""
        if self.rate == 0:
            return self._wall0
        return self._wall0 + timedelta(seconds=mono - self._real0)

    def mono_at(self, wall: datetime) -> float | None:
        """The monotonic time at wall time ``wall`` (None when the wall clock stands still)."""
        if self.rate == 0:
            return None
        return self._real0 + (wall - self._wall0).total_seconds()

    def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of this clock."""
        if seconds > 0:
            time.sleep(seconds / (self.rate or 1.0))

    def wait(self, event: threading.Event, timeout: float) -> bool:
        """Wait on ``event`` for ``timeout`` seconds of this clock."""
        return event.wait(max(0.0, timeout / (self.rate or 1.0)))
