"""JSON exactly as Alpaca sends it: numbers as strings, RFC 3339 timestamps, every key present."""

from __future__ import annotations

import functools
import random
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from fillguard.sim.assets import Asset
    from fillguard.sim.core import BrokerConfig
    from fillguard.sim.orders import Execution, SimOrder, SimPosition

__all__ = [
    "TIMESTAMP_STYLES",
    "account_json",
    "asset_json",
    "clock_json",
    "error_json",
    "execution_json",
    "num",
    "order_json",
    "pick_style",
    "position_json",
    "restyle",
    "ts",
    "ts_styled",
]

TimestampStyle = Literal["micro", "nanos", "offset", "mixed"]
TIMESTAMP_STYLES: tuple[str, ...] = ("micro", "nanos", "offset", "mixed")
_CONCRETE_STYLES = ("micro", "nanos", "offset")
_NEW_YORK = ZoneInfo("America/New_York")
# Keys whose values are timestamps, in every body the simulator writes (orders, events,
# activities, clock, account).
_TIMESTAMP_KEYS = frozenset(
    {
        "created_at",
        "updated_at",
        "submitted_at",
        "filled_at",
        "expired_at",
        "expires_at",
        "canceled_at",
        "failed_at",
        "replaced_at",
        "timestamp",
        "transaction_time",
        "next_open",
        "next_close",
    }
)


def num(value: Decimal | int | None) -> str | None:
    """A number as Alpaca writes it: a plain decimal string without exponent or trailing zeros."""
    if value is None:
        return None
    return _num(value)


# Listing 50 orders formats ~200 numbers and 150 timestamps that rarely change: cache them
# (equal values format alike, so keys by equality are safe; the caches are bounded).
@functools.lru_cache(maxsize=8192)
def _num(value: Decimal | int) -> str:
    d = Decimal(value)
    if d == d.to_integral_value():
        return str(d.quantize(Decimal(1)))
    return format(d.normalize(), "f")


def ts(value: datetime | None) -> str | None:
    """RFC 3339 in UTC with microseconds and a ``Z``."""
    if value is None:
        return None
    return _ts(value)


@functools.lru_cache(maxsize=8192)
def _ts(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _nanos_digits(dt: datetime) -> str:
    # Three more digits, fixed by the instant: Alpaca writes nanoseconds, we keep microseconds,
    # so a client that truncates (as alpaca-py does) reads back exactly our time.
    return f"{(dt.microsecond * 7919 + dt.second * 104729) % 1000:03d}"


def ts_styled(value: datetime | None, style: str) -> str | None:
    """A timestamp in one concrete style: ``micro`` (6 digits, ``Z``), ``nanos`` (9, ``Z``) or
    ``offset`` (9 digits with New York's UTC offset, as in ``-04:00``)."""
    if value is None:
        return None
    if style == "micro":
        return ts(value)
    if style == "nanos":
        utc = value.astimezone(UTC)
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%f") + _nanos_digits(utc) + "Z"
    if style == "offset":
        local = value.astimezone(_NEW_YORK)
        text = local.isoformat(timespec="microseconds")  # ...SS.ffffff-05:00
        return text[:-6] + _nanos_digits(local) + text[-6:]
    raise ValueError(f"unknown timestamp style {style!r}")


def pick_style(style: str, rng: random.Random) -> str:
    """The concrete style for one response or event: ``mixed`` draws one of the three."""
    return rng.choice(_CONCRETE_STYLES) if style == "mixed" else style


def _parse_micro(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def restyle(payload: Any, style: str) -> Any:
    """A copy of ``payload`` with every timestamp value rewritten in ``style`` (concrete)."""
    if style == "micro":
        return payload
    if isinstance(payload, list):
        return [restyle(item, style) for item in payload]
    if not isinstance(payload, dict):
        return payload
    out: dict[str, Any] = {}
    for key, value in payload.items():
        if key in _TIMESTAMP_KEYS and isinstance(value, str):
            parsed = _parse_micro(value)
            out[key] = ts_styled(parsed, style) if parsed is not None else value
        elif isinstance(value, dict | list):
            out[key] = restyle(value, style)
        else:
            out[key] = value
    return out


def order_json(
    order: SimOrder, *, hide_price: bool = False, legs: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """An order as GET /v2/orders/{id} returns it (``legs``: its legs, nested)."""
    avg = order.filled_avg_price
    # A notional order has no qty until its fill fixes it.
    qty = None if order.notional is not None and not order.executions else num(order.qty)
    return {
        "id": order.id,
        "client_order_id": order.client_order_id,
        "created_at": ts(order.created_at),
        "updated_at": ts(order.updated_at or order.created_at),
        "submitted_at": ts(order.created_at),
        "filled_at": ts(order.filled_at),
        "expired_at": ts(order.expired_at),
        "expires_at": None,
        "canceled_at": ts(order.canceled_at),
        "failed_at": ts(order.failed_at),
        "replaced_at": ts(order.replaced_at),
        "replaced_by": order.replaced_by,
        "replaces": order.replaces,
        "asset_id": order.asset_id,
        "symbol": order.symbol,
        "asset_class": order.asset_class,
        "notional": num(order.notional),
        "qty": qty,
        "filled_qty": num(order.filled_qty),
        "filled_avg_price": None if hide_price else num(avg),
        "order_class": order.order_class,
        "order_type": order.type,
        "type": order.type,
        "side": order.side,
        "position_intent": order.position_intent or _intent(order),
        "time_in_force": order.time_in_force,
        "limit_price": num(order.limit_price),
        "stop_price": num(order.stop_price),
        "status": order.status,
        "extended_hours": order.extended_hours,
        "legs": legs,
        "trail_percent": num(order.trail_percent),
        "trail_price": num(order.trail_price),
        "hwm": num(order.hwm),
        "subtag": None,
        "source": None,
        "expires_at_date": None,
    }


def _intent(order: SimOrder) -> str:
    return "buy_to_open" if order.side == "buy" else "sell_to_close"


def position_json(
    position: SimPosition,
    price: Decimal,
    *,
    available: Decimal | None = None,
    asset: Asset | None = None,
) -> dict[str, Any]:
    """A position as GET /v2/positions/{symbol} returns it (``available``: qty_available)."""
    qty = position.qty
    cost = (abs(qty) * position.avg_entry_price).quantize(Decimal("0.01"))
    market_value = (qty * price).quantize(Decimal("0.01"))
    pl = (market_value - (cost if qty > 0 else -cost)).quantize(Decimal("0.01"))
    plpc = (pl / cost).quantize(Decimal("0.0000001")) if cost else Decimal(0)
    crypto = asset is not None and asset.is_crypto
    return {
        "asset_id": position.asset_id,
        "symbol": asset.position_symbol if asset is not None else position.symbol,
        "exchange": asset.exchange if asset is not None else "NASDAQ",
        "asset_class": asset.asset_class if asset is not None else "us_equity",
        "asset_marginable": not crypto,
        "avg_entry_price": num(position.avg_entry_price),
        "qty": num(qty),
        "side": "long" if qty > 0 else "short",
        "market_value": num(market_value),
        "cost_basis": num(cost),
        "unrealized_pl": num(pl),
        "unrealized_plpc": num(plpc),
        "unrealized_intraday_pl": num(pl),
        "unrealized_intraday_plpc": num(plpc),
        "current_price": num(price),
        "lastday_price": num(price),
        "change_today": "0",
        "qty_available": num(qty if available is None else (available if qty > 0 else -available)),
    }


def account_json(
    config: BrokerConfig,
    *,
    cash: Decimal,
    buying_power: Decimal,
    long_market_value: Decimal,
    short_market_value: Decimal,
) -> dict[str, Any]:
    """The account as GET /v2/account returns it."""
    equity = (cash + long_market_value + short_market_value).quantize(Decimal("0.01"))
    cash_s = num(cash.quantize(Decimal("0.01")))
    return {
        "id": config.account_id,
        "account_number": config.account_number,
        "status": "ACTIVE",
        "crypto_status": "INACTIVE",
        "currency": "USD",
        "buying_power": num(buying_power),
        "regt_buying_power": num(buying_power),
        "daytrading_buying_power": "0",
        "non_marginable_buying_power": num(buying_power),
        "options_buying_power": num(buying_power),
        "cash": cash_s,
        "accrued_fees": "0",
        "pending_transfer_out": None,
        "pending_transfer_in": "0",
        "portfolio_value": num(equity),
        "pattern_day_trader": False,
        "trading_blocked": False,
        "transfers_blocked": False,
        "account_blocked": False,
        "created_at": "2026-01-02T00:00:00Z",
        "trade_suspended_by_user": False,
        "multiplier": "1",
        "shorting_enabled": config.allow_shorting,
        "equity": num(equity),
        "last_equity": num(config.starting_cash),
        "long_market_value": num(long_market_value.quantize(Decimal("0.01"))),
        "short_market_value": num(short_market_value.quantize(Decimal("0.01"))),
        "initial_margin": "0",
        "maintenance_margin": "0",
        "last_maintenance_margin": "0",
        "sma": "0",
        "daytrade_count": 0,
        "options_approved_level": 0,
        "options_trading_level": 0,
    }


def execution_json(execution: Execution) -> dict[str, Any]:
    """An execution as a FILL account activity (GET /v2/account/activities/FILL)."""
    stamp = execution.timestamp.astimezone(UTC).strftime("%Y%m%d%H%M%S%f")[:17]
    return {
        "id": f"{stamp}::{execution.execution_id}",
        "activity_type": "FILL",
        "transaction_time": ts(execution.timestamp),
        "type": "fill" if execution.leaves_qty == 0 else "partial_fill",
        "price": num(execution.price),
        "qty": num(execution.qty),
        "side": execution.side,
        "symbol": execution.symbol,
        "leaves_qty": num(execution.leaves_qty),
        "order_id": execution.order_id,
        "cum_qty": num(execution.cum_qty),
        "order_status": execution.order_status,
        "execution_id": execution.execution_id,
        "position_qty": num(execution.position_qty),
    }


def asset_json(asset: Asset) -> dict[str, Any]:
    """An asset as GET /v2/assets/{symbol} returns it."""
    crypto = asset.is_crypto
    view: dict[str, Any] = {
        "id": asset.id,
        "class": asset.asset_class,
        "exchange": asset.exchange,
        "symbol": asset.symbol,
        "name": f"{asset.symbol} (simulated)",
        "status": "active",
        "tradable": True,
        "marginable": not crypto,
        "shortable": asset.shortable,
        "easy_to_borrow": asset.easy_to_borrow,
        "fractionable": asset.fractionable,
        "maintenance_margin_requirement": 100 if crypto else 30,
        "margin_requirement_long": "100" if crypto else "30",
        "margin_requirement_short": "100" if crypto else "30",
        "attributes": ["fractional_eh_enabled"] if asset.fractionable and not crypto else [],
    }
    # Alpaca writes the increments only where they apply (crypto pairs), never as null.
    for name in ("min_order_size", "min_trade_increment", "price_increment"):
        value = getattr(asset, name)
        if value is not None:
            view[name] = num(value)
    return view


def clock_json(now: datetime, *, always_open: bool = False) -> dict[str, Any]:
    """GET /v2/clock in New York time, as Alpaca writes it (``-05:00``/``-04:00``)."""
    from fillguard.sim.market_clock import clock_at

    values = clock_at(now, always_open=always_open)
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key == "timestamp" and isinstance(value, datetime):
            out[key] = ts_styled(value, "offset")  # ...T10:15:30.123456789-04:00
        elif isinstance(value, datetime):
            out[key] = value.astimezone(_NEW_YORK).isoformat(timespec="seconds")
        else:
            out[key] = value
    return out


def error_json(code: int, message: str, **extra: Any) -> dict[str, Any]:
    """Alpaca's error body."""
    return {**extra, "code": code, "message": message}
