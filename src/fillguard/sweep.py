"""The tracker's REST side and stream wiring: sweeps of many orders, and the shared stream.

A **sweep** reads every order submitted after a time in one request per page
(``GET /v2/orders?status=all&after=...&direction=asc&limit=500``), so that one request answers
for many watched orders; it starts a little before the earliest order it must cover.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from fillguard.broker import BrokerClient
from fillguard.lifecycle import Observation, OrderView
from fillguard.retry import ErrorRecoveryManager, RetryStats
from fillguard.snapshot import OrderSnapshot

__all__ = ["PAGE_SIZE", "connect_stream", "fetch_sweep", "sweep_start"]

#: Orders per page of a sweep (Alpaca's maximum).
PAGE_SIZE = 500


def sweep_start(
    views: Mapping[str, OrderView], order_ids: Iterable[str], overlap_seconds: float
) -> datetime | None:
    """When a sweep covering ``order_ids`` must start, or None if one cannot cover them all
    (an order never seen has no known submission time: it is read by id)."""
    starts = []
    for order_id in order_ids:
        view = views.get(order_id)
        submitted = view.snapshot.submitted_at if view is not None else None
        if submitted is None:
            return None
        starts.append(submitted)
    if not starts:
        return None
    return min(starts) - timedelta(seconds=overlap_seconds)


def fetch_sweep(
    sweeper: BrokerClient,
    recovery: ErrorRecoveryManager | None,
    after: datetime,
    *,
    pages: int,
    deadline: float,
) -> list[OrderSnapshot]:
    """Every order submitted after ``after``, oldest first, up to ``pages`` pages (blocking)."""
    found: list[OrderSnapshot] = []
    start = after
    for _page in range(pages):
        params = {
            "status": "all",
            "after": start.isoformat(),
            "direction": "asc",
            "limit": str(PAGE_SIZE),
        }
        fetch = functools.partial(sweeper.list_orders, params)
        rows = (
            recovery.call(fetch, deadline=deadline, stats=RetryStats(), priority="sweep")
            if recovery is not None
            else fetch()
        )
        page = [OrderSnapshot.from_any(r) for r in rows] if isinstance(rows, list) else []
        found.extend(page)
        if len(page) < PAGE_SIZE or page[-1].submitted_at is None:
            break
        start = page[-1].submitted_at
    return found


def connect_stream(
    tracker: Any, key_id: str, secret_key: str, base_url: str
) -> tuple[Any, Callable[[], None]]:
    """Subscribe ``tracker`` to the account's shared trade_updates stream: (stream, unsubscribe)."""
    from fillguard.stream import StreamState, shared_stream

    stream = shared_stream(key_id, secret_key, base_url, observer=tracker.observer)

    def on_event(event: Any) -> None:
        tracker.on_stream_event(
            Observation(
                snapshot=event.order,
                source="stream",
                at=tracker.clock.monotonic(),
                event=event.event,
                execution_id=event.execution_id,
                execution_qty=event.qty,
                position_qty=event.position_qty,
                event_time=event.timestamp,
            )
        )

    def on_gap(gap: Any) -> None:
        tracker.on_gap(gap.since_wall)

    def on_state(status: Any) -> None:
        tracker.on_stream_state(status.state is StreamState.LISTENING)

    return stream, stream.subscribe(on_event, on_gap=on_gap, on_state=on_state)
