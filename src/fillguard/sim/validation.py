"""Validation of order bodies (POST and PATCH) and query values, with Alpaca's 422 messages."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from fillguard.sim.replace import ReplaceRequest
from fillguard.sim.state import SimError

__all__ = [
    "MAX_CLIENT_ORDER_ID",
    "SYMBOL",
    "invalid",
    "parse_bool",
    "parse_decimal",
    "parse_replace_request",
    "parse_time",
]

SYMBOL = re.compile(r"^[A-Z][A-Z0-9.]{0,9}$")
MAX_CLIENT_ORDER_ID = 128
_QTY_QUANTUM = Decimal("0.000000001")


def invalid(message: str, code: int = 40010001) -> SimError:
    """A 422 with Alpaca's validation code."""
    return SimError(422, code, message)


def parse_decimal(value: Any, name: str) -> Decimal:
    """A finite number from a JSON number or numeric string, else 422 ``invalid <name>``."""
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        raise invalid(f"invalid {name}")
    try:
        d = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise invalid(f"invalid {name}") from None
    if not d.is_finite():
        raise invalid(f"invalid {name}")
    return d


def _body(body: bytes, *, empty_ok: bool = False) -> dict[str, Any]:
    if empty_ok and not body.strip():
        return {}
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: JSON nested too deep
        raise invalid("request body format is invalid", 40010000) from None
    if not isinstance(data, dict):
        raise invalid("request body format is invalid", 40010000)
    return data


def _qty(value: Any) -> Decimal:
    qty = parse_decimal(value, "qty")
    if qty <= 0:
        raise invalid("qty must be > 0")
    # Bound first: quantizing a huge qty (1e30) raises InvalidOperation, which was a 500.
    if qty > Decimal(10**9) or qty != qty.quantize(_QTY_QUANTUM):
        raise invalid("qty must have at most 9 decimal places and be at most 1e9")
    return qty


def _limit_price(value: Any, name: str = "limit_price") -> Decimal:
    limit_price = parse_decimal(value, name)
    if limit_price <= 0 or limit_price > Decimal(10**7):
        raise invalid(f"{name} must be > 0")
    quantum = Decimal("0.01") if limit_price >= 1 else Decimal("0.0001")
    if limit_price != limit_price.quantize(quantum):
        raise invalid(
            f"invalid {name} {limit_price}. "
            "sub-penny increment does not fulfill minimum pricing criteria"
        )
    return limit_price


def _tif(value: Any) -> str:
    if value not in ("day", "gtc", "ioc", "fok"):
        raise invalid(f"invalid time_in_force: {value!r}" if value else "time_in_force is required")
    return str(value)


def _client_order_id(value: Any) -> str | None:
    if value is not None and (
        not isinstance(value, str) or not value or len(value) > MAX_CLIENT_ORDER_ID
    ):
        raise invalid(f"client_order_id must be a string of 1 to {MAX_CLIENT_ORDER_ID} characters")
    return value


def parse_replace_request(body: bytes) -> ReplaceRequest:
    """Validate a PATCH /v2/orders/{id} body (every field optional; an empty body keeps all).

    What depends on the order being replaced (a limit price on a market order, a fractional
    qty with a non-day time in force) is checked by the broker.
    """
    data = _body(body, empty_ok=True)
    stop, trail = data.get("stop_price"), data.get("trail")
    qty = data.get("qty")
    limit = data.get("limit_price")
    tif = data.get("time_in_force")
    return ReplaceRequest(
        qty=_qty(qty) if qty is not None else None,
        limit_price=_limit_price(limit) if limit is not None else None,
        time_in_force=_tif(tif) if tif is not None else None,
        client_order_id=_client_order_id(data.get("client_order_id")),
        stop_price=_limit_price(stop, "stop_price") if stop is not None else None,
        trail=_positive(trail, "trail") if trail is not None else None,
    )


def _positive(value: Any, name: str) -> Decimal:
    number = parse_decimal(value, name)
    if number <= 0 or number > Decimal(10**7):
        raise invalid(f"{name} must be > 0")
    return number


def parse_time(value: str, name: str) -> datetime:
    """A query timestamp (``+`` may arrive as a space), UTC when naive; else 422."""
    text = value.strip().replace(" ", "+")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise invalid(f"invalid {name}: {value}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def parse_bool(value: str | None, name: str) -> bool | None:
    """A query boolean (``True``/``true``/``1``, ``False``/``false``/``0``) or None; else 422."""
    if value is None:
        return None
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise invalid(f"invalid {name}: {value}")
