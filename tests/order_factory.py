"""Orders in every shape fill detection meets: alpaca-py models, raw dicts, plain objects."""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any

from alpaca.trading.models import Order

SUBMITTED = "2026-01-05T14:30:00.123456789Z"


def order_dict(**fields: Any) -> dict[str, Any]:
    """A raw order JSON object like GET /v2/orders/{id} returns, with ``fields`` overriding."""
    data: dict[str, Any] = {
        "id": str(uuid.UUID(int=1)),
        "client_order_id": "fg-1",
        "created_at": SUBMITTED,
        "updated_at": SUBMITTED,
        "submitted_at": SUBMITTED,
        "filled_at": None,
        "expired_at": None,
        "canceled_at": None,
        "failed_at": None,
        "asset_id": str(uuid.UUID(int=2)),
        "symbol": "AAPL",
        "asset_class": "us_equity",
        "notional": None,
        "qty": "10",
        "filled_qty": "0",
        "filled_avg_price": None,
        "order_class": "",
        "order_type": "market",
        "type": "market",
        "side": "buy",
        "time_in_force": "day",
        "limit_price": None,
        "stop_price": None,
        "status": "new",
        "extended_hours": False,
        "legs": None,
    }
    data.update(fields)
    return data


def order_model(**fields: Any) -> Order:
    """A real alpaca-py ``Order`` built from :func:`order_dict`."""
    return Order(**order_dict(**fields))


def order_object(**fields: Any) -> SimpleNamespace:
    """A plain attribute object with the same fields."""
    return SimpleNamespace(**order_dict(**fields))
