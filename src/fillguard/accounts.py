"""What exists once per account per process: the order tracker and the request budget.

Every engine and executor built on the same key id and base URL shares them (and, through the
tracker, the one trade_updates connection). A fake clock is a world of its own: what is made
for it lives and dies with it, so tests never share state through these registries.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any

from fillguard.clock import Clock, SystemClock
from fillguard.config import FillDetectionConfig
from fillguard.observer import Observer
from fillguard.tracker import OrderTracker

__all__ = ["account_budget", "shutdown_account", "shutdown_all", "tracker_for"]

_registry_lock = threading.Lock()
_registry: dict[tuple[str, str], OrderTracker] = {}
# A fake clock is a world of its own: its trackers die with it.
_fake_registry: weakref.WeakKeyDictionary[Any, dict[tuple[str, str], OrderTracker]] = (
    weakref.WeakKeyDictionary()
)


def shutdown_all() -> None:
    """Release every tracker's stream and stop its loop (test isolation; idempotent)."""
    with _registry_lock:
        trackers = list(_registry.values())
        for table in list(_fake_registry.values()):
            trackers.extend(table.values())
        _registry.clear()
        _fake_registry.clear()
    for tracker in trackers:
        tracker.shutdown()


def shutdown_account(client: Any) -> None:
    """Stop ``client``'s account's tracker (its stream and loop) and forget its budget: for a
    process done with an account, e.g. a demo whose simulator is about to stop (idempotent)."""
    from fillguard import budget

    key_id = getattr(client, "_api_key", None) or getattr(client, "_oauth_token", None) or ""
    base_url = str(getattr(client, "_base_url", "") or "")
    key = (str(key_id), base_url)
    with _registry_lock:
        trackers = [t for t in (_registry.pop(key, None),) if t is not None]
        for table in list(_fake_registry.values()):
            if (found := table.pop(key, None)) is not None:
                trackers.append(found)
    for tracker in trackers:
        tracker.shutdown()
    budget.forget(str(key_id), base_url)


def tracker_for(
    client: Any,
    *,
    clock: Clock,
    make: Callable[[], OrderTracker],
) -> OrderTracker:
    """The one tracker of ``client``'s account in this process (made with ``make`` if none)."""
    key_id = getattr(client, "_api_key", None) or getattr(client, "_oauth_token", None) or ""
    base_url = str(getattr(client, "_base_url", "") or "")
    if not key_id or not base_url:
        return make()  # not an SDK client (a test double): a tracker of its own
    key = (str(key_id), base_url)
    with _registry_lock:
        if isinstance(clock, SystemClock):
            table = _registry
        else:
            table = _fake_registry.setdefault(clock, {})
        tracker = table.get(key)
        if tracker is None:
            tracker = table[key] = make()
        return tracker


def account_budget(
    client: Any, config: FillDetectionConfig, clock: Clock, observer: Observer
) -> Any:
    """The account's request budget in this process (None when the config has none)."""
    if config.rate_limit_per_minute is None:
        return None
    key = getattr(client, "_api_key", None) or getattr(client, "_oauth_token", None)
    base = getattr(client, "_base_url", None)
    base_url = str(getattr(base, "value", base) or "")
    if not key or not base_url:
        return None
    from fillguard.budget import RequestBudget, budget_for
    from fillguard.budget_core import BudgetConfig

    settings = BudgetConfig(limit=config.rate_limit_per_minute)
    if isinstance(clock, SystemClock):
        return budget_for(str(key), base_url, config=settings, clock=clock, observer=observer)
    # A fake clock is a world of its own: one budget per account per clock.
    with _fake_lock:
        table = _fake_budgets.setdefault(clock, {})
        budget = table.get((str(key), base_url))
        if budget is None:
            budget = table[(str(key), base_url)] = RequestBudget(
                settings, clock=clock, observer=observer
            )
        return budget


_fake_lock = threading.Lock()
_fake_budgets: weakref.WeakKeyDictionary[Any, dict[tuple[str, str], Any]] = (
    weakref.WeakKeyDictionary()
)
