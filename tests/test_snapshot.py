"""OrderSnapshot: tolerant reading of models, dicts and objects; helpers."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from types import SimpleNamespace
from typing import Any

import pytest
from alpaca.trading.enums import OrderSide, OrderStatus
from hypothesis import given, settings
from hypothesis import strategies as st

from fillguard.snapshot import (
    OPEN_STATUSES,
    TERMINAL_STATUSES,
    OrderSnapshot,
    normalize_status,
    parse_timestamp,
    to_decimal,
)
from tests.order_factory import order_dict, order_model, order_object


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10", Decimal(10)),
        (" 189.12 ", Decimal("189.12")),
        (189.12, Decimal("189.12")),
        (0.1, Decimal("0.1")),
        (7, Decimal(7)),
        (Decimal("1.5"), Decimal("1.5")),
        ("-3", Decimal(-3)),
        ("abc", None),
        ("", None),
        (None, None),
        (True, None),
        (float("nan"), None),
        (float("inf"), None),
        ("NaN", None),
        ("-Infinity", None),
        (Decimal("NaN"), None),
        ([1], None),
    ],
)
def test_to_decimal(value: Any, expected: Decimal | None) -> None:
    """to_decimal reads numbers and numeric strings exactly and refuses everything else."""
    assert to_decimal(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2022-04-19T17:45:05.024916716Z", datetime(2022, 4, 19, 17, 45, 5, 24916, tzinfo=UTC)),
        ("2022-04-19T17:45:05Z", datetime(2022, 4, 19, 17, 45, 5, tzinfo=UTC)),
        ("2022-04-19T17:45:05.1z", datetime(2022, 4, 19, 17, 45, 5, 100000, tzinfo=UTC)),
        ("2022-04-19T13:45:05-04:00", datetime(2022, 4, 19, 17, 45, 5, tzinfo=UTC)),
        ("2022-04-19T17:45:05", datetime(2022, 4, 19, 17, 45, 5, tzinfo=UTC)),
        (datetime(2022, 4, 19, 17, 45, 5), datetime(2022, 4, 19, 17, 45, 5, tzinfo=UTC)),
        (
            datetime(2022, 4, 19, 19, 45, 5, tzinfo=timezone(timedelta(hours=2))),
            datetime(2022, 4, 19, 17, 45, 5, tzinfo=UTC),
        ),
        ("not a time", None),
        ("", None),
        (None, None),
        (12345, None),
        ("2022-13-40T00:00:00Z", None),
    ],
)
def test_parse_timestamp(value: Any, expected: datetime | None) -> None:
    """parse_timestamp accepts datetimes and RFC 3339 (Z, nanoseconds, offsets) as UTC."""
    parsed = parse_timestamp(value)
    assert parsed == expected
    if parsed is not None:
        assert parsed.utcoffset() == timedelta(0)


class _Custom(Enum):
    FILLED = "filled"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("filled", "filled"),
        ("FILLED", "filled"),
        (" Partially_Filled ", "partially_filled"),
        (OrderStatus.FILLED, "filled"),
        (_Custom.FILLED, "filled"),
        ("OrderStatus.FILLED", "filled"),
        ("OrderStatus.PARTIALLY_FILLED", "partially_filled"),
        ("weird_new_state", "weird_new_state"),
        ("", None),
        (None, None),
        (3, None),
    ],
)
def test_normalize_status(value: Any, expected: str | None) -> None:
    """Statuses in enum, upper, lower and enum-repr form become one lowercase string."""
    assert normalize_status(value) == expected


def test_from_model_dict_and_object_agree() -> None:
    """A model, the raw dict and a plain object of the same order give the same snapshot."""
    fields = {
        "status": "filled",
        "filled_qty": "10",
        "filled_avg_price": "189.12",
        "filled_at": "2026-01-05T14:30:01Z",
        "limit_price": "190",
        "order_type": "limit",
        "type": "limit",
    }
    snaps = [
        OrderSnapshot.from_any(order_model(**fields)),
        OrderSnapshot.from_any(order_dict(**fields)),
        OrderSnapshot.from_any(order_object(**fields)),
    ]
    assert snaps[0] == snaps[1] == snaps[2]
    snap = snaps[0]
    assert snap.order_id == "00000000-0000-0000-0000-000000000001"
    assert snap.client_order_id == "fg-1"
    assert snap.symbol == "AAPL"
    assert snap.side == "buy"
    assert snap.order_type == "limit"
    assert snap.status == "filled"
    assert snap.qty == Decimal(10)
    assert snap.filled_qty == Decimal(10)
    assert snap.filled_avg_price == Decimal("189.12")
    assert snap.limit_price == Decimal(190)
    assert snap.submitted_at == datetime(2026, 1, 5, 14, 30, 0, 123456, tzinfo=UTC)
    assert snap.filled_at == datetime(2026, 1, 5, 14, 30, 1, tzinfo=UTC)
    assert snap.is_terminal
    assert snap.remaining_qty == 0


def test_json_numbers_are_read_exactly() -> None:
    """JSON numbers (floats in the model) become the Decimal of their shortest repr."""
    snap = OrderSnapshot.from_any(order_model(qty=3.3, filled_qty=1.1, filled_avg_price=10.01))
    assert snap.qty == Decimal("3.3")
    assert snap.filled_qty == Decimal("1.1")
    assert snap.filled_avg_price == Decimal("10.01")
    assert snap.remaining_qty == Decimal("2.2")


@pytest.mark.parametrize(
    "garbage",
    [
        {"qty": "abc", "filled_qty": "NaN", "filled_avg_price": "inf"},
        {"qty": None, "filled_qty": None, "filled_avg_price": None},
        {"qty": -5, "filled_qty": "-1", "filled_avg_price": "-3"},
        {"filled_at": "yesterday", "submitted_at": 17, "updated_at": ""},
        {"status": 42, "side": object(), "id": None},
        {"filled_avg_price": "0"},
    ],
)
def test_garbage_fields_never_raise(garbage: dict[str, Any]) -> None:
    """Missing, None or garbled fields become None (0 for filled_qty), never an exception."""
    snap = OrderSnapshot.from_any(order_dict(**garbage))
    assert snap.filled_qty >= 0
    for name in ("qty", "filled_avg_price"):
        value = getattr(snap, name)
        assert value is None or value > 0


def test_empty_and_odd_inputs() -> None:
    """None, an empty dict and an unrelated object give an empty snapshot."""
    for thing in (None, {}, object(), 42, "filled"):
        snap = OrderSnapshot.from_any(thing)
        assert snap.status is None
        assert snap.filled_qty == 0
        assert snap.qty is None
        assert not snap.is_terminal
        assert snap.remaining_qty is None


def test_raising_properties_are_treated_as_missing() -> None:
    """An attribute whose getter raises reads as missing."""

    class Hostile:
        status = "new"

        @property
        def qty(self) -> str:
            raise RuntimeError("boom")

    snap = OrderSnapshot.from_any(Hostile())
    assert snap.status == "new"
    assert snap.qty is None


def test_snapshot_passes_through_and_type_falls_back() -> None:
    """from_any returns a snapshot unchanged and reads order type from 'type' if needed."""
    snap = OrderSnapshot(status="new")
    assert OrderSnapshot.from_any(snap) is snap
    assert OrderSnapshot.from_any({"type": "LIMIT"}).order_type == "limit"
    assert OrderSnapshot.from_any({"side": OrderSide.SELL}).side == "sell"
    assert OrderSnapshot.from_any({"order_id": "x"}).order_id == "x"


def test_status_sets() -> None:
    """Terminal and open sets are disjoint and cover every OrderStatus value."""
    assert not TERMINAL_STATUSES & OPEN_STATUSES
    assert {s.value for s in OrderStatus} <= TERMINAL_STATUSES | OPEN_STATUSES
    assert OrderSnapshot(status="pending_cancel").is_open
    assert OrderSnapshot(status="done_for_day").is_open  # it resumes next session


def test_remaining_qty_never_negative() -> None:
    """An overfill reports zero remaining."""
    assert OrderSnapshot(qty=Decimal(1), filled_qty=Decimal(2)).remaining_qty == 0


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=20),
        st.decimals(allow_nan=True, allow_infinity=True),
    )
)
def test_to_decimal_total(value: object) -> None:
    """to_decimal never raises and only returns finite Decimals."""
    result = to_decimal(value)
    assert result is None or (isinstance(result, Decimal) and result.is_finite())
    if isinstance(value, float) and math.isfinite(value):
        assert result == Decimal(str(value))


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "id",
                "status",
                "qty",
                "filled_qty",
                "filled_avg_price",
                "filled_at",
                "submitted_at",
                "side",
                "symbol",
                "limit_price",
            ]
        ),
        st.one_of(
            st.none(),
            st.text(max_size=30),
            st.integers(),
            st.floats(),
            st.booleans(),
            st.datetimes(),
            st.lists(st.integers(), max_size=2),
        ),
    )
)
def test_from_any_never_raises(data: dict[str, Any]) -> None:
    """Arbitrary junk in any field never makes from_any raise, as dict or object."""
    for thing in (data, SimpleNamespace(**data)):
        snap = OrderSnapshot.from_any(thing)
        assert snap.filled_qty >= 0
        for stamp in (snap.filled_at, snap.submitted_at):
            assert stamp is None or stamp.utcoffset() == timedelta(0)
