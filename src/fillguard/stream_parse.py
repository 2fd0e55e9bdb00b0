"""Tolerant parsing of trade_updates frames into immutable values (no I/O).

A frame is JSON in a text or binary websocket frame (Alpaca's paper endpoint sends binary).
:func:`parse_frame` turns one frame into exactly one of:

- :class:`TradeEvent`: a ``trade_updates`` message with a known event and an order;
- :class:`Control`: a message of another stream (``authorization``, ``listening``, ``error``);
- :class:`Skipped`: anything else, with the kind it is counted under (:data:`SKIP_KINDS`).

It never raises, whatever the bytes: a bad frame must cost one counter, never the loop.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final, Literal

from fillguard.snapshot import OrderSnapshot, parse_timestamp, to_decimal

__all__ = [
    "KNOWN_EVENTS",
    "SKIP_KINDS",
    "TRADE_UPDATES",
    "Control",
    "Gap",
    "Parsed",
    "SkipKind",
    "Skipped",
    "TradeEvent",
    "parse_frame",
]

TRADE_UPDATES: Final = "trade_updates"

#: Every trade_updates event type Alpaca documents (Trading API docs and alpaca-py's enum), plus
#: the Broker API's ``restated``/``trade_bust``/``trade_correct`` and 2026's ``accepted``.
KNOWN_EVENTS: frozenset[str] = frozenset(
    {
        "new",
        "fill",
        "partial_fill",
        "canceled",
        "expired",
        "done_for_day",
        "replaced",
        "rejected",
        "pending_new",
        "stopped",
        "pending_cancel",
        "pending_replace",
        "calculated",
        "suspended",
        "order_replace_rejected",
        "order_cancel_rejected",
        "accepted",
        "restated",
        "trade_bust",
        "trade_correct",
    }
)

SkipKind = Literal["malformed", "null", "unknown", "no_order", "other_stream"]
#: What a skipped frame is counted as: not JSON / not an object / no stream name
#: (``malformed``), ``data: null`` (``null``), an event type not in :data:`KNOWN_EVENTS`
#: (``unknown``), an event without a usable order (``no_order``), a message of a stream
#: this client does not handle (``other_stream``).
SKIP_KINDS: tuple[SkipKind, ...] = ("malformed", "null", "unknown", "no_order", "other_stream")

# Numbers that arrive as JSON numbers become Decimal, never float. One decoder for every frame:
# json.loads with a keyword builds a new decoder each call.
_DECODER = json.JSONDecoder(parse_float=Decimal)

_CONTROL_STREAMS: frozenset[str] = frozenset({"authorization", "listening", "error"})


@dataclass(frozen=True, slots=True)
class TradeEvent:
    """One trade update: the event, the order as it was then, and per-execution values.

    ``qty`` and ``price`` describe this execution on ``fill``/``partial_fill`` (cumulative
    values are ``order.filled_qty``/``order.filled_avg_price``); ``position_qty`` is the
    signed position after it. ``received_monotonic`` is this process's clock at receipt;
    ``raw`` is the message's ``data`` object, read-only.
    """

    event: str
    order: OrderSnapshot
    execution_id: str | None
    qty: Decimal | None
    price: Decimal | None
    position_qty: Decimal | None
    timestamp: datetime | None
    received_monotonic: float
    raw: Mapping[str, Any]

    @property
    def order_id(self) -> str | None:
        """The broker's order id."""
        return self.order.order_id

    @property
    def client_order_id(self) -> str | None:
        """The order's ``client_order_id``."""
        return self.order.client_order_id

    @property
    def is_fill(self) -> bool:
        """Whether this event reports an execution (``fill`` or ``partial_fill``)."""
        return self.event in ("fill", "partial_fill")


@dataclass(frozen=True, slots=True)
class Gap:
    """A window in which trade events may have been missed (repair it with a REST sweep).

    ``since_wall`` is when the stream object started (first connect) or, on a reconnect, when
    the last frame arrived before the connection dropped, or the broker's timestamp of the last
    event received if that is earlier (events sent after it were in flight); ``until_wall`` is
    when listening resumed. Times are this process's wall clock (and the broker's, for that
    timestamp): a sweep should reach back a little further for clock skew and for events the
    broker itself sent late.
    """

    since_wall: datetime
    until_wall: datetime
    reconnect: bool

    @property
    def seconds(self) -> float:
        """The window's length."""
        return (self.until_wall - self.since_wall).total_seconds()


@dataclass(frozen=True, slots=True)
class Control:
    """A message of a control stream: ``authorization``, ``listening`` or ``error``."""

    stream: str
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Skipped:
    """A frame that carries nothing to deliver, and why."""

    kind: SkipKind
    reason: str


Parsed = TradeEvent | Control | Skipped


def _text(value: object) -> str | None:
    if isinstance(value, str):
        text = value.strip()
        return text or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def parse_frame(frame: str | bytes | bytearray | memoryview, received_monotonic: float) -> Parsed:
    """Read one websocket frame; never raises."""
    try:
        text = frame if isinstance(frame, str) else bytes(frame).decode("utf-8")
        message = _DECODER.decode(text)
    except (ValueError, TypeError, RecursionError) as exc:  # bad JSON, bad UTF-8, too deep
        return Skipped("malformed", f"not JSON: {type(exc).__name__}")
    if not isinstance(message, dict):
        return Skipped("malformed", f"not an object: {type(message).__name__}")
    return parse_message(message, received_monotonic)


def parse_message(message: Mapping[str, Any], received_monotonic: float) -> Parsed:
    """Read one decoded message (``{"stream": ..., "data": ...}``); never raises."""
    stream = message.get("stream")
    if not isinstance(stream, str):
        return Skipped("malformed", "no stream name")
    data = message.get("data")
    if stream in _CONTROL_STREAMS:
        return Control(stream, MappingProxyType(data) if isinstance(data, dict) else {})
    if stream != TRADE_UPDATES:
        return Skipped("other_stream", f"stream {stream[:40]!r}")
    if data is None:
        return Skipped("null", "data is null")
    if not isinstance(data, dict):
        return Skipped("malformed", f"data is {type(data).__name__}")
    event = data.get("event")
    if not isinstance(event, str) or event not in KNOWN_EVENTS:
        shown = event[:40] if isinstance(event, str) else type(event).__name__
        return Skipped("unknown", f"event {shown!r}")
    raw_order = data.get("order")
    if not isinstance(raw_order, dict):
        return Skipped("no_order", f"{event} without an order")
    order = OrderSnapshot.from_any(raw_order)
    if order.order_id is None and order.client_order_id is None:
        return Skipped("no_order", f"{event} with an order without ids")
    return TradeEvent(
        event=event,
        order=order,
        execution_id=_text(data.get("execution_id")),
        qty=to_decimal(data.get("qty")),
        price=to_decimal(data.get("price")),
        position_qty=to_decimal(data.get("position_qty")),
        timestamp=parse_timestamp(data.get("timestamp")),
        received_monotonic=received_monotonic,
        raw=MappingProxyType(data),
    )
