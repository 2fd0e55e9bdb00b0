"""Configuration: fill detection (timeouts, polling, retries, slippage, partial fills) and orders.

:class:`FillDetectionConfig` is immutable and validated on construction, so a bad value is
caught before any request is sent. Every violation raises
:class:`fillguard.errors.InvalidInputError` naming the field and its allowed range.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from fillguard.errors import InvalidInputError

__all__ = ["PARTIAL_FILL_POLICIES", "FillDetectionConfig", "OrderConfig", "PartialFillPolicy"]

PartialFillPolicy = Literal["cancel_remainder", "wait"]
PARTIAL_FILL_POLICIES: frozenset[str] = frozenset({"cancel_remainder", "wait"})


def finite_number(name: str, value: object) -> float:
    """``value`` as a finite float; bools, NaN, infinities and non-numbers are rejected."""
    # bool is an int subclass: ``timeout_seconds=True`` is a bug, not 1 second.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError(name, f"must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise InvalidInputError(name, f"must be finite, got {value!r}")
    return number


def _to_decimal(name: str, value: object) -> Decimal:
    """``value`` (int, float, str or Decimal) as a finite Decimal."""
    if isinstance(value, bool):
        raise InvalidInputError(name, f"must be a number, got {value!r}")
    try:
        if isinstance(value, Decimal):
            result = value
        elif isinstance(value, float):
            # str() first: Decimal(0.1) would carry the binary representation error.
            result = Decimal(str(value))
        elif isinstance(value, int | str):
            result = Decimal(str(value).strip())
        else:
            raise InvalidInputError(name, f"must be a number, got {value!r}")
    except InvalidOperation:
        raise InvalidInputError(name, f"must be a number, got {value!r}") from None
    if not result.is_finite():
        raise InvalidInputError(name, f"must be finite, got {value!r}")
    return result


@dataclass(frozen=True, kw_only=True, slots=True)
class FillDetectionConfig:
    """How long and how hard to look for a fill; all durations are in seconds."""

    timeout_seconds: float = 30.0
    initial_poll_interval: float = 0.25
    poll_interval_increase: float = 0.25
    max_poll_interval: float = 2.0
    max_retries: int = 5
    retry_base_delay: float = 0.5
    retry_max_delay: float = 8.0
    request_timeout_seconds: float = 10.0
    final_verification_seconds: float = 10.0
    cancel_on_timeout: bool = True
    partial_fill_policy: PartialFillPolicy = "cancel_remainder"
    slippage_threshold_pct: Decimal = Decimal("1.0")
    not_found_grace_seconds: float = 5.0
    retry_jitter: float = 0.1
    #: A broker's Retry-After / X-Ratelimit-Reset wait is honoured up to this many seconds.
    max_retry_after_seconds: float = 10.0
    #: Listen to trade_updates (one shared connection per account) and read REST only where
    #: the stream is silent; False: poll REST only.
    use_stream: bool = True
    #: With a live stream, an order with no event for this long is read by REST (in a sweep).
    stream_silence_seconds: float = 2.0
    #: Requests per minute the account's request budget allows (learned from the broker's
    #: X-Ratelimit-* headers); None: no budget.
    rate_limit_per_minute: int | None = 200

    def __post_init__(self) -> None:
        """Validate every field; raise :class:`InvalidInputError` on the first bad one."""
        positive = (
            "timeout_seconds",
            "initial_poll_interval",
            "retry_base_delay",
            "request_timeout_seconds",
            "final_verification_seconds",
        )
        for name in positive:
            if finite_number(name, getattr(self, name)) <= 0:
                raise InvalidInputError(name, f"must be > 0, got {getattr(self, name)!r}")
        for name in (
            "poll_interval_increase",
            "not_found_grace_seconds",
            "max_retry_after_seconds",
        ):
            if finite_number(name, getattr(self, name)) < 0:
                raise InvalidInputError(name, f"must be >= 0, got {getattr(self, name)!r}")
        if finite_number("max_poll_interval", self.max_poll_interval) < self.initial_poll_interval:
            raise InvalidInputError(
                "max_poll_interval",
                f"must be >= initial_poll_interval ({self.initial_poll_interval}), "
                f"got {self.max_poll_interval!r}",
            )
        if finite_number("retry_max_delay", self.retry_max_delay) < self.retry_base_delay:
            raise InvalidInputError(
                "retry_max_delay",
                f"must be >= retry_base_delay ({self.retry_base_delay}), "
                f"got {self.retry_max_delay!r}",
            )
        jitter = finite_number("retry_jitter", self.retry_jitter)
        if not 0 <= jitter <= 1:
            raise InvalidInputError("retry_jitter", f"must be in [0, 1], got {self.retry_jitter!r}")
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int):
            raise InvalidInputError("max_retries", f"must be an int >= 0, got {self.max_retries!r}")
        if self.max_retries < 0:
            raise InvalidInputError("max_retries", f"must be >= 0, got {self.max_retries!r}")
        if not isinstance(self.use_stream, bool):
            raise InvalidInputError("use_stream", f"must be a bool, got {self.use_stream!r}")
        limit = self.rate_limit_per_minute
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise InvalidInputError(
                "rate_limit_per_minute", f"must be an integer >= 1 or None, got {limit!r}"
            )
        if not isinstance(self.cancel_on_timeout, bool):
            raise InvalidInputError(
                "cancel_on_timeout", f"must be a bool, got {self.cancel_on_timeout!r}"
            )
        if self.partial_fill_policy not in PARTIAL_FILL_POLICIES:
            raise InvalidInputError(
                "partial_fill_policy",
                f"must be one of {sorted(PARTIAL_FILL_POLICIES)}, got {self.partial_fill_policy!r}",
            )
        threshold = _to_decimal("slippage_threshold_pct", self.slippage_threshold_pct)
        if threshold < 0:
            raise InvalidInputError(
                "slippage_threshold_pct", f"must be >= 0, got {self.slippage_threshold_pct!r}"
            )
        # Frozen dataclass: normalise the threshold to Decimal behind the freeze.
        object.__setattr__(self, "slippage_threshold_pct", threshold)

    def to_log_dict(self) -> dict[str, Any]:
        """All settings as plain values (Decimal as str) for a log line."""
        out: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            out[item.name] = str(value) if isinstance(value, Decimal) else value
        return out


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderConfig:
    """How :class:`~fillguard.executor.SmartOrderExecutor` submits, waits and checks.

    Every duration is in seconds. A trade returns within :attr:`max_trade_seconds`.

    Attributes:
        fill_detection: settings of the fill detection engine (fill timeout, final
            verification, retries, request timeout).
        use_fill_detection_engine: the feature flag; False runs the legacy polling loop.
        consistency_check: compare the broker's position after every fill.
        consistency_timeout_seconds: how long a position check (and the baseline read before
            the first order in a symbol) may take; a difference is re-checked meanwhile.
        consistency_initial_delay / consistency_max_delay: backoff between position re-checks.
        position_settle_seconds: the lag window: a difference read this long after our last
            fill in the symbol is a mismatch (and synced); an earlier one may be lag
            (``unverified``) and is never written into the book.
        submit_timeout_seconds: the budget for submitting one trade, look-ups included.
        submit_attempts: POSTs allowed for one trade (all with the same client_order_id).
        lookup_attempts: look-ups by client_order_id that must all say "not found" before a
            resubmit; they are ``lookup_spacing_seconds`` apart, to outlast eventual consistency.
        unknown_horizon_seconds: after the last attempt that may have applied, how long the
            broker must keep answering 404 before an unresolved trade is taken as not placed.
        legacy_poll_interval: the legacy loop's fixed interval.
        journal_path: the write-ahead journal's file (SQLite); None: no journal. With one,
            each trade's intent is durable before its first POST, and an executor that opens
            a journal holding unfinished trades recovers them first.
    """

    fill_detection: FillDetectionConfig = field(default_factory=FillDetectionConfig)
    use_fill_detection_engine: bool = True
    consistency_check: bool = True
    consistency_timeout_seconds: float = 3.0
    consistency_initial_delay: float = 0.1
    consistency_max_delay: float = 1.0
    position_settle_seconds: float = 10.0
    submit_timeout_seconds: float = 20.0
    submit_attempts: int = 5
    lookup_attempts: int = 3
    lookup_spacing_seconds: float = 0.5
    unknown_horizon_seconds: float = 60.0
    legacy_poll_interval: float = 1.0
    journal_path: str | os.PathLike[str] | None = None

    def __post_init__(self) -> None:
        """Validate every field; raise :class:`InvalidInputError` on the first bad one."""
        if not isinstance(self.fill_detection, FillDetectionConfig):
            raise InvalidInputError("fill_detection", "must be a FillDetectionConfig")
        for name in (
            "consistency_timeout_seconds",
            "consistency_initial_delay",
            "consistency_max_delay",
            "position_settle_seconds",
            "lookup_spacing_seconds",
            "unknown_horizon_seconds",
        ):
            if finite_number(name, getattr(self, name)) < 0:
                raise InvalidInputError(name, f"must be >= 0, got {getattr(self, name)!r}")
        for name in ("submit_timeout_seconds", "legacy_poll_interval"):
            if finite_number(name, getattr(self, name)) <= 0:
                raise InvalidInputError(name, f"must be > 0, got {getattr(self, name)!r}")
        for name in ("submit_attempts", "lookup_attempts"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 20:
                raise InvalidInputError(name, f"must be an integer from 1 to 20, got {value!r}")
        for name in ("use_fill_detection_engine", "consistency_check"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidInputError(name, f"must be a bool, got {getattr(self, name)!r}")
        path = self.journal_path
        if path is not None and (not isinstance(path, str | os.PathLike) or not str(path).strip()):
            raise InvalidInputError("journal_path", f"must be a file path or None, got {path!r}")

    @property
    def max_trade_seconds(self) -> float:
        """The bound on one ``execute_trade``, whatever the broker does.

        Touching the symbol (resolving its unresolved trades, reading its open orders) and the
        baseline read, the submission, fill detection with its final verification, and the
        position check each have their own budget; every request is cut to the time left.
        """
        fill = self.fill_detection
        return (
            2 * self.consistency_timeout_seconds
            + self.submit_timeout_seconds
            + fill.timeout_seconds
            + fill.final_verification_seconds
            + self.consistency_timeout_seconds
        )
