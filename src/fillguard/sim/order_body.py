"""Validation of a ``POST /v2/orders`` body, with Alpaca's 422 messages.

Every order type (market, limit, stop, stop_limit, trailing_stop), qty or notional, the order
classes (simple, bracket, oco, oto) with ``take_profit``/``stop_loss``, time in force
(day, gtc, opg, cls, ioc, fok), ``extended_hours`` and ``position_intent``. What depends on the
broker's state (the asset, prices, the session, funds) is checked by the broker.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fillguard.sim.state import OrderRequest
from fillguard.sim.validation import (
    SYMBOL,
    _body,
    _client_order_id,
    _qty,
    invalid,
    parse_decimal,
)

__all__ = ["parse_order_request"]

_TYPES = ("market", "limit", "stop", "stop_limit", "trailing_stop")
_TIFS = ("day", "gtc", "opg", "cls", "ioc", "fok")
_INTENTS = ("buy_to_open", "buy_to_close", "sell_to_open", "sell_to_close")
_CRYPTO_SYMBOL = r"^[A-Z0-9]{1,10}/[A-Z]{3,4}$"


def _price(value: Any, name: str, *, crypto: bool = False) -> Decimal:
    """A positive, bounded price; equities' at or above $1 in cents, below in 1/100 cent."""
    price = parse_decimal(value, name)
    if price <= 0 or price > Decimal(10**7):
        raise invalid(f"{name} must be > 0")
    quantum = (
        Decimal("0.000000001") if crypto else (Decimal("0.01") if price >= 1 else Decimal("0.0001"))
    )
    if price != price.quantize(quantum):
        raise invalid(
            f"invalid {name} {price}. sub-penny increment does not fulfill minimum pricing criteria"
        )
    return price


def _symbol(data: dict[str, Any]) -> str:
    import re

    symbol = data.get("symbol")
    if not isinstance(symbol, str) or not symbol:
        raise invalid("symbol is required")
    symbol = symbol.upper()
    if not (SYMBOL.fullmatch(symbol) or re.fullmatch(_CRYPTO_SYMBOL, symbol)):
        raise invalid(f"could not find us_equity '{symbol}'")
    return symbol


def _trail(data: dict[str, Any]) -> tuple[Decimal | None, Decimal | None]:
    price, percent = data.get("trail_price"), data.get("trail_percent")
    if (price is None) == (percent is None):
        raise invalid("trailing_stop orders require exactly one of trail_price or trail_percent")
    if price is not None:
        value = parse_decimal(price, "trail_price")
        if value <= 0 or value > Decimal(10**7):
            raise invalid("trail_price must be > 0")
        return value, None
    pct = parse_decimal(percent, "trail_percent")
    if not 0 < pct < 100 or pct != pct.quantize(Decimal("0.01")):
        raise invalid("trail_percent must be > 0 and < 100, with at most 2 decimals")
    return None, pct


def _legs(
    data: dict[str, Any], order_class: str
) -> tuple[Decimal | None, tuple[Decimal, Decimal | None] | None]:
    tp_raw, sl_raw = data.get("take_profit"), data.get("stop_loss")
    take_profit: Decimal | None = None
    stop_loss: tuple[Decimal, Decimal | None] | None = None
    if tp_raw is not None:
        if not isinstance(tp_raw, dict) or tp_raw.get("limit_price") is None:
            raise invalid(f"{order_class} orders require take_profit.limit_price")
        take_profit = _price(tp_raw["limit_price"], "take_profit.limit_price")
    if sl_raw is not None:
        if not isinstance(sl_raw, dict) or sl_raw.get("stop_price") is None:
            raise invalid(f"{order_class} orders require stop_loss.stop_price")
        limit = sl_raw.get("limit_price")
        stop_loss = (
            _price(sl_raw["stop_price"], "stop_loss.stop_price"),
            _price(limit, "stop_loss.limit_price") if limit is not None else None,
        )
    if order_class in ("bracket", "oco") and (take_profit is None or stop_loss is None):
        missing = "take_profit.limit_price" if take_profit is None else "stop_loss.stop_price"
        raise invalid(f"{order_class} orders require {missing}")
    if order_class == "oto" and (take_profit is None) == (stop_loss is None):
        raise invalid("oto orders require exactly one of take_profit or stop_loss")
    return take_profit, stop_loss


def parse_order_request(body: bytes) -> OrderRequest:
    """Validate a POST /v2/orders body, raising 422 :class:`SimError` with Alpaca's messages."""
    data = _body(body)
    symbol = _symbol(data)
    side = data.get("side")
    if side not in ("buy", "sell"):
        raise invalid(f"invalid side: {side!r}" if side is not None else "side is required")
    order_type = data.get("type", data.get("order_type"))
    if order_type not in _TYPES:
        raise invalid(f"invalid order type: {order_type!r}" if order_type else "type is required")
    tif = data.get("time_in_force")
    if tif not in _TIFS:
        raise invalid(f"invalid time_in_force: {tif!r}" if tif else "time_in_force is required")
    order_class = data.get("order_class") or ""
    if order_class == "simple":
        order_class = ""
    if order_class not in ("", "bracket", "oco", "oto"):
        raise invalid(f"invalid order_class: {order_class!r}")
    has_qty, has_notional = data.get("qty") is not None, data.get("notional") is not None
    if has_qty == has_notional:
        raise invalid(
            "qty or notional is required"
            if not has_qty
            else "only one of qty or notional is accepted"
        )
    qty, notional = Decimal(0), None
    if has_qty:
        qty = _qty(data["qty"])
    else:
        notional = parse_decimal(data["notional"], "notional")
        if (
            notional < 1
            or notional > Decimal(10**9)
            or notional != notional.quantize(Decimal("0.01"))
        ):
            raise invalid("notional must be >= 1 with at most 2 decimals")
        if order_type != "market" or (tif != "day" and "/" not in symbol):
            raise invalid("notional orders must be DAY market orders")
    fractional = notional is not None or qty != qty.to_integral_value()
    if "/" in symbol:
        if tif not in ("gtc", "ioc"):
            raise invalid(f"invalid crypto time_in_force: {tif}")
    elif fractional and tif != "day":
        raise invalid("fractional orders must be DAY orders")
    limit_price = stop_price = trail_price = trail_percent = None
    crypto = "/" in symbol
    if order_type == "market" and (
        data.get("limit_price") is not None or data.get("stop_price") is not None
    ):
        raise invalid("market orders require no stop or limit price")
    if order_type in ("limit", "stop_limit") or (order_class == "oco" and order_type == "limit"):
        raw = data.get("limit_price")
        if raw is None and order_class == "oco":
            raw = (data.get("take_profit") or {}).get("limit_price")
        if raw is None:
            raise invalid(f"{order_type} orders require a limit_price")
        limit_price = _price(raw, "limit_price", crypto=crypto)
    elif data.get("limit_price") is not None:
        raise invalid(f"{order_type} orders require no limit price")
    if order_type in ("stop", "stop_limit"):
        if data.get("stop_price") is None:
            raise invalid(f"{order_type} orders require a stop_price")
        stop_price = _price(data["stop_price"], "stop_price", crypto=crypto)
    elif data.get("stop_price") is not None:
        raise invalid(f"{order_type} orders require no stop price")
    if order_type == "trailing_stop":
        trail_price, trail_percent = _trail(data)
        if tif not in ("day", "gtc"):
            raise invalid("trailing_stop orders must be day or gtc")
    elif data.get("trail_price") is not None or data.get("trail_percent") is not None:
        raise invalid("trail_price and trail_percent are only for trailing_stop orders")
    if order_type in ("stop", "stop_limit") and tif in ("ioc", "fok") and "/" not in symbol:
        raise invalid(f"{order_type} orders must be day or gtc")
    take_profit, stop_loss = None, None
    if order_class:
        if tif not in ("day", "gtc"):
            raise invalid(f"{order_class} orders must be day or gtc")
        if fractional:
            raise invalid(f"fractional orders are not supported for {order_class} orders")
        if order_class == "oco" and order_type != "limit":
            raise invalid("oco orders must be limit orders")
        if order_type == "trailing_stop":
            raise invalid(f"{order_class} orders do not support trailing_stop entries")
        take_profit, stop_loss = _legs(data, order_class)
    elif data.get("take_profit") is not None or data.get("stop_loss") is not None:
        raise invalid("take_profit and stop_loss need order_class bracket, oco or oto")
    extended = data.get("extended_hours", False)
    if not isinstance(extended, bool):
        raise invalid("extended_hours must be a boolean")
    if extended and (order_type != "limit" or tif != "day" or order_class):
        raise invalid("extended hours order must be DAY limit orders", 42210000)
    intent = data.get("position_intent")
    if intent is not None and intent not in _INTENTS:
        raise invalid(f"invalid position_intent: {intent!r}")
    if intent is not None and not intent.startswith(side):
        raise invalid(f"position_intent {intent} does not match side {side}")
    return OrderRequest(
        symbol=symbol,
        side=side,
        type=order_type,
        time_in_force=tif,
        qty=qty,
        limit_price=limit_price,
        client_order_id=_client_order_id(data.get("client_order_id")),
        extended_hours=extended,
        stop_price=stop_price,
        trail_price=trail_price,
        trail_percent=trail_percent,
        notional=notional,
        order_class=order_class,
        take_profit=take_profit,
        stop_loss=stop_loss,
        position_intent=intent,
    )
