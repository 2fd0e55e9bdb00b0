"""A trade as the caller asked for it: :class:`OrderIntent`, validated before any request.

:func:`validate_intent` checks every argument and raises
:class:`~fillguard.errors.InvalidInputError` naming the field; nothing is sent for bad input.
The intent knows the exact body it is sent as (:meth:`OrderIntent.wire_body`, decimal strings)
and whether an order the broker holds under its ``client_order_id`` is really it
(:meth:`OrderIntent.compare`): a reused id must never make someone else's order ours.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from fillguard.errors import InvalidInputError
from fillguard.snapshot import OrderSnapshot, to_decimal

__all__ = [
    "MAX_CLIENT_ORDER_ID",
    "IdFactory",
    "IntentMatch",
    "OrderIntent",
    "new_client_order_id",
    "validate_intent",
]

#: Alpaca allows client order ids of up to 128 characters.
MAX_CLIENT_ORDER_ID = 128
#: Makes a fresh ``client_order_id``; injectable so tests and journals control ids.
IdFactory = Callable[[], str]

_SYMBOL = re.compile(r"^[A-Z][A-Z0-9.]{0,9}$")
_SIDES = ("buy", "sell")
_TYPES = ("market", "limit", "stop", "stop_limit")
_TIFS = ("day", "gtc", "ioc", "fok")
_QTY_QUANTUM = Decimal("0.000000001")


def new_client_order_id() -> str:
    """The default id factory: a random UUID4."""
    return str(uuid.uuid4())


def _text(value: Decimal | None) -> str | None:
    # format(..., "f") never writes an exponent: 1E+1 would be sent as "10".
    return None if value is None else format(value.normalize(), "f")


@dataclass(frozen=True, slots=True)
class IntentMatch:
    """How a broker order compares with the intent: the same, different, or not readable."""

    verdict: Literal["same", "different", "incomplete"]
    fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """One validated trade: what will be sent, under which ``client_order_id``."""

    client_order_id: str
    symbol: str
    side: str
    qty: Decimal
    order_type: str
    time_in_force: str
    limit_price: Decimal | None = None
    expected_price: Decimal | None = None
    created_at: datetime | None = None
    stop_price: Decimal | None = None
    # A notional market order: the dollar amount; qty is 0 here (the fill fixes it, and the
    # book takes the filled quantity from the broker's order).
    notional: Decimal | None = None

    def wire_body(self) -> dict[str, str]:
        """The POST /v2/orders body: every number an exact decimal string."""
        size = ("notional", self.notional) if self.notional is not None else ("qty", self.qty)
        body = {
            "symbol": self.symbol,
            size[0]: _text(size[1]) or "0",
            "side": self.side,
            "type": self.order_type,
            "time_in_force": self.time_in_force,
            "client_order_id": self.client_order_id,
        }
        if self.limit_price is not None:
            body["limit_price"] = _text(self.limit_price) or "0"
        if self.stop_price is not None:
            body["stop_price"] = _text(self.stop_price) or "0"
        return body

    def compare(self, order: OrderSnapshot) -> IntentMatch:
        """Whether ``order`` (found under our ``client_order_id``) is this trade.

        ``different`` names the fields that differ; ``incomplete`` names the fields the read
        lacks (read again before deciding). Only a ``same`` order may be booked as ours.
        """
        wanted: tuple[tuple[str, object, object], ...] = (
            ("symbol", self.symbol, (order.symbol or "").upper() or None),
            ("side", self.side, order.side),
            ("order_type", self.order_type, order.order_type),
            ("time_in_force", self.time_in_force, order.time_in_force),
        )
        if self.notional is None:  # a notional order's qty is only known once it fills
            wanted = (*wanted, ("qty", self.qty, order.qty))
        missing = tuple(name for name, _mine, theirs in wanted if theirs is None)
        different = [name for name, mine, theirs in wanted if theirs is not None and mine != theirs]
        if self.limit_price != order.limit_price and (
            self.limit_price is not None or order.limit_price is not None
        ):
            different.append("limit_price")
        if self.stop_price is not None and order.stop_price not in (None, self.stop_price):
            different.append("stop_price")
        if order.client_order_id is not None and order.client_order_id != self.client_order_id:
            different.append("client_order_id")
        if different:
            return IntentMatch("different", tuple(different))
        if missing:
            return IntentMatch("incomplete", missing)
        return IntentMatch("same")

    def to_log_dict(self) -> dict[str, Any]:
        """Plain values for a log line."""
        return {
            "client_order_id": self.client_order_id,
            "symbol": self.symbol,
            "side": self.side,
            "qty": self.qty,
            "order_type": self.order_type,
            "limit_price": self.limit_price,
            "stop_price": self.stop_price,
            "notional": self.notional,
            "time_in_force": self.time_in_force,
            "expected_price": self.expected_price,
        }


def validate_intent(
    symbol: Any,
    side: Any,
    qty: Any,
    *,
    order_type: Any = "market",
    limit_price: Any = None,
    time_in_force: Any = "day",
    expected_price: Any = None,
    client_order_id: Any = None,
    id_factory: IdFactory = new_client_order_id,
    created_at: datetime | None = None,
    stop_price: Any = None,
    notional: Any = None,
) -> OrderIntent:
    """Check every argument; raise :class:`InvalidInputError` naming the field. No I/O.

    ``qty`` or (for a market day order) ``notional``, exactly one; ``stop_price`` for stop and
    stop_limit orders, ``limit_price`` for limit and stop_limit orders.
    """
    if not isinstance(symbol, str) or not _SYMBOL.match(symbol.strip().upper()):
        raise InvalidInputError(
            "symbol", f"must be a ticker like 'AAPL' (letters, digits, '.'), got {symbol!r}"
        )
    side_s = _enum_text(side)
    if side_s not in _SIDES:
        raise InvalidInputError("side", f"must be 'buy' or 'sell', got {side!r}")
    if (qty is None) == (notional is None):
        raise InvalidInputError("qty", "give exactly one of qty or notional")
    notional_d: Decimal | None = None
    if notional is not None:
        notional_d = _positive(notional, "notional")
        if notional_d < 1 or notional_d != notional_d.quantize(Decimal("0.01")):
            raise InvalidInputError("notional", f"at least 1, in cents, got {notional!r}")
        if notional_d > Decimal(10**9):
            raise InvalidInputError("notional", f"must be at most 1,000,000,000, got {notional!r}")
    qty_d = _positive(qty, "qty") if qty is not None else Decimal(0)
    if qty_d != qty_d.quantize(_QTY_QUANTUM):
        raise InvalidInputError("qty", f"at most 9 decimal places, got {qty!r}")
    if qty_d > Decimal(10**9):
        raise InvalidInputError("qty", f"must be at most 1,000,000,000, got {qty!r}")
    type_s = _enum_text(order_type)
    if type_s not in _TYPES:
        raise InvalidInputError(
            "order_type", f"must be one of {', '.join(_TYPES)}, got {order_type!r}"
        )
    tif_s = _enum_text(time_in_force)
    if tif_s not in _TIFS:
        raise InvalidInputError(
            "time_in_force", f"must be one of {', '.join(_TIFS)}, got {time_in_force!r}"
        )
    limit: Decimal | None = None
    if type_s in ("limit", "stop_limit"):
        if limit_price is None:
            raise InvalidInputError("limit_price", f"a {type_s} order needs a limit_price")
        limit = _positive(limit_price, "limit_price")
    elif limit_price is not None:
        raise InvalidInputError("limit_price", f"a {type_s} order takes no limit_price")
    stop: Decimal | None = None
    if type_s in ("stop", "stop_limit"):
        if stop_price is None:
            raise InvalidInputError("stop_price", f"a {type_s} order needs a stop_price")
        stop = _positive(stop_price, "stop_price")
        if tif_s not in ("day", "gtc"):
            raise InvalidInputError("time_in_force", f"a {type_s} order must be 'day' or 'gtc'")
    elif stop_price is not None:
        raise InvalidInputError("stop_price", f"a {type_s} order takes no stop_price")
    if notional_d is not None and (type_s != "market" or tif_s != "day"):
        raise InvalidInputError("notional", "notional orders must be 'market' 'day' orders")
    if qty_d != qty_d.to_integral_value() and tif_s != "day":
        raise InvalidInputError("time_in_force", "fractional quantities must be 'day' orders")
    expected = None if expected_price is None else _positive(expected_price, "expected_price")
    coid = id_factory() if client_order_id is None else client_order_id
    if (
        not isinstance(coid, str)
        or not 0 < len(coid) <= MAX_CLIENT_ORDER_ID
        or not coid.isprintable()
        or coid != coid.strip()
    ):
        raise InvalidInputError(
            "client_order_id",
            f"must be a string of 1 to {MAX_CLIENT_ORDER_ID} printable characters "
            "without surrounding spaces",
        )
    return OrderIntent(
        client_order_id=coid,
        symbol=symbol.strip().upper(),
        side=side_s,
        qty=qty_d,
        order_type=type_s,
        time_in_force=tif_s,
        limit_price=limit,
        expected_price=expected,
        created_at=created_at,
        stop_price=stop,
        notional=notional_d,
    )


def _enum_text(value: Any) -> str:
    text = getattr(value, "value", value)
    return text.strip().lower() if isinstance(text, str) else ""


def _positive(value: Any, name: str) -> Decimal:
    if isinstance(value, bool):
        raise InvalidInputError(name, f"must be a number, got {value!r}")
    number = to_decimal(value)
    if number is None:
        raise InvalidInputError(name, f"must be a finite number, got {value!r}")
    if number <= 0:
        raise InvalidInputError(name, f"must be > 0, got {value!r}")
    return number
