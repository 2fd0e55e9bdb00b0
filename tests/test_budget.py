"""The request budget: its core by example, the blocking shell in fake time, real threads,
asyncio callers and the per-account registry."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from fillguard.budget import BudgetConfig, Priority, RequestBudget, budget_for
from fillguard.budget_core import BudgetCore, parse_priority
from fillguard.clock import FakeClock, SystemClock
from fillguard.errors import InvalidInputError
from fillguard.observer import NullObserver
from tests.test_budget_properties import max_in_any_window

WALL0 = 1_800_000_000.0


def fake_clock() -> FakeClock:
    return FakeClock(datetime.fromtimestamp(WALL0, UTC), monotonic_start=0.0)


def headers(limit: int = 200, remaining: int = 199, reset: float = WALL0 + 60) -> dict[str, str]:
    return {
        "X-Ratelimit-Limit": str(limit),
        "X-Ratelimit-Remaining": str(remaining),
        "X-Ratelimit-Reset": str(int(reset)),
    }


class Recorder(NullObserver):
    def __init__(self) -> None:
        self.waits: list[tuple[str, float]] = []
        self.remaining: list[int] = []

    def budget_wait(self, priority: str, seconds: float) -> None:
        self.waits.append((priority, seconds))

    def budget_remaining(self, remaining: int) -> None:
        self.remaining.append(remaining)


# ---------------------------------------------------------------------------------- the core
def test_defaults_leave_a_margin_and_reserves_for_higher_priorities() -> None:
    core = BudgetCore()
    assert (core.limit, core.effective_limit) == (200, 190)
    assert [core.reserve(p) for p in Priority] == [0, 3, 9, 19, 38]
    # A full window of sweeps stops at 190 - 38 = 152; cancels may still use the rest.
    sweeps = sum(core.try_grant(Priority.SWEEP, 0.0) for _ in range(200))
    assert sweeps == 152
    positions = sum(core.try_grant(Priority.POSITION, 0.0) for _ in range(200))
    assert positions == 171 - 152
    cancels = sum(core.try_grant(Priority.CANCEL, 0.0) for _ in range(200))
    assert sweeps + positions + cancels == 190
    assert not core.try_grant(Priority.CANCEL, 60.9)
    assert core.try_grant(Priority.CANCEL, 61.0)  # the first grants aged out of 60 + 1 s


def test_limit_is_learned_from_the_headers() -> None:
    core = BudgetCore()
    assert core.observe(200, headers(limit=1000, remaining=990), 0.0, WALL0) == 990
    assert (core.limit, core.effective_limit) == (1000, 950)
    granted = sum(core.try_grant(Priority.CANCEL, 0.0) for _ in range(1200))
    assert granted == 950
    # Garbage headers change nothing; names are case-insensitive.
    core.observe(200, {"x-ratelimit-limit": "lots", "X-RATELIMIT-REMAINING": "-3"}, 1.0, WALL0)
    assert core.limit == 1000
    fixed = BudgetCore(BudgetConfig(learn_limit=False))
    fixed.observe(200, headers(limit=1000), 0.0, WALL0)
    assert fixed.limit == 200


def test_another_user_of_the_account_is_seen_in_remaining() -> None:
    core = BudgetCore()
    # The server says 5 left until the reset in 30 s: someone else spent the rest.
    core.observe(200, headers(remaining=5, reset=WALL0 + 30), 0.0, WALL0)
    granted = sum(core.try_grant(Priority.CANCEL, 0.0) for _ in range(50))
    assert granted == 4  # one kept back for a request the server may not have counted yet
    assert core.server_left(0.0) == 0
    assert not core.try_grant(Priority.CANCEL, 30.9)
    assert core.try_grant(Priority.CANCEL, 31.0)  # reset plus its slack: a new window


def test_a_429_pauses_until_the_reset_or_retry_after_or_a_growing_fallback() -> None:
    core = BudgetCore()
    core.observe(429, headers(remaining=0, reset=WALL0 + 20), 0.0, WALL0)
    assert core.paused_until == pytest.approx(21.0)
    assert not core.try_grant(Priority.CANCEL, 20.99)
    assert core.try_grant(Priority.CANCEL, 21.0)
    later = BudgetCore()
    later.observe(429, {"Retry-After": "500"}, 0.0, WALL0)
    assert later.paused_until == pytest.approx(61.0)  # capped
    fallback = BudgetCore()
    fallback.observe(429, {}, 0.0, WALL0)
    fallback.observe(429, {}, 1.0, WALL0 + 1)
    fallback.observe(429, {}, 3.0, WALL0 + 3)
    assert fallback.paused_until == pytest.approx(3.0 + 4.0)  # 1, 2, 4 s
    fallback.observe(200, {}, 8.0, WALL0 + 8)
    fallback.observe(429, {}, 8.0, WALL0 + 8)
    assert fallback.paused_until == pytest.approx(9.0)  # a success resets the doubling
    capped = BudgetCore()
    for t in (0.0, 1.0, 3.0, 7.0, 11.0):
        capped.observe(429, {}, t, WALL0 + t)
    assert capped.paused_until == pytest.approx(11.0 + 4.0)  # 8 s, capped: a bare 429


def test_deadline_that_cannot_be_met_is_refused_at_once_without_consuming() -> None:
    core = BudgetCore()
    core.observe(429, {"Retry-After": "10"}, 0.0, WALL0)
    assert core.enqueue(Priority.CANCEL, 0.0, deadline=5.0) is None
    assert core.waiting() == {}
    tid = core.enqueue(Priority.CANCEL, 0.0, deadline=10.0)
    assert tid is not None
    assert core.next_wake(0.0) == pytest.approx(10.0)
    granted, expired = core.grant_ready(10.0)
    assert (granted, expired) == ([tid], [])  # granted exactly at its deadline
    tid2 = core.enqueue(Priority.SWEEP, 10.0, deadline=10.01)
    core.observe(429, {"Retry-After": "5"}, 10.0, WALL0 + 10)
    assert core.grant_ready(10.02) == ([], [tid2])
    assert core.granted_total == 1


def test_parse_priority_and_config_errors_name_the_field() -> None:
    assert parse_priority("Cancel") is Priority.CANCEL
    with pytest.raises(InvalidInputError, match="priority"):
        parse_priority("urgent")
    with pytest.raises(InvalidInputError, match="limit"):
        BudgetConfig(limit=0)
    with pytest.raises(InvalidInputError, match="window_seconds"):
        BudgetConfig(window_seconds=float("nan"))
    with pytest.raises(InvalidInputError, match="reserves"):
        BudgetConfig(reserves={"sweep": 1.5})


# ---------------------------------------------------------------------------------- the shell
def test_blocking_acquire_runs_in_fake_time_on_one_thread() -> None:
    clock = fake_clock()
    recorder = Recorder()
    budget = RequestBudget(clock=clock, observer=recorder)
    times = []
    for _ in range(3 * 181):
        assert budget.acquire("lookup")
        times.append(clock.monotonic())
    # 190 - 9 (the lookup reserve) per 61 s sliding window, never more.
    assert max_in_any_window(times, 61.0) == 181
    assert max_in_any_window(times, 60.0) <= 200
    assert times[180] == 0.0
    assert times[181] == pytest.approx(61.0)
    assert times[362] == pytest.approx(122.0)
    assert recorder.waits[181][0] == "lookup"
    assert recorder.waits[181][1] == pytest.approx(61.0)
    # A deadline that the window cannot meet: False at once, nothing counted.
    status = budget.status()
    assert not budget.acquire(Priority.SWEEP, deadline_monotonic=clock.monotonic() + 1)
    assert budget.status().granted_total == status.granted_total
    assert clock.monotonic() == times[-1]


def test_a_429_seen_by_one_caller_pauses_the_next_ones_in_fake_time() -> None:
    clock = fake_clock()
    recorder = Recorder()
    budget = RequestBudget(clock=clock, observer=recorder)
    assert budget.acquire("submit")
    budget.observe(429, headers(remaining=0, reset=WALL0 + 30))
    assert recorder.remaining == [0]
    assert budget.status().paused_for_seconds == pytest.approx(31.0)
    assert budget.acquire("cancel")
    assert clock.monotonic() == pytest.approx(31.0)


def test_real_threads_share_one_budget_within_its_window() -> None:
    """24 threads, mixed priorities, a 0.3 s window: the window holds and every
    cancel that waited went ahead of every sweep waiting at the same moment."""
    config = BudgetConfig(limit=12, window_seconds=0.3, window_slack_seconds=0.05)
    budget = RequestBudget(config, clock=SystemClock())
    log: list[tuple[str, Any, float]] = []
    core = budget._core
    enqueue, grant_ready = core.enqueue, core.grant_ready

    def logged_enqueue(priority: Priority, now: float, deadline: float | None = None) -> Any:
        tid = enqueue(priority, now, deadline)
        log.append(("enqueue", (tid, priority), now))
        return tid

    def logged_grant_ready(now: float) -> Any:
        granted, expired = grant_ready(now)
        log.extend(("grant", tid, now) for tid in granted)
        return granted, expired

    try_grant = core.try_grant

    def logged_try_grant(priority: Priority, now: float) -> bool:
        ok = try_grant(priority, now)
        if ok:
            log.append(("fast", priority, now))
        return ok

    core.enqueue = logged_enqueue  # type: ignore[method-assign]
    core.grant_ready = logged_grant_ready  # type: ignore[method-assign]
    core.try_grant = logged_try_grant  # type: ignore[method-assign]
    grants: list[tuple[float, str]] = []
    lock = threading.Lock()

    def worker(priority: str, n: int) -> None:
        for _ in range(n):
            assert budget.acquire(priority, deadline_monotonic=time.monotonic() + 30)
            with lock:
                grants.append((time.monotonic(), priority))

    plan = ["sweep"] * 12 + ["lookup"] * 6 + ["cancel"] * 6
    threads = [threading.Thread(target=worker, args=(p, 3)) for p in plan]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    assert len(grants) == 3 * len(plan)
    # The window, on the grant times the core decided (a thread may report its grant late).
    times = sorted(now for kind, _, now in log if kind in ("grant", "fast"))
    assert len(times) == len(grants)
    assert max_in_any_window(times, 0.3) <= 12
    assert max_in_any_window(times, 0.35) <= budget._core.effective_limit
    # Priority order, read from the core's own log (taken under the budget's lock).
    waiting: dict[int, Priority] = {}
    for kind, item, _ in log:
        if kind == "enqueue":
            tid, priority = item
            if tid is not None:
                waiting[tid] = priority
        elif kind == "grant":
            priority = waiting.pop(item)
            ranks = [list(Priority).index(p) for p in waiting.values()]
            assert all(r >= list(Priority).index(priority) for r in ranks)
        else:  # a grant without waiting: nobody of its priority or higher was waiting
            ranks = [list(Priority).index(p) for p in waiting.values()]
            assert all(r > list(Priority).index(item) for r in ranks)
    assert Counter(p for _, p in grants) == Counter({"sweep": 36, "lookup": 18, "cancel": 18})


def test_asyncio_callers_wait_without_blocking_the_loop_and_cancel_cleanly() -> None:
    config = BudgetConfig(limit=7, window_seconds=0.2, window_slack_seconds=0.02)
    budget = RequestBudget(config)

    async def main() -> tuple[list[float], int]:
        granted: list[float] = []
        ticks = 0

        async def caller() -> None:
            assert await budget.acquire_async("position")
            granted.append(time.monotonic())

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        tick = asyncio.create_task(ticker())
        await asyncio.gather(*(caller() for _ in range(12)))
        # A cancelled waiter gives its ticket back.
        budget.observe(429, {"Retry-After": "5"})
        waiter = asyncio.create_task(budget.acquire_async("sweep"))
        await asyncio.sleep(0.02)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        tick.cancel()
        return granted, ticks

    granted, ticks = asyncio.run(main())
    assert len(granted) == 12
    assert max_in_any_window(sorted(granted), 0.2) <= 7
    assert ticks > 5, "the loop kept running while callers waited"
    assert budget.status().waiting == {}


def test_one_budget_per_account_per_process() -> None:
    a = budget_for("KEY-budget-test", "https://paper-api.alpaca.markets")
    assert budget_for("KEY-budget-test", "https://PAPER-api.alpaca.markets/v2/") is a
    assert budget_for("KEY-budget-test", "http://127.0.0.1:8787") is not a
    assert budget_for("OTHER-budget-test", "https://paper-api.alpaca.markets") is not a
    with pytest.raises(InvalidInputError, match="base_url"):
        budget_for("KEY-budget-test", "paper-api")
