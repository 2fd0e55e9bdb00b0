"""FillStatus, FillVerification and FillResult invariants."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from fillguard.results import FillResult, FillStatus, FillVerification


def _verification() -> FillVerification:
    return FillVerification(
        is_filled=True,
        methods_confirmed=("status_field", "quantity_match"),
        method_results={
            "status_field": True,
            "quantity_match": True,
            "fill_price": False,
            "timestamps": False,
        },
        confidence=0.5,
    )


def _result(**overrides: Any) -> FillResult:
    fields: dict[str, Any] = {
        "filled": True,
        "status": FillStatus.FILLED,
        "order_id": "o-1",
        "client_order_id": "c-1",
        "symbol": "AAPL",
        "side": "buy",
        "requested_qty": Decimal(10),
        "filled_qty": Decimal(10),
        "fill_price": Decimal("189.12"),
        "filled_at": datetime(2026, 1, 5, 14, 30, tzinfo=UTC),
        "detection_method": "status_field",
        "verification": _verification(),
        "elapsed_seconds": 0.5,
        "api_calls": 2,
        "retries": 0,
        "slippage_pct": Decimal("0.0100"),
        "slippage_exceeded": False,
    }
    fields.update(overrides)
    return FillResult(**fields)


def test_fill_status_values_are_lowercase_strings() -> None:
    """Every FillStatus is a str whose value is its lowercase name."""
    for status in FillStatus:
        assert isinstance(status, str)
        assert status.value == status.name.lower()
    assert FillStatus("timeout") is FillStatus.TIMEOUT
    assert str(FillStatus.FILLED) == "filled"


def test_verification_method_results_are_read_only() -> None:
    """method_results is a read-only copy and the verification is hashable and frozen."""
    source = {"status_field": True}
    ver = FillVerification(
        is_filled=True,
        methods_confirmed=["status_field"],  # type: ignore[arg-type]  # a list is accepted
        method_results=source,
        confidence=1.0,
    )
    source["status_field"] = False
    assert ver.method_results["status_field"] is True
    assert ver.methods_confirmed == ("status_field",)
    with pytest.raises(TypeError):
        ver.method_results["x"] = True  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        ver.is_filled = False  # type: ignore[misc]
    assert isinstance(hash(ver), int)
    assert _verification() == _verification()
    assert {_verification()} == {_verification()}


@pytest.mark.parametrize("confidence", [-0.1, 1.01, float("nan")])
def test_verification_confidence_out_of_range_is_refused(confidence: float) -> None:
    """A confidence outside 0..1 (or NaN) is refused."""
    with pytest.raises(ValueError, match="confidence"):
        FillVerification(
            is_filled=False, methods_confirmed=(), method_results={}, confidence=confidence
        )


def test_filled_result_round_trips_to_log_dict() -> None:
    """A valid FILLED result builds and renders to plain values."""
    res = _result(poll_intervals=[0.25, 0.5])  # a list is stored as a tuple
    assert res.poll_intervals == (0.25, 0.5)
    out = res.to_log_dict()
    assert out["status"] == "filled"
    assert out["fill_price"] == "189.12"
    assert out["verification"]["confidence"] == 0.5
    assert out["error"] is None
    assert hash(res) == hash(_result(poll_intervals=(0.25, 0.5)))


@pytest.mark.parametrize(
    "overrides",
    [
        {"filled": True, "status": FillStatus.PARTIALLY_FILLED},
        {"filled": False, "status": FillStatus.FILLED},
        {"fill_price": None},
        {"fill_price": Decimal(0)},
        {"filled_qty": Decimal(0)},
        {"status": "filled"},
    ],
)
def test_inconsistent_results_are_refused(overrides: dict[str, Any]) -> None:
    """filled iff FILLED, and a FILLED result needs a positive price and quantity."""
    with pytest.raises(ValueError):  # noqa: PT011 - several messages are valid
        _result(**overrides)


def test_non_filled_results_may_lack_a_price() -> None:
    """TIMEOUT and PARTIALLY_FILLED results need no price and carry filled=False."""
    res = _result(
        filled=False,
        status=FillStatus.TIMEOUT,
        fill_price=None,
        filled_qty=Decimal(0),
        verification=None,
        error="timed out",
    )
    assert not res.filled
    partial = _result(filled=False, status=FillStatus.PARTIALLY_FILLED, filled_qty=Decimal(3))
    assert partial.filled_qty == 3
