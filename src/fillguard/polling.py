"""Adaptive polling: start fast, slow down linearly, never slower than the cap.

Most market orders fill within a second, so the first reads come quickly; an order that rests
on the book gets polled less often, saving API calls against the 200/minute rate limit.
"""

from __future__ import annotations

from collections.abc import Iterator

from fillguard.config import FillDetectionConfig

__all__ = ["PollSchedule", "poll_interval"]


def poll_interval(iteration: int, config: FillDetectionConfig) -> float:
    """The wait after read number ``iteration`` (0-based):
    ``min(initial + increase * iteration, max)``.
    """
    step = max(iteration, 0)
    interval = config.initial_poll_interval + config.poll_interval_increase * step
    return min(interval, config.max_poll_interval)


class PollSchedule(Iterator[float]):
    """An endless iterator of poll intervals, remembering those it has handed out."""

    def __init__(self, config: FillDetectionConfig) -> None:
        self._config = config
        self._iteration = 0
        self.history: list[float] = []

    @property
    def iteration(self) -> int:
        """How many intervals have been handed out."""
        return self._iteration

    def __iter__(self) -> PollSchedule:
        return self

    def __next__(self) -> float:
        """The next interval."""
        interval = poll_interval(self._iteration, self._config)
        self._iteration += 1
        self.history.append(interval)
        return interval
