"""The request budget's decisions, without I/O, threads or clocks: :class:`BudgetCore`.

Alpaca allows 200 Trading API requests per minute per account (more on paid plans) and says so
on every response: ``X-Ratelimit-Limit``, ``X-Ratelimit-Remaining`` and ``X-Ratelimit-Reset``
(epoch seconds). The core grants requests so that fillguard, alone on the account, never causes
a 429:

- **Our own sliding window.** At most ``effective_limit`` grants (the limit less a safety
  margin, 5 % and at least 2) in any ``window_seconds + window_slack_seconds``. Any fixed
  server window of ``window_seconds`` then holds at most that many of our requests, wherever
  its boundaries fall, as long as a request reaches the server within the slack of its grant.
- **The server's word.** ``Remaining`` and ``Reset`` cap what is granted before that reset
  (less one, less the grants of the last ``window_slack_seconds`` that the server may not have
  counted yet), so others using the account are accounted for.
- **Priorities, highest first:** ``cancel > submit > lookup > position > sweep``. Waiting
  tickets are granted strictly in that order (FIFO within a priority): no lower-priority
  request goes while a higher one waits. Each priority also leaves a reserve of the window
  free for those above it (default: submit 2 %, lookup 5 %, position 10 %, sweep 20 % of the
  effective limit; cancel none), so a sweep storm never blocks a cancel.
- **A 429 pauses everyone** until the announced reset (plus ``reset_slack_seconds``, since the
  reset is a whole epoch second and clocks differ), else ``Retry-After``, else a short fallback
  that doubles while 429s keep coming up to ``max_fallback_pause_seconds``; capped at
  ``max_pause_seconds``. Afterwards the backlog
  drains one grant per ``resume_spacing_seconds``, not in one burst at the reset second.
- **Deadlines.** A ticket is never granted after its deadline: it expires instead. A request
  that cannot possibly be granted before its deadline is refused at once.

Times are monotonic seconds supplied by the caller; ``wall_epoch`` only converts ``Reset``.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from types import MappingProxyType

from fillguard.config import finite_number
from fillguard.errors import InvalidInputError

__all__ = [
    "DEFAULT_RESERVES",
    "BudgetConfig",
    "BudgetCore",
    "Priority",
    "parse_priority",
]


class Priority(StrEnum):
    """What a request is for; earlier members go first."""

    CANCEL = "cancel"
    SUBMIT = "submit"
    LOOKUP = "lookup"  # final checks, look-ups by id or client order id
    POSITION = "position"
    SWEEP = "sweep"


_RANK: dict[Priority, int] = {p: i for i, p in enumerate(Priority)}

#: Share of the effective limit each priority leaves free for the ones above it.
DEFAULT_RESERVES: Mapping[str, float] = MappingProxyType(
    {
        Priority.CANCEL: 0.0,
        Priority.SUBMIT: 0.02,
        Priority.LOOKUP: 0.05,
        Priority.POSITION: 0.10,
        Priority.SWEEP: 0.20,
    }
)


def default_reserves() -> Mapping[str, float]:
    """The default reserves: :data:`DEFAULT_RESERVES`."""
    return DEFAULT_RESERVES


def parse_priority(value: object) -> Priority:
    """A :class:`Priority` from itself or its name; :class:`InvalidInputError` otherwise."""
    if isinstance(value, Priority):
        return value
    try:
        return Priority(str(value).lower())
    except ValueError:
        names = ", ".join(p.value for p in Priority)
        raise InvalidInputError("priority", f"must be one of {names}, got {value!r}") from None


@dataclass(frozen=True, kw_only=True, slots=True)
class BudgetConfig:
    """The budget's settings (seconds, counts and fractions)."""

    limit: int = 200  # until a response says otherwise
    window_seconds: float = 60.0
    window_slack_seconds: float = 1.0
    margin_fraction: float = 0.05
    min_margin: int = 2
    learn_limit: bool = True  # take the limit from X-Ratelimit-Limit
    reserves: Mapping[str, float] = field(default_factory=default_reserves)
    reset_slack_seconds: float = 1.0
    max_pause_seconds: float = 61.0
    min_pause_seconds: float = 0.5
    fallback_pause_seconds: float = 1.0  # a 429 that names no reset and no Retry-After
    # Alpaca's limiter always names its reset: a bare 429 is an edge or proxy hiccup, so its
    # doubling pause stops growing here rather than stalling every trade for half a minute.
    max_fallback_pause_seconds: float = 4.0
    resume_spacing_seconds: float = 0.05

    def __post_init__(self) -> None:
        for name in ("limit", "min_margin"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidInputError(name, f"must be an integer >= 0, got {value!r}")
        if self.limit < 1:
            raise InvalidInputError("limit", "must be >= 1")
        for f in fields(self):
            if f.name.endswith(("_seconds", "_fraction")):
                value = finite_number(f.name, getattr(self, f.name))
                if value < 0:
                    raise InvalidInputError(f.name, f"must be >= 0, got {value!r}")
        if self.window_seconds <= 0:
            raise InvalidInputError("window_seconds", "must be > 0")
        if self.margin_fraction >= 1:
            raise InvalidInputError("margin_fraction", "must be < 1")
        reserves = {
            parse_priority(k): finite_number(f"reserves[{k}]", v) for k, v in self.reserves.items()
        }
        if any(not 0 <= v < 1 for v in reserves.values()):
            raise InvalidInputError("reserves", "every reserve must be within [0, 1)")
        object.__setattr__(self, "reserves", MappingProxyType(reserves))


@dataclass(slots=True)
class _Ticket:
    id: int
    priority: Priority
    deadline: float | None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        for key, v in headers.items():
            if key.lower() == lowered:
                return v
    return value


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text.strip())
    except (ValueError, AttributeError):
        return None
    return value if math.isfinite(value) else None


class BudgetCore:
    """The request budget as a state machine: tickets in, grants and expiries out.

    Drive it with :meth:`enqueue`, :meth:`grant_ready`, :meth:`withdraw`, :meth:`observe` and
    :meth:`next_wake`; every call takes the current time and none blocks or reads a clock.
    """

    def __init__(self, config: BudgetConfig | None = None) -> None:
        self.config = config or BudgetConfig()
        self.limit = self.config.limit
        self._span = self.config.window_seconds + self.config.window_slack_seconds
        self._grants: deque[float] = deque()
        self._queues: dict[Priority, deque[_Ticket]] = {p: deque() for p in Priority}
        self._waiting: dict[int, _Ticket] = {}
        self._counts: dict[Priority, int] = dict.fromkeys(Priority, 0)
        self._sure: dict[Priority, int] = dict.fromkeys(Priority, 0)  # waiting, no deadline
        self._deadlines: list[tuple[float, int]] = []  # heap; withdrawn ids are skipped
        self._next_id = 1
        self.paused_until = -math.inf
        self._resuming = False
        self._resume_next = -math.inf
        self._fallback_streak = 0
        # The server's view: until this monotonic time, at most this many more grants.
        self._server_reset = -math.inf
        self._server_left = 0
        self.granted_total = 0

    # ------------------------------------------------------------------ figures
    @property
    def effective_limit(self) -> int:
        """The limit less the safety margin (never below 1)."""
        margin = max(self.config.min_margin, math.ceil(self.limit * self.config.margin_fraction))
        return max(1, self.limit - margin)

    def reserve(self, priority: Priority) -> int:
        """Grants this priority leaves free in the window for higher ones."""
        fraction = self.config.reserves.get(priority, 0.0)
        return min(self.effective_limit - 1, math.floor(self.effective_limit * fraction))

    def in_window(self, now: float) -> int:
        """Our grants in the sliding window ending now."""
        self._purge(now)
        return len(self._grants)

    def server_left(self, now: float) -> int | None:
        """Grants the server's last word still allows before its reset, or None."""
        if now < self._server_reset + self.config.reset_slack_seconds:
            return self._server_left
        return None

    def waiting(self) -> dict[Priority, int]:
        """Waiting tickets per priority."""
        return {p: n for p, n in self._counts.items() if n}

    def _purge(self, now: float) -> None:
        # g + span <= now, not g <= now - span: the wake time is computed as g + span, and
        # (g + span) - span need not equal g in floating point.
        grants, span = self._grants, self._span
        while grants and grants[0] + span <= now:
            grants.popleft()

    # ------------------------------------------------------------------ tickets
    # Queues keep withdrawn tickets until they reach the front (lazy deletion), so every
    # operation stays O(log n) with thousands of waiters.
    def enqueue(self, priority: Priority, now: float, deadline: float | None = None) -> int | None:
        """Queue a request; its ticket id, or None when it surely cannot be granted before
        ``deadline`` (nothing is queued then)."""
        ticket = _Ticket(self._next_id, priority, deadline)
        self._next_id += 1
        if deadline is not None:
            # Everyone already queued at this priority or above is ahead of it.
            ahead = sum(self._sure[p] for p in Priority if _RANK[p] <= _RANK[priority])
            if self._earliest(ticket, now, ahead=ahead) > deadline:
                return None
            heapq.heappush(self._deadlines, (deadline, ticket.id))
        else:
            self._sure[priority] += 1
        self._queues[priority].append(ticket)
        self._waiting[ticket.id] = ticket
        self._counts[priority] += 1
        return ticket.id

    def withdraw(self, ticket_id: int) -> bool:
        """Forget a waiting ticket (its caller gave up); whether it was waiting."""
        ticket = self._waiting.pop(ticket_id, None)
        if ticket is None:
            return False
        self._counts[ticket.priority] -= 1
        if ticket.deadline is None:
            self._sure[ticket.priority] -= 1
        if not self._waiting:
            self._resuming = False
        return True

    def grant_ready(self, now: float) -> tuple[list[int], list[int]]:
        """Grant every ticket that may go now, in priority order; expire those whose deadline
        passed. Returns ``(granted, expired)`` ticket ids."""
        granted: list[int] = []
        expired: list[int] = []
        while True:
            head = self._head()
            if head is None:
                break
            if head.deadline is not None and now > head.deadline:
                self.withdraw(head.id)
                expired.append(head.id)
                continue
            if not self._may_grant(head.priority, now):
                break
            self.withdraw(head.id)
            self._record_grant(now)
            granted.append(head.id)
        # Whoever could not go and has reached its deadline expires now (a grant exactly at
        # the deadline was still allowed above).
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            _, ticket_id = heapq.heappop(deadlines)
            if self.withdraw(ticket_id):
                expired.append(ticket_id)
        if not self._waiting:
            self._resuming = False
        return granted, expired

    def try_grant(self, priority: Priority, now: float) -> bool:
        """Grant one request now if it may go without waiting (nothing of equal or higher
        priority waiting, window and pause allow it)."""
        if any(self._counts[p] for p in Priority if _RANK[p] <= _RANK[priority]):
            return False
        if not self._may_grant(priority, now):
            return False
        self._record_grant(now)
        return True

    def next_wake(self, now: float) -> float | None:
        """When :meth:`grant_ready` may next have something to do (a grant or an expiry)."""
        head = self._head()
        if head is None:
            return None
        wake = self._earliest(head, now, ahead=0)
        deadlines = self._deadlines
        while deadlines and deadlines[0][1] not in self._waiting:
            heapq.heappop(deadlines)
        if deadlines:
            wake = min(wake, deadlines[0][0])
        return max(wake, now) if math.isfinite(wake) else None

    def earliest(self, ticket_id: int, now: float) -> float | None:
        """A lower bound on when a waiting ticket can be granted (None: not waiting)."""
        ticket = self._waiting.get(ticket_id)
        if ticket is None:
            return None
        rank = _RANK[ticket.priority]
        # Only tickets without a deadline surely take a grant (others may expire instead).
        ahead = sum(
            1
            for t in self._waiting.values()
            if t.deadline is None
            and (_RANK[t.priority] < rank or (t.priority is ticket.priority and t.id < ticket.id))
        )
        return self._earliest(ticket, now, ahead=ahead)

    def _head(self) -> _Ticket | None:
        for p in Priority:
            queue = self._queues[p]
            if not self._counts[p]:
                queue.clear()  # only withdrawn tickets are left in it
                continue
            while queue and queue[0].id not in self._waiting:
                queue.popleft()
            if queue:
                return queue[0]
        return None

    def _may_grant(self, priority: Priority, now: float) -> bool:
        if now < self.paused_until:
            return False
        if self._resuming and now < self._resume_next:
            return False
        left = self.server_left(now)
        if left is not None and left <= 0:
            return False
        return self.effective_limit - self.in_window(now) > self.reserve(priority)

    def _record_grant(self, now: float) -> None:
        self._grants.append(now)
        self.granted_total += 1
        if self.server_left(now) is not None:
            self._server_left -= 1
        if self._resuming:
            self._resume_next = now + self.config.resume_spacing_seconds

    def _earliest(self, ticket: _Ticket, now: float, *, ahead: int) -> float:
        """A lower bound on the grant time of ``ticket`` with ``ahead`` tickets before it."""
        self._purge(now)
        t = max(now, self.paused_until)
        if self._resuming or now < self.paused_until:
            t = max(t, self._resume_next) + ahead * self.config.resume_spacing_seconds
        left = self.server_left(now)
        if left is not None and left <= ahead:
            t = max(t, self._server_reset + self.config.reset_slack_seconds)
        # The window must have room for everyone ahead, plus this one, above its reserve.
        room = self.effective_limit - self.reserve(ticket.priority) - ahead - 1
        grants = self._grants
        if room < 0:
            return max(t, now + self._span)  # those ahead must first age out of the window
        excess = len(grants) - room
        if excess > 0:
            t = max(t, grants[excess - 1] + self._span)
        return t

    # ------------------------------------------------------------------ learning
    def observe(
        self, status: int | None, headers: Mapping[str, str] | None, now: float, wall_epoch: float
    ) -> int | None:
        """Learn from one response (``status`` None: no response). Returns the
        ``X-Ratelimit-Remaining`` it carried, if any."""
        headers = headers or {}
        config = self.config
        limit = _number(_header(headers, "x-ratelimit-limit"))
        if config.learn_limit and limit is not None and limit >= 1:
            self.limit = int(limit)
        remaining_f = _number(_header(headers, "x-ratelimit-remaining"))
        remaining = int(remaining_f) if remaining_f is not None and remaining_f >= 0 else None
        reset_epoch = _number(_header(headers, "x-ratelimit-reset"))
        reset = None if reset_epoch is None else now + (reset_epoch - wall_epoch)
        if status == 429:
            self._on_429(now, reset, _number(_header(headers, "retry-after")))
            return remaining
        if status is None:
            return remaining
        self._fallback_streak = 0
        if remaining is not None and reset is not None and reset > now:
            uncounted = sum(1 for g in self._grants if g > now - config.window_slack_seconds)
            left = max(0, remaining - 1 - uncounted)
            if abs(reset - self._server_reset) < 1.0:  # the same server window
                self._server_left = min(self._server_left, left)
                self._server_reset = max(self._server_reset, reset)
            elif reset > self._server_reset:
                self._server_reset, self._server_left = reset, left
        return remaining

    def _on_429(self, now: float, reset: float | None, retry_after: float | None) -> None:
        config = self.config
        if reset is not None:
            until = reset + config.reset_slack_seconds
            self._server_reset, self._server_left = reset, 0
        elif retry_after is not None and retry_after >= 0:
            until = now + retry_after
        else:
            pause = config.fallback_pause_seconds * 2.0 ** min(self._fallback_streak, 16)
            until = now + min(pause, config.max_fallback_pause_seconds)
            self._fallback_streak += 1
        until = min(max(until, now + config.min_pause_seconds), now + config.max_pause_seconds)
        self.paused_until = max(self.paused_until, until)
        self._resuming = True
        self._resume_next = max(self._resume_next, self.paused_until)
