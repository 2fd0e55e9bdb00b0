"""The journal's records: frozen, validated values, and the read model :class:`JournalTrade`.

Each record validates itself on construction and raises
:class:`~fillguard.errors.InvalidInputError` naming the field: quantities and prices are finite
``Decimal`` (never float), times are timezone-aware and stored in UTC, enumerations are checked
against Alpaca's values. :func:`record_to_dict` turns any record into plain JSON values.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from fillguard.errors import InvalidInputError
from fillguard.results import FillStatus

__all__ = [
    "ORDER_TYPES",
    "SIDES",
    "TIMES_IN_FORCE",
    "Baseline",
    "Booking",
    "JournalAccount",
    "JournalTrade",
    "OutcomeKind",
    "Record",
    "SubmitAttempt",
    "SubmitOutcome",
    "TradeFinal",
    "TradeIntent",
    "normalize_base_url",
    "record_to_dict",
]

SIDES = frozenset({"buy", "sell"})
ORDER_TYPES = frozenset({"market", "limit", "stop", "stop_limit", "trailing_stop"})
TIMES_IN_FORCE = frozenset({"day", "gtc", "opg", "cls", "ioc", "fok"})


def _text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(name, f"must be a non-empty string, got {value!r}")
    return value


def _optional_text(name: str, value: object) -> str | None:
    return None if value is None else _text(name, value)


def _choice(name: str, value: object, allowed: frozenset[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise InvalidInputError(name, f"must be one of {', '.join(sorted(allowed))}, got {value!r}")
    return value


def _decimal(name: str, value: object, *, minimum: str | None = None) -> Decimal:
    """A finite Decimal; ``minimum`` is ``"positive"`` or ``"non_negative"`` when required."""
    if not isinstance(value, Decimal) or not value.is_finite():
        raise InvalidInputError(name, f"must be a finite Decimal, got {value!r}")
    if minimum == "positive" and not value > 0:
        raise InvalidInputError(name, f"must be > 0, got {value}")
    if minimum == "non_negative" and value < 0:
        raise InvalidInputError(name, f"must be >= 0, got {value}")
    return value


def _optional_decimal(name: str, value: object, *, minimum: str | None = None) -> Decimal | None:
    return None if value is None else _decimal(name, value, minimum=minimum)


def _utc(name: str, value: object) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInputError(name, f"must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(UTC)


def _optional_int(name: str, value: object, *, minimum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidInputError(name, f"must be an integer >= {minimum}, got {value!r}")
    return value


def _set(record: object, name: str, value: object) -> None:
    # Frozen dataclasses: normalised values (UTC times, enums) are set once, in __post_init__.
    object.__setattr__(record, name, value)


def normalize_base_url(base_url: str) -> str:
    """The base URL as the journal stores and compares it: lower-case scheme and host, no ``/``."""
    text = _text("base_url", base_url).strip()
    parts = urlsplit(text)
    if not parts.scheme or not parts.netloc:
        raise InvalidInputError("base_url", f"must be an absolute URL, got {base_url!r}")
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, ""))


@dataclass(frozen=True, slots=True, kw_only=True)
class JournalAccount:
    """The account a journal belongs to: the key id and base URL (there is no secret here)."""

    key_id: str
    base_url: str

    def __post_init__(self) -> None:
        """Check the key id and store the base URL normalised."""
        _set(self, "key_id", _text("key_id", self.key_id).strip())
        _set(self, "base_url", normalize_base_url(self.base_url))

    def masked_key_id(self) -> str:
        """The key id with all but its first four characters hidden, for messages."""
        return self.key_id[:4] + "…" if len(self.key_id) > 4 else "…"


@dataclass(frozen=True, slots=True, kw_only=True)
class TradeIntent:
    """A trade as decided before anything is sent; committed before the first POST."""

    client_order_id: str
    symbol: str
    side: str
    qty: Decimal
    order_type: str
    time_in_force: str
    created_at: datetime
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    expected_price: Decimal | None = None
    notional: Decimal | None = None

    def __post_init__(self) -> None:
        """Validate every field; times to UTC."""
        _text("client_order_id", self.client_order_id)
        _text("symbol", self.symbol)
        _choice("side", self.side, SIDES)
        # A notional order's quantity is fixed by its fill: 0 in the intent.
        _decimal("qty", self.qty, minimum="non_negative" if self.notional else "positive")
        _choice("order_type", self.order_type, ORDER_TYPES)
        _choice("time_in_force", self.time_in_force, TIMES_IN_FORCE)
        _set(self, "created_at", _utc("created_at", self.created_at))
        for name in ("limit_price", "stop_price", "expected_price", "notional"):
            _optional_decimal(name, getattr(self, name), minimum="positive")


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitAttempt:
    """Written before each POST: attempt ``attempt`` (1, 2, ...) of the trade is about to go out."""

    client_order_id: str
    attempt: int
    at: datetime

    def __post_init__(self) -> None:
        """Validate; attempt numbers start at 1."""
        _text("client_order_id", self.client_order_id)
        _optional_int("attempt", self.attempt, minimum=1)
        _set(self, "at", _utc("at", self.at))


class OutcomeKind(StrEnum):
    """What a submit ended in, as far as the executor knows."""

    PLACED = "placed"  # the broker accepted it: order_id is known
    REFUSED = "refused"  # the broker surely refused it
    NOT_PLACED = "not_placed"  # surely not applied (never reached the broker, or proven absent)
    UNRESOLVED = "unresolved"  # may have been applied: look it up before anything else


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitOutcome:
    """The outcome of a submit; ``order_id`` exactly when placed.

    ``status_code`` (HTTP), ``code`` (Alpaca's 8-digit code) and ``message`` say why an order was
    not placed; they are None for a placed order.
    """

    client_order_id: str
    outcome: OutcomeKind
    at: datetime
    order_id: str | None = None
    status_code: int | None = None
    code: int | None = None
    message: str | None = None

    def __post_init__(self) -> None:
        """Validate; the outcome may be given as its string value."""
        _text("client_order_id", self.client_order_id)
        if not isinstance(self.outcome, OutcomeKind):
            try:
                _set(self, "outcome", OutcomeKind(self.outcome))
            except ValueError:
                allowed = ", ".join(k.value for k in OutcomeKind)
                raise InvalidInputError(
                    "outcome", f"must be one of {allowed}, got {self.outcome!r}"
                ) from None
        _set(self, "at", _utc("at", self.at))
        _optional_text("order_id", self.order_id)
        _optional_int("status_code", self.status_code, minimum=100)
        _optional_int("code", self.code, minimum=0)
        if self.message is not None and not isinstance(self.message, str):
            raise InvalidInputError("message", f"must be a string, got {self.message!r}")
        if self.outcome is OutcomeKind.PLACED:
            if self.order_id is None:
                raise InvalidInputError("order_id", "a placed outcome needs the order id")
            for name in ("status_code", "code", "message"):
                if getattr(self, name) is not None:
                    raise InvalidInputError(name, "only an order that was not placed has one")
        elif self.order_id is not None:
            raise InvalidInputError("order_id", f"a {self.outcome.value} outcome has no order id")


@dataclass(frozen=True, slots=True, kw_only=True)
class Booking:
    """An order's cumulative filled quantity as booked; per order id it only ever grows."""

    order_id: str
    client_order_id: str
    symbol: str
    side: str
    filled_qty: Decimal
    at: datetime

    def __post_init__(self) -> None:
        """Validate; the cumulative quantity is >= 0."""
        _text("order_id", self.order_id)
        _text("client_order_id", self.client_order_id)
        _text("symbol", self.symbol)
        _choice("side", self.side, SIDES)
        _decimal("filled_qty", self.filled_qty, minimum="non_negative")
        _set(self, "at", _utc("at", self.at))


@dataclass(frozen=True, slots=True, kw_only=True)
class Baseline:
    """The broker's position in ``symbol`` when the book started counting (may be negative)."""

    symbol: str
    qty: Decimal
    at: datetime

    def __post_init__(self) -> None:
        """Validate."""
        _text("symbol", self.symbol)
        _decimal("qty", self.qty)
        _set(self, "at", _utc("at", self.at))


@dataclass(frozen=True, slots=True, kw_only=True)
class TradeFinal:
    """How the trade ended: a :class:`~fillguard.results.FillStatus`, quantity, price, orders.

    ``order_ids`` is the order chain (more than one when the order was replaced).
    """

    client_order_id: str
    status: FillStatus
    filled_qty: Decimal
    at: datetime
    fill_price: Decimal | None = None
    order_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Validate; a FILLED status needs a quantity > 0 and a price, as in FillResult."""
        _text("client_order_id", self.client_order_id)
        if not isinstance(self.status, FillStatus):
            try:
                _set(self, "status", FillStatus(self.status))
            except ValueError:
                allowed = ", ".join(s.value for s in FillStatus)
                raise InvalidInputError(
                    "status", f"must be one of {allowed}, got {self.status!r}"
                ) from None
        _decimal("filled_qty", self.filled_qty, minimum="non_negative")
        _optional_decimal("fill_price", self.fill_price, minimum="positive")
        _set(self, "at", _utc("at", self.at))
        if isinstance(self.order_ids, str) or not isinstance(self.order_ids, tuple | list):
            raise InvalidInputError("order_ids", f"must be a tuple of ids, got {self.order_ids!r}")
        _set(self, "order_ids", tuple(_text("order_ids", i) for i in self.order_ids))
        if self.status is FillStatus.FILLED and (self.filled_qty <= 0 or self.fill_price is None):
            raise InvalidInputError("status", "filled needs filled_qty > 0 and a fill_price")


@dataclass(frozen=True, slots=True)
class JournalTrade:
    """One trade as the journal holds it: the intent and everything written after it."""

    intent: TradeIntent
    attempts: tuple[SubmitAttempt, ...] = ()
    outcomes: tuple[SubmitOutcome, ...] = ()
    bookings: tuple[Booking, ...] = ()
    final: TradeFinal | None = None

    @property
    def client_order_id(self) -> str:
        """The trade's id, minted before its first attempt."""
        return self.intent.client_order_id

    @property
    def attempt_count(self) -> int:
        """How many POSTs were (about to be) sent; 0: surely never sent."""
        return len(self.attempts)

    @property
    def last_outcome(self) -> SubmitOutcome | None:
        """The latest submit outcome, None if none was recorded."""
        return self.outcomes[-1] if self.outcomes else None

    @property
    def order_ids(self) -> tuple[str, ...]:
        """Every order id known for the trade: placed outcomes, then bookings, then the final."""
        seen: dict[str, None] = {}
        for outcome in self.outcomes:
            if outcome.order_id is not None:
                seen.setdefault(outcome.order_id, None)
        for booking in self.bookings:
            seen.setdefault(booking.order_id, None)
        for order_id in self.final.order_ids if self.final else ():
            seen.setdefault(order_id, None)
        return tuple(seen)

    @property
    def finished(self) -> bool:
        """True once the final status is written."""
        return self.final is not None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (Decimals as strings, times as ISO 8601)."""
        return {
            "client_order_id": self.client_order_id,
            "intent": record_to_dict(self.intent),
            "attempt_count": self.attempt_count,
            "attempts": [record_to_dict(a) for a in self.attempts],
            "outcomes": [record_to_dict(o) for o in self.outcomes],
            "last_outcome": None if self.last_outcome is None else self.last_outcome.outcome.value,
            "order_ids": list(self.order_ids),
            "bookings": [record_to_dict(b) for b in self.bookings],
            "final": None if self.final is None else record_to_dict(self.final),
            "finished": self.finished,
        }


Record = TradeIntent | SubmitAttempt | SubmitOutcome | Booking | Baseline | TradeFinal


def _plain(value: object) -> object:
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, Decimal):
        return format(value, "f")  # "0.000000001", not "1E-9"; the value is the same
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def record_to_dict(record: Record | JournalAccount) -> dict[str, Any]:
    """A record's fields as plain JSON values (Decimals as fixed-point strings, ISO 8601 times)."""
    return {f.name: _plain(getattr(record, f.name)) for f in dataclasses.fields(record)}
