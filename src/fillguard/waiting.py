"""The one way fillguard waits: for a while, never past a deadline, woken early on demand.

Every loop that waits between broker reads (the engine, final verification, position checks,
look-ups, the legacy loop) calls :func:`pause`, so the rule "no wait runs past the caller's
deadline" lives in one place and every wait is on the injected clock.
"""

from __future__ import annotations

import threading

from fillguard.clock import Clock

__all__ = ["pause", "time_left"]


def time_left(clock: Clock, deadline: float | None) -> float:
    """Seconds until ``deadline`` (a ``clock.monotonic()`` value), or infinity without one."""
    if deadline is None:
        return float("inf")
    return deadline - clock.monotonic()


def pause(
    clock: Clock,
    seconds: float,
    *,
    deadline: float | None = None,
    wake: threading.Event | None = None,
) -> float:
    """Wait ``seconds``, cut short at ``deadline`` and when ``wake`` is set; return the wait.

    Returns how long it meant to wait (0 when the deadline has passed: nothing is waited).
    A set ``wake`` ends the wait at once and is cleared, so the next pause waits again.
    """
    wait = min(seconds, time_left(clock, deadline))
    if wait <= 0:
        return 0.0
    if wake is None:
        clock.sleep(wait)
    elif clock.wait(wake, wait):
        wake.clear()
    return wait
