"""The legacy fill loop, kept as the rollback path and the benchmark baseline.

It polls ``get_order_by_id`` at a fixed interval until the status is ``filled`` with a price,
or the timeout passes; it does not verify, follow replacements or cancel. It is naive on
purpose, but it keeps the executor's promises: it never raises, never reports a fill the record
does not support, and says whether the order may still fill (``order_open``) so the executor
keeps tracking it and books its later fills.
"""

from __future__ import annotations

import logging
from typing import Any

from fillguard.clock import Clock
from fillguard.logs import log_event
from fillguard.observer import NULL_OBSERVER, Observer
from fillguard.results import FillResult, FillStatus
from fillguard.snapshot import OrderSnapshot
from fillguard.waiting import pause

__all__ = ["legacy_wait_for_fill"]

_logger = logging.getLogger("fillguard.legacy")


def legacy_wait_for_fill(
    client: Any,
    clock: Clock,
    order_id: str,
    *,
    timeout_seconds: float,
    poll_interval_seconds: float,
    client_order_id: str | None = None,
    logger: logging.Logger | None = None,
    observer: Observer = NULL_OBSERVER,
) -> FillResult:
    """Poll until ``filled`` with a price or ``timeout_seconds``; never raises."""
    result = _poll(
        client, clock, order_id, timeout_seconds, poll_interval_seconds, client_order_id, logger
    )
    observer.fill_detection(result.status.value, result.elapsed_seconds)
    return result


def _poll(
    client: Any,
    clock: Clock,
    order_id: str,
    timeout_seconds: float,
    poll_interval_seconds: float,
    client_order_id: str | None,
    logger: logging.Logger | None,
) -> FillResult:
    log = logger or _logger
    start = clock.monotonic()
    deadline = start + timeout_seconds
    calls = 0
    snap = OrderSnapshot(order_id=order_id)
    status = FillStatus.TIMEOUT
    while True:
        calls += 1
        try:
            snap = OrderSnapshot.from_any(client.get_order_by_id(order_id))
        except Exception as exc:  # the legacy loop's policy: log and poll again
            log_event(
                log,
                logging.WARNING,
                "legacy_poll_error",
                order_id=order_id,
                error_type=type(exc).__name__,
            )
        if snap.status == "filled" and snap.filled_avg_price is not None:
            status = FillStatus.FILLED
            break
        if pause(clock, poll_interval_seconds, deadline=deadline) <= 0:
            break
    unsure = snap.status is None or not (snap.is_terminal or snap.is_open)
    fields: dict[str, Any] = {
        "order_id": order_id,
        "client_order_id": snap.client_order_id or client_order_id,
        "symbol": snap.symbol,
        "side": snap.side,
        "requested_qty": snap.qty,
        "filled_qty": snap.filled_qty,
        "fill_price": snap.filled_avg_price if snap.filled_qty > 0 else None,
        "filled_at": snap.filled_at,
        "detection_method": "legacy_polling",
        "verification": None,
        "elapsed_seconds": clock.monotonic() - start,
        "api_calls": calls,
        "retries": 0,
        "slippage_pct": None,
        "slippage_exceeded": False,
    }
    try:
        return FillResult(
            filled=status is FillStatus.FILLED,
            status=status,
            order_open=status is not FillStatus.FILLED and (unsure or not snap.is_terminal),
            **fields,
        )
    except ValueError as err:  # "filled" without a quantity: the record is half written
        return FillResult(
            filled=False,
            status=FillStatus.UNKNOWN,
            order_open=True,
            error=f"inconsistent broker state: {err}",
            **fields,
        )
