"""Hypothesis properties of the budget's pure core, driven in simulated time (no threads).

A script of bursts of requests (mixed priorities, some with deadlines), 429s from another user
of the account and responses carrying the server's count runs against :class:`BudgetCore`;
between steps, time jumps from one ``next_wake`` to the next, exactly as the shell sleeps.
"""

from __future__ import annotations

import bisect
import itertools
import random
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fillguard.budget_core import BudgetConfig, BudgetCore, Priority

RANK = {p: i for i, p in enumerate(Priority)}
WALL0 = 1_800_000_000.0  # wall epoch at simulated monotonic 0


@dataclass
class Ticket:
    id: int
    priority: Priority
    enqueued: float
    deadline: float | None
    outcome: str = "waiting"  # granted, expired, rejected
    at: float | None = None


@dataclass
class Run:
    core: BudgetCore
    now: float = 0.0
    tickets: dict[int, Ticket] = field(default_factory=dict)
    grants: list[float] = field(default_factory=list)
    # Waiting ticket ids per priority, in enqueue order (dicts keep insertion order).
    waiting: dict[Priority, dict[int, None]] = field(
        default_factory=lambda: {p: {} for p in Priority}
    )
    # (grants before the 429, no grant before this time after it)
    pauses: list[tuple[int, float]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    def pump(self) -> None:
        granted, expired = self.core.grant_ready(self.now)
        for tid in granted:
            t = self.tickets[tid]
            # Strict priority and FIFO: nothing of higher priority, nothing older of the same.
            for p in Priority:
                if RANK[p] < RANK[t.priority] and self.waiting[p]:
                    self.violations.append(f"{t.priority} granted while {p} waited")
            first = next(iter(self.waiting[t.priority]))
            if first != tid:
                self.violations.append(f"{t.priority} #{tid} granted before #{first}")
            del self.waiting[t.priority][tid]
            t.outcome, t.at = "granted", self.now
            self.grants.append(self.now)
        for tid in expired:
            t = self.tickets[tid]
            del self.waiting[t.priority][tid]
            t.outcome, t.at = "expired", self.now

    def advance_to(self, target: float) -> None:
        """Let time pass to ``target``, waking wherever the core asks to."""
        for _ in range(100_000):
            wake = self.core.next_wake(self.now)
            if wake is None or wake > target:
                break
            before = (len(self.grants), sum(len(w) for w in self.waiting.values()))
            self.now = max(self.now, wake)
            self.pump()
            after = (len(self.grants), sum(len(w) for w in self.waiting.values()))
            if wake <= self.now and before == after and self.core.next_wake(self.now) == self.now:
                raise AssertionError("next_wake says now but grant_ready does nothing")
        self.now = max(self.now, target)
        self.pump()

    def request(self, priority: Priority, deadline_in: float | None) -> None:
        deadline = None if deadline_in is None else self.now + deadline_in
        tid = self.core.enqueue(priority, self.now, deadline)
        if tid is None:
            key = -len(self.tickets) - 1
            self.tickets[key] = Ticket(key, priority, self.now, deadline, "rejected", self.now)
            return
        self.tickets[tid] = Ticket(tid, priority, self.now, deadline)
        self.waiting[priority][tid] = None


priorities = st.sampled_from(list(Priority))
bursts = st.tuples(
    st.just("burst"),
    st.floats(0, 20),
    st.lists(st.tuples(priorities, st.none() | st.floats(0, 120)), min_size=1, max_size=60),
)
too_many = st.tuples(
    st.just("429"),
    st.floats(0, 20),
    st.none() | st.floats(-5, 90),  # reset, seconds from now
    st.none() | st.floats(0, 200),  # Retry-After
)
server_word = st.tuples(
    st.just("ok"),
    st.floats(0, 20),
    st.integers(0, 200),  # remaining
    st.floats(0.5, 60),  # reset, seconds from now
)
scripts = st.lists(st.one_of(bursts, too_many, server_word), min_size=1, max_size=14)


def play(script: list[tuple[Any, ...]], config: BudgetConfig | None = None) -> Run:
    run = Run(BudgetCore(config or BudgetConfig()))
    for op in script:
        run.advance_to(run.now + op[1])
        if op[0] == "burst":
            for priority, deadline_in in op[2]:
                run.request(priority, deadline_in)
        elif op[0] == "429":
            headers = {}
            if op[2] is not None:
                headers["X-Ratelimit-Reset"] = str(int(WALL0 + run.now + op[2]))
                headers["X-Ratelimit-Remaining"] = "0"
            if op[3] is not None:
                headers["Retry-After"] = f"{op[3]:.3f}"
            before = run.core.paused_until
            run.core.observe(429, headers, run.now, WALL0 + run.now)
            run.pauses.append((len(run.grants), max(before, expected_pause_end(run, op))))
        else:
            headers = {
                "X-Ratelimit-Limit": "200",
                "X-Ratelimit-Remaining": str(op[2]),
                "X-Ratelimit-Reset": str(int(WALL0 + run.now + op[3])),
            }
            run.core.observe(200, headers, run.now, WALL0 + run.now)
        run.pump()
    run.advance_to(run.now + 3600)  # drain: an hour is plenty for every ticket
    return run


def expected_pause_end(run: Run, op: tuple[Any, ...]) -> float:
    """The pause the spec promises for a 429 (reset, else Retry-After; capped both ways)."""
    c = run.core.config
    now = run.now
    if op[2] is not None:
        until = (int(WALL0 + now + op[2]) - WALL0) + c.reset_slack_seconds
    elif op[3] is not None:
        until = now + float(f"{op[3]:.3f}")
    else:
        until = now + c.min_pause_seconds  # the fallback is at least the minimum
    return min(max(until, now + c.min_pause_seconds), now + c.max_pause_seconds)


def max_in_any_window(times: list[float], width: float) -> int:
    """The most grants in any half-open window [t, t + width)."""
    best = 0
    for i, t in enumerate(times):
        j = bisect.bisect_left(times, t + width)
        best = max(best, j - i)
    return best


# A flood first, so that every script fills the window at least once.
# (Built from a seed: drawing 200+ list items one by one is most of a test's time.)
floods = st.builds(
    lambda n, seed: (
        "burst",
        0.0,
        [(random.Random(seed + i).choice(list(Priority)), None) for i in range(n)],
    ),
    st.integers(200, 260),
    st.integers(0, 2**32),
)


@settings(max_examples=120, deadline=None)
@given(floods, scripts)
def test_no_window_of_60_seconds_gets_more_than_the_limit(
    flood: tuple[Any, ...], script: list[tuple[Any, ...]]
) -> None:
    run = play([flood, *script])
    assert not run.violations, run.violations
    core = run.core
    busiest = max_in_any_window(run.grants, 60.0)
    assert busiest >= core.effective_limit - core.reserve(Priority.SWEEP)  # the window filled
    assert busiest <= core.config.limit
    # Stronger: the safety margin holds over the window plus its slack.
    assert max_in_any_window(run.grants, 61.0) <= core.effective_limit


@settings(max_examples=120, deadline=None)
@given(scripts)
def test_priorities_deadlines_and_pauses_are_respected(script: list[tuple[Any, ...]]) -> None:
    run = play(script)
    assert not run.violations, run.violations
    for t in run.tickets.values():
        if t.deadline is None:
            assert t.outcome == "granted", "a request without a deadline is never dropped"
        elif t.outcome == "granted":
            assert t.at is not None
            assert t.at <= t.deadline, "granted after its deadline"
        elif t.outcome == "expired":
            assert t.at is not None
            assert t.at >= t.deadline, "expired before its deadline"
        else:
            assert t.outcome == "rejected"
    # A 429 (from anyone on the account) pauses every priority until the promised time.
    for granted_before, until in run.pauses:
        inside = [g for g in run.grants[granted_before:] if g < until - 1e-6]
        assert not inside, f"granted at {inside[:3]} during a pause until {until}"


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 120), st.floats(0, 30), st.integers(0, 4))
def test_after_a_pause_the_backlog_resumes_spread_out(
    waiters: int, reset_in: float, priority_index: int
) -> None:
    core = BudgetCore()
    core.observe(429, {"X-Ratelimit-Reset": str(int(WALL0 + reset_in))}, 0.0, WALL0)
    priority = list(Priority)[priority_index]
    ids = [core.enqueue(priority, 0.0) for _ in range(waiters)]
    assert all(i is not None for i in ids)
    run = Run(core)
    for tid in ids:
        assert tid is not None
        run.tickets[tid] = Ticket(tid, priority, 0.0, None)
        run.waiting[priority][tid] = None
    run.advance_to(3600)
    assert not run.violations
    grants = run.grants
    room = core.effective_limit - core.reserve(priority)
    assert len(grants) == waiters
    assert grants[0] >= int(WALL0 + reset_in) - WALL0 + core.config.reset_slack_seconds - 1e-6
    spacing = core.config.resume_spacing_seconds
    first_window = grants[: min(waiters, room)]
    gaps = [b - a for a, b in itertools.pairwise(first_window)]
    assert all(g >= spacing - 1e-9 for g in gaps), "no burst at the reset second"


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(priorities, st.floats(0, 200)), min_size=1, max_size=300),
    st.integers(1, 1000),
)
def test_rejected_at_once_only_when_no_grant_could_come_in_time(
    requests: list[tuple[Priority, float]], limit: int
) -> None:
    """A refusal at enqueue is sound: the same request with no deadline is granted later
    than that deadline would have allowed."""
    core = BudgetCore(BudgetConfig(limit=limit))
    for _ in range(core.effective_limit):  # a full window
        assert core.try_grant(Priority.CANCEL, 0.0)
    for priority, deadline_in in requests:
        probe = BudgetCore(BudgetConfig(limit=limit))
        probe._grants = core._grants.copy()
        tid = probe.enqueue(priority, 1.0, 1.0 + deadline_in)
        if tid is not None:
            continue
        run = Run(probe)
        again = probe.enqueue(priority, 1.0)
        assert again is not None
        run.tickets[again] = Ticket(again, priority, 1.0, None)
        run.waiting[priority][again] = None
        run.advance_to(10_000)
        granted_at = run.tickets[again].at
        assert granted_at is not None
        assert granted_at > 1.0 + deadline_in
