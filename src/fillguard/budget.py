"""One request budget per account per process: :class:`RequestBudget` and :func:`budget_for`.

Every request fillguard sends asks the budget first (``acquire``) and shows it the response
(``observe``); the decisions (sliding window under the learned limit, priorities and reserves,
the 429 pause, deadlines) live in :class:`fillguard.budget_core.BudgetCore`. This module is the
thread-safe shell: it reads the injected :class:`~fillguard.clock.Clock`, blocks callers with
``clock.wait`` (so it runs in fake time with :class:`~fillguard.clock.FakeClock` in
single-threaded tests) and wakes them as grants come. :meth:`RequestBudget.acquire_async` is
the same for asyncio callers, never blocking the loop.

::

    budget = budget_for(key_id, base_url)
    if budget.acquire("lookup", deadline_monotonic=deadline):
        response = send()
        budget.observe(response.status_code, response.headers)
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fillguard.budget_core import (
    DEFAULT_RESERVES,
    BudgetConfig,
    BudgetCore,
    Priority,
    parse_priority,
)
from fillguard.clock import Clock, SystemClock
from fillguard.errors import InvalidInputError
from fillguard.observer import NULL_OBSERVER, Observer

__all__ = [
    "DEFAULT_RESERVES",
    "BudgetConfig",
    "BudgetStatus",
    "Priority",
    "RequestBudget",
    "budget_for",
    "forget",
]

# A waiter with nothing timed ahead re-checks at least this often (it never should need to).
_IDLE_RECHECK_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """The budget as it stands (for tests, logs and the demo)."""

    limit: int
    effective_limit: int
    in_window: int
    server_left: int | None
    paused_for_seconds: float
    waiting: Mapping[str, int]
    granted_total: int


class _Waiter:
    __slots__ = ("granted", "notify")

    def __init__(self, notify: Callable[[], None]) -> None:
        self.notify = notify
        self.granted: bool | None = None


class RequestBudget:
    """The request budget of one account, shared by every thread and task of the process."""

    def __init__(
        self,
        config: BudgetConfig | None = None,
        *,
        clock: Clock | None = None,
        observer: Observer = NULL_OBSERVER,
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self.observer = observer
        self._core = BudgetCore(config)
        self._lock = threading.Lock()
        self._waiters: dict[int, _Waiter] = {}

    @property
    def config(self) -> BudgetConfig:
        """The settings."""
        return self._core.config

    # ------------------------------------------------------------------ acquiring
    def acquire(self, priority: Priority | str, *, deadline_monotonic: float | None = None) -> bool:
        """Block until a request of ``priority`` may be sent: True, and it is counted. False,
        and nothing is counted, when that cannot happen by ``deadline_monotonic``."""
        p = parse_priority(priority)
        clock = self.clock
        start = clock.monotonic()
        event = threading.Event()
        entered = self._enter(p, start, deadline_monotonic, event.set)
        if isinstance(entered, bool):
            return self._done(p, start, entered)
        ticket, waiter = entered
        try:
            while True:
                event.clear()  # before polling: a notify from here on ends the wait below
                timeout = self._poll(ticket, waiter)
                if waiter.granted is not None:
                    return self._done(p, start, waiter.granted)
                clock.wait(event, timeout)
        except BaseException:  # interrupted: give the ticket back, count nothing
            self._abandon(ticket, waiter)
            raise

    async def acquire_async(
        self, priority: Priority | str, *, deadline_monotonic: float | None = None
    ) -> bool:
        """:meth:`acquire` for asyncio: waits without blocking the running loop."""
        p = parse_priority(priority)
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        start = self.clock.monotonic()

        def notify() -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(event.set)

        entered = self._enter(p, start, deadline_monotonic, notify)
        if isinstance(entered, bool):
            return self._done(p, start, entered)
        ticket, waiter = entered
        try:
            while True:
                event.clear()
                timeout = self._poll(ticket, waiter)
                if waiter.granted is not None:
                    return self._done(p, start, waiter.granted)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), timeout)
        except BaseException:
            self._abandon(ticket, waiter)
            raise

    def _enter(
        self,
        priority: Priority,
        now: float,
        deadline: float | None,
        notify: Callable[[], None],
    ) -> bool | tuple[int, _Waiter]:
        """Grant at once (True), refuse at once (False) or queue a waiter."""
        with self._lock:
            core = self._core
            if core.try_grant(priority, now):
                return True
            ticket = core.enqueue(priority, now, deadline)
            if ticket is None:
                return False
            waiter = _Waiter(notify)
            self._waiters[ticket] = waiter
            self._pump(now)
            return ticket, waiter

    def _poll(self, ticket: int, waiter: _Waiter) -> float:
        """Grant what is due; how long this waiter may sleep before looking again."""
        with self._lock:
            now = self.clock.monotonic()
            if waiter.granted is None:
                self._pump(now)
            if waiter.granted is not None:
                return 0.0
            wake = self._core.next_wake(now)
        return _IDLE_RECHECK_SECONDS if wake is None else max(0.0, wake - now)

    def _pump(self, now: float) -> None:
        """Hand out every grant and expiry that is due (lock held)."""
        granted, expired = self._core.grant_ready(now)
        for ticket_id, result in [*((t, True) for t in granted), *((t, False) for t in expired)]:
            waiter = self._waiters.pop(ticket_id, None)
            if waiter is not None:
                waiter.granted = result
                waiter.notify()

    def _abandon(self, ticket: int, waiter: _Waiter) -> None:
        with self._lock:
            if waiter.granted is None:
                self._core.withdraw(ticket)
                self._waiters.pop(ticket, None)
                self._pump(self.clock.monotonic())

    def _done(self, priority: Priority, start: float, granted: bool) -> bool:
        self.observer.budget_wait(priority.value, max(0.0, self.clock.monotonic() - start))
        return granted

    # ------------------------------------------------------------------ learning
    def observe(
        self,
        status_code: int | None,
        headers: Mapping[str, str] | None,
        *,
        now_monotonic: float | None = None,
    ) -> None:
        """Learn from a response (its status and headers; ``status_code`` None: no response).

        A 429 pauses every caller of this budget; ``X-Ratelimit-*`` headers update the limit
        and the server's count.
        """
        with self._lock:
            now = self.clock.monotonic() if now_monotonic is None else now_monotonic
            wall = self.clock.now().timestamp()
            remaining = self._core.observe(status_code, headers, now, wall)
            self._pump(now)
            waiters = list(self._waiters.values())
        if remaining is not None:
            self.observer.budget_remaining(remaining)
        for waiter in waiters:  # the pause or the limit changed: let them re-plan
            waiter.notify()

    def status(self) -> BudgetStatus:
        """A snapshot of the budget."""
        with self._lock:
            core = self._core
            now = self.clock.monotonic()
            return BudgetStatus(
                limit=core.limit,
                effective_limit=core.effective_limit,
                in_window=core.in_window(now),
                server_left=core.server_left(now),
                paused_for_seconds=max(0.0, core.paused_until - now),
                waiting={p.value: n for p, n in core.waiting().items()},
                granted_total=core.granted_total,
            )


# ---------------------------------------------------------------------- one budget per account
_registry_lock = threading.Lock()
_registry: dict[tuple[str, str], RequestBudget] = {}


def _account_key(key_id: str, base_url: str) -> tuple[str, str]:
    if not isinstance(key_id, str) or not key_id:
        raise InvalidInputError("key_id", "must be a non-empty string")
    parts = urlsplit(base_url.strip()) if isinstance(base_url, str) else None
    if parts is None or not parts.scheme or not parts.netloc:
        raise InvalidInputError("base_url", f"must be a URL with a host, got {base_url!r}")
    path = parts.path.rstrip("/")
    if path.endswith("/v2"):
        path = path[: -len("/v2")]
    return key_id, f"{parts.scheme.lower()}://{parts.netloc.lower()}{path}"


def budget_for(key_id: str, base_url: str, **options: Any) -> RequestBudget:
    """This process's one budget for the account (key id and REST base URL).

    The first caller creates it (``options`` go to :class:`RequestBudget`: ``config``,
    ``clock``, ``observer``); later callers get the same object and their options are ignored.
    """
    key = _account_key(key_id, base_url)
    with _registry_lock:
        budget = _registry.get(key)
        if budget is None:
            budget = _registry[key] = RequestBudget(**options)
        return budget


def forget(key_id: str, base_url: str) -> None:
    """Drop the account's budget from this process's registry (no-op if it has none)."""
    try:
        key = _account_key(key_id, base_url)
    except InvalidInputError:
        return
    with _registry_lock:
        _registry.pop(key, None)
