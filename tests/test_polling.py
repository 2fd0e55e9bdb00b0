"""Adaptive polling intervals."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from fillguard.config import FillDetectionConfig
from fillguard.polling import PollSchedule, poll_interval


def test_default_schedule() -> None:
    """Defaults: 0.25, 0.5, ... up to 2.0 and then flat."""
    cfg = FillDetectionConfig()
    assert [poll_interval(i, cfg) for i in range(10)] == [
        0.25,
        0.5,
        0.75,
        1.0,
        1.25,
        1.5,
        1.75,
        2.0,
        2.0,
        2.0,
    ]


def test_negative_iteration_is_the_first() -> None:
    """A negative iteration is treated as the first."""
    assert poll_interval(-3, FillDetectionConfig()) == 0.25


def test_schedule_iterator_records_history() -> None:
    """PollSchedule yields the same sequence and remembers what it handed out."""
    cfg = FillDetectionConfig(
        initial_poll_interval=1, poll_interval_increase=0, max_poll_interval=1
    )
    sched = PollSchedule(cfg)
    assert iter(sched) is sched
    assert list(itertools.islice(sched, 3)) == [1, 1, 1]
    assert sched.history == [1, 1, 1]
    assert sched.iteration == 3


@settings(max_examples=200, deadline=None)
@given(
    initial=st.floats(min_value=0.001, max_value=10),
    step=st.floats(min_value=0, max_value=5),
    extra=st.floats(min_value=0, max_value=30),
    count=st.integers(1, 200),
)
def test_property_adaptive_polling(initial: float, step: float, extra: float, count: int) -> None:
    """Property 10: starts at initial, grows by the step, is non-decreasing, capped at max."""
    cfg = FillDetectionConfig(
        initial_poll_interval=initial,
        poll_interval_increase=step,
        max_poll_interval=initial + extra,
    )
    seq = list(itertools.islice(PollSchedule(cfg), count))
    assert seq[0] == initial
    assert all(a <= b for a, b in itertools.pairwise(seq))
    assert all(initial <= x <= cfg.max_poll_interval for x in seq)
    for i, x in enumerate(seq):
        assert x == min(initial + step * i, cfg.max_poll_interval)
