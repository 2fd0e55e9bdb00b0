"""MultiMethodVerifier: each method alone, consensus, confidence, and no false positives."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import Enum
from types import SimpleNamespace
from typing import Any

import pytest
from alpaca.trading.enums import OrderStatus
from hypothesis import given, settings
from hypothesis import strategies as st

from fillguard.logs import event_fields, event_name
from fillguard.snapshot import OrderSnapshot
from fillguard.verify import VERIFICATION_METHODS, MultiMethodVerifier, has_complete_fill_evidence
from tests.order_factory import order_dict, order_model

T0 = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
verifier = MultiMethodVerifier()


def _snap(**fields: Any) -> OrderSnapshot:
    base: dict[str, Any] = {"order_id": "o", "qty": Decimal(10), "submitted_at": T0}
    base.update(fields)
    return OrderSnapshot(**base)


def test_method_names_are_the_documented_four() -> None:
    """The verifier reports exactly the four documented methods, in order."""
    assert VERIFICATION_METHODS == ("status_field", "quantity_match", "fill_price", "timestamps")
    result = verifier.verify_fill(_snap())
    assert tuple(result.method_results) == VERIFICATION_METHODS


def test_fully_filled_order_confirms_all_four() -> None:
    """A complete, priced, timestamped fill is confirmed by all methods with confidence 1."""
    result = verifier.verify_fill(
        _snap(
            status="filled",
            filled_qty=Decimal(10),
            filled_avg_price=Decimal("189.12"),
            filled_at=T0 + timedelta(seconds=1),
        )
    )
    assert result.is_filled
    assert result.methods_confirmed == VERIFICATION_METHODS
    assert result.confidence == 1.0


def test_open_order_is_not_filled_with_full_confidence() -> None:
    """A new order with nothing filled: all methods say no, confidence 1."""
    result = verifier.verify_fill(_snap(status="new"))
    assert not result.is_filled
    assert result.methods_confirmed == ()
    assert result.confidence == 1.0


def test_status_alone_confirms_with_quarter_confidence() -> None:
    """Status 'filled' before the quantities catch up still confirms (1 of 4 agree)."""
    result = verifier.verify_fill(_snap(status="FILLED"))
    assert result.is_filled
    assert result.methods_confirmed == ("status_field",)
    assert result.confidence == 0.25


def test_quantity_lagging_status_confirms_three_of_four() -> None:
    """Quantities and price complete while the status still says partially_filled."""
    result = verifier.verify_fill(
        _snap(
            status="partially_filled",
            filled_qty=Decimal(10),
            filled_avg_price=Decimal(5),
            filled_at=T0,
        )
    )
    assert result.is_filled
    assert result.methods_confirmed == ("quantity_match", "fill_price", "timestamps")
    assert result.confidence == 0.75


def test_price_on_a_partial_fill_never_confirms() -> None:
    """A partially filled order has a price, but price alone is no fill."""
    snap = _snap(status="partially_filled", filled_qty=Decimal(4), filled_avg_price=Decimal(5))
    assert not verifier.check_fill_price(snap)
    assert not verifier.verify_fill(snap).is_filled


def test_fractional_shortfall_is_not_a_fill() -> None:
    """filled_qty short of qty by a tiny fraction is not complete."""
    snap = _snap(
        qty=Decimal("1.5"),
        filled_qty=Decimal("1.499999999"),
        filled_avg_price=Decimal(1),
        filled_at=T0,
        status="partially_filled",
    )
    assert not verifier.verify_fill(snap).is_filled
    assert verifier.check_quantity_match(_snap(qty=Decimal("1.5"), filled_qty=Decimal("1.50")))


def test_timestamp_on_a_partial_does_not_confirm() -> None:
    """filled_at set on a partial fill (some brokers do) does not confirm."""
    snap = _snap(status="canceled", filled_qty=Decimal(3), filled_at=T0 + timedelta(seconds=2))
    assert not verifier.check_timestamps(snap)
    assert not verifier.verify_fill(snap).is_filled


def test_timestamp_before_submission_does_not_confirm() -> None:
    """A filled_at earlier than submission proves nothing."""
    snap = _snap(filled_qty=Decimal(10), filled_at=T0 - timedelta(seconds=1))
    assert not verifier.check_timestamps(snap)
    # The explicit argument wins over the order's own submitted_at.
    assert verifier.check_timestamps(snap, submitted_at=T0 - timedelta(seconds=5))
    assert not verifier.check_timestamps(
        _snap(filled_qty=Decimal(10), filled_at=T0), submitted_at=T0 + timedelta(seconds=1)
    )
    # A naive argument is read as UTC.
    assert verifier.check_timestamps(
        _snap(filled_qty=Decimal(10), filled_at=T0), submitted_at=datetime(2026, 1, 5, 14, 29)
    )


def test_clock_skew_tolerance() -> None:
    """clock_skew lets a filled_at slightly before a locally stamped submission confirm."""
    snap = _snap(filled_qty=Decimal(10), filled_at=T0 - timedelta(milliseconds=200))
    assert not verifier.check_timestamps(snap)
    assert MultiMethodVerifier(clock_skew=timedelta(seconds=1)).check_timestamps(snap)


def test_notional_order_without_qty() -> None:
    """With no qty, a timestamp plus executed quantity confirms unless the status contradicts."""
    filled = OrderSnapshot(status=None, filled_qty=Decimal("0.37"), filled_at=T0)
    assert verifier.check_timestamps(filled)
    assert not verifier.check_quantity_match(filled)
    partial = OrderSnapshot(status="partially_filled", filled_qty=Decimal("0.37"), filled_at=T0)
    assert not verifier.verify_fill(partial).is_filled
    nothing = OrderSnapshot(status=None, filled_qty=Decimal(0), filled_at=T0)
    assert not verifier.check_timestamps(nothing)


def test_zero_qty_never_matches() -> None:
    """qty 0 with filled_qty 0 is not a fill."""
    assert not verifier.verify_fill(_snap(qty=Decimal(0), filled_at=T0)).is_filled


def test_has_complete_fill_evidence() -> None:
    """Complete evidence needs the fill verdict, a price and an executed quantity."""
    assert not has_complete_fill_evidence(_snap(status="filled"))
    assert has_complete_fill_evidence(
        _snap(status="filled", filled_qty=Decimal(10), filled_avg_price=Decimal(1))
    )
    assert not has_complete_fill_evidence(
        _snap(status="new", filled_qty=Decimal(5), filled_avg_price=Decimal(1))
    )
    assert has_complete_fill_evidence(
        order_dict(status="filled", filled_qty="10", filled_avg_price="2")
    )


def test_verification_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Each verification logs every method's result and the confidence at DEBUG."""
    with caplog.at_level(logging.DEBUG, logger="fillguard.verify"):
        verifier.verify_fill(_snap(status="filled"))
    records = [r for r in caplog.records if event_name(r) == "verification"]
    assert len(records) == 1
    fields = event_fields(records[0])
    assert fields["status_field"] is True
    assert fields["quantity_match"] is False
    assert fields["confidence"] == 0.25
    assert fields["is_filled"] is True


# --------------------------------------------------------------------------- properties


class _LocalStatus(Enum):
    FILLED = "filled"
    PARTIALLY_FILLED = "partially_filled"
    NEW = "new"
    CANCELED = "canceled"
    ACCEPTED = "accepted"
    EXPIRED = "expired"


def _status_forms(status: str) -> st.SearchStrategy[object]:
    """Every spelling a status can arrive in."""
    return st.sampled_from(
        [
            status,
            status.upper(),
            status.title(),
            OrderStatus(status),
            _LocalStatus(status),
            f"OrderStatus.{status.upper()}",
        ]
    )


_quantities = st.decimals(
    min_value=Decimal("0.000000001"), max_value=Decimal(100000), places=9, allow_nan=False
)
_prices = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(100000), places=4)


def _num(value: Decimal, as_float: bool) -> object:
    """A numeric field as Alpaca sends it (string) or as a JSON number."""
    return float(value) if as_float else str(value)


@st.composite
def _shaped(draw: st.DrawFn, fields: dict[str, Any]) -> object:
    """The same order as a real Order model, a raw dict, a plain object or a snapshot."""
    shape = draw(st.sampled_from(["model", "dict", "object", "snapshot"]))
    if shape == "model":
        # alpaca-py's model needs a valid OrderStatus: pass the plain value.
        model_fields = dict(fields)
        status = model_fields["status"]
        model_fields["status"] = status.value if isinstance(status, Enum) else status
        model_fields["status"] = str(model_fields["status"]).rsplit(".", 1)[-1].lower()
        return order_model(**model_fields)
    if shape == "dict":
        return order_dict(**fields)
    if shape == "object":
        return SimpleNamespace(**order_dict(**fields))
    return OrderSnapshot.from_any(order_dict(**fields))


@st.composite
def _completely_filled(draw: st.DrawFn) -> object:
    qty = draw(_quantities)
    extra = draw(st.sampled_from([Decimal(0), Decimal(0), Decimal("0.5")]))
    as_float = draw(st.booleans())
    fields: dict[str, Any] = {
        "status": draw(_status_forms("filled")),
        # Float JSON numbers stay ordered after the float round trip, so >= still holds.
        "qty": _num(qty, as_float),
        "filled_qty": _num(qty + extra, as_float),
        "filled_avg_price": _num(draw(_prices), as_float),
        "filled_at": draw(st.sampled_from(["2026-01-05T14:30:01.5Z", None])),
    }
    return draw(_shaped(fields))


@st.composite
def _not_completely_filled(draw: st.DrawFn) -> object:
    qty = draw(_quantities)
    # Any strictly smaller executed quantity, down to a 1e-9 shortfall.
    filled = draw(
        st.decimals(min_value=Decimal(0), max_value=qty - Decimal("0.000000001"), places=9)
        if qty > Decimal("0.000000001")
        else st.just(Decimal(0))
    )
    status = draw(st.sampled_from(["partially_filled", "new", "canceled", "accepted", "expired"]))
    fields: dict[str, Any] = {
        "status": draw(_status_forms(status)),
        "qty": str(qty),
        "filled_qty": str(filled),
        "filled_avg_price": draw(st.one_of(st.none(), _prices.map(str))),
        # Even a filled_at stamped on the partial must not confirm.
        "filled_at": draw(st.sampled_from([None, "2026-01-05T14:30:01Z"])),
    }
    return draw(_shaped(fields))


@settings(max_examples=200, deadline=None)
@given(_completely_filled())
def test_property_every_complete_fill_is_detected(order: object) -> None:
    """Property 2: a complete fill in any status format and shape is detected."""
    result = verifier.verify_fill(order)
    assert result.is_filled
    assert "status_field" in result.methods_confirmed
    assert "quantity_match" in result.methods_confirmed
    assert "fill_price" in result.methods_confirmed
    assert result.confidence >= 0.75


@settings(max_examples=200, deadline=None)
@given(_not_completely_filled())
def test_property_no_false_positive(order: object) -> None:
    """Zero false positives: an order short of its qty is never reported filled."""
    result = verifier.verify_fill(order)
    assert not result.is_filled
    assert result.methods_confirmed == ()
    assert result.confidence == 1.0


@settings(max_examples=200, deadline=None)
@given(
    status=st.sampled_from(["filled", "partially_filled", "new", "canceled", None]),
    qty=st.one_of(st.none(), _quantities),
    filled=st.one_of(st.none(), _quantities),
    price=st.one_of(st.none(), _prices),
    stamped=st.booleans(),
)
def test_property_verdict_and_confidence_are_consistent(
    status: str | None,
    qty: Decimal | None,
    filled: Decimal | None,
    price: Decimal | None,
    stamped: bool,
) -> None:
    """is_filled == any(methods); confidence is the share agreeing with the verdict."""
    snap = OrderSnapshot(
        status=status,
        qty=qty,
        filled_qty=filled or Decimal(0),
        filled_avg_price=price,
        filled_at=T0 if stamped else None,
        submitted_at=T0,
    )
    result = verifier.verify_fill(snap)
    values = list(result.method_results.values())
    assert result.is_filled == any(values)
    assert result.confidence == sum(v == result.is_filled for v in values) / 4
    # Soundness: without the status, a positive verdict implies a complete quantity (or no qty).
    if result.is_filled and status != "filled" and qty is not None:
        assert snap.filled_qty >= qty
