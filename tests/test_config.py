"""FillDetectionConfig: defaults, validation and log rendering."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import pytest

from fillguard.config import FillDetectionConfig
from fillguard.errors import InvalidInputError


def test_defaults_are_the_documented_ones() -> None:
    """The defaults match the documented production values."""
    cfg = FillDetectionConfig()
    assert cfg.timeout_seconds == 30.0
    assert cfg.initial_poll_interval == 0.25
    assert cfg.poll_interval_increase == 0.25
    assert cfg.max_poll_interval == 2.0
    assert cfg.max_retries == 5
    assert cfg.retry_base_delay == 0.5
    assert cfg.retry_max_delay == 8.0
    assert cfg.request_timeout_seconds == 10.0
    assert cfg.final_verification_seconds == 10.0
    assert cfg.cancel_on_timeout is True
    assert cfg.partial_fill_policy == "cancel_remainder"
    assert cfg.slippage_threshold_pct == Decimal("1.0")
    assert cfg.not_found_grace_seconds == 5.0
    assert cfg.retry_jitter == 0.1


def test_config_is_frozen_and_keyword_only() -> None:
    """Fields cannot be reassigned and positional construction is refused."""
    cfg = FillDetectionConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.timeout_seconds = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        FillDetectionConfig(1.0)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("timeout_seconds", 0),
        ("timeout_seconds", -1.0),
        ("timeout_seconds", float("nan")),
        ("timeout_seconds", float("inf")),
        ("timeout_seconds", True),
        ("timeout_seconds", "30"),
        ("initial_poll_interval", 0.0),
        ("poll_interval_increase", -0.1),
        ("retry_base_delay", 0),
        ("request_timeout_seconds", 0),
        ("final_verification_seconds", -5),
        ("not_found_grace_seconds", -1),
        ("retry_jitter", -0.01),
        ("retry_jitter", 1.5),
        ("retry_jitter", float("nan")),
        ("max_retries", -1),
        ("max_retries", 2.0),
        ("max_retries", True),
        ("cancel_on_timeout", 1),
        ("partial_fill_policy", "ignore"),
        ("slippage_threshold_pct", -1),
        ("slippage_threshold_pct", "abc"),
        ("slippage_threshold_pct", float("nan")),
        ("slippage_threshold_pct", "Infinity"),
        ("slippage_threshold_pct", True),
    ],
)
def test_invalid_values_raise_invalid_input_naming_the_field(field: str, value: Any) -> None:
    """Each out-of-range or wrongly typed value raises InvalidInputError naming its field."""
    with pytest.raises(InvalidInputError) as info:
        FillDetectionConfig(**{field: value})
    assert info.value.field == field
    assert field in str(info.value)
    assert isinstance(info.value, ValueError)


def test_max_poll_interval_must_not_be_below_initial() -> None:
    """max_poll_interval below initial_poll_interval is refused; equal is allowed."""
    with pytest.raises(InvalidInputError, match=r"max_poll_interval.*initial_poll_interval"):
        FillDetectionConfig(initial_poll_interval=1.0, max_poll_interval=0.5)
    assert FillDetectionConfig(initial_poll_interval=1.0, max_poll_interval=1.0)


def test_retry_max_delay_must_not_be_below_base() -> None:
    """retry_max_delay below retry_base_delay is refused."""
    with pytest.raises(InvalidInputError, match="retry_max_delay"):
        FillDetectionConfig(retry_base_delay=2.0, retry_max_delay=1.0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(2, Decimal(2)), (0.1, Decimal("0.1")), ("1.25", Decimal("1.25")), (Decimal("0"), 0)],
)
def test_slippage_threshold_is_stored_as_decimal(value: Any, expected: Decimal) -> None:
    """int, float (via str), str and Decimal thresholds are all stored as exact Decimals."""
    cfg = FillDetectionConfig(slippage_threshold_pct=value)
    assert isinstance(cfg.slippage_threshold_pct, Decimal)
    assert cfg.slippage_threshold_pct == expected


def test_wait_policy_and_zero_edges_are_accepted() -> None:
    """Boundary values (0 increase, 0 retries, 0 grace, jitter 0 and 1) are valid."""
    cfg = FillDetectionConfig(
        partial_fill_policy="wait",
        poll_interval_increase=0,
        max_retries=0,
        not_found_grace_seconds=0,
        retry_jitter=1,
    )
    assert cfg.partial_fill_policy == "wait"
    assert FillDetectionConfig(retry_jitter=0).retry_jitter == 0


def test_to_log_dict_has_plain_values() -> None:
    """to_log_dict lists every field with plain JSON-able values (Decimal as str)."""
    out = FillDetectionConfig(slippage_threshold_pct="0.5").to_log_dict()  # type: ignore[arg-type]
    assert out["slippage_threshold_pct"] == "0.5"
    assert out["timeout_seconds"] == 30.0
    assert set(out) == {f.name for f in dataclasses.fields(FillDetectionConfig)}
    assert all(isinstance(v, bool | int | float | str) for v in out.values())
