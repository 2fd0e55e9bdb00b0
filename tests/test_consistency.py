"""StateConsistencyValidator: position reads, lag re-checks with backoff, mismatch reports."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from fillguard.clock import FakeClock
from fillguard.config import FillDetectionConfig
from fillguard.consistency import ConsistencyResult, StateConsistencyValidator, side_of
from fillguard.errors import RefusedError
from fillguard.logs import event_fields
from fillguard.retry import ErrorRecoveryManager
from fillguard.sim.core import OrderRequest
from tests.executor_support import capture_logs, make_rig
from tests.helpers_errors import api_error


class StubClient:
    """``get_open_position`` answering from a list of callables, the last one repeating."""

    def __init__(self, *answers: Callable[[], Any]) -> None:
        self.answers = list(answers)
        self.calls = 0

    def get_open_position(self, symbol: str) -> Any:
        answer = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        return answer()


def pos(qty: str, side: str | None = None) -> Callable[[], Any]:
    return lambda: {"symbol": "AAPL", "qty": qty, "side": side}


def fails(status: int) -> Callable[[], Any]:
    def raise_() -> Any:
        raise api_error(status)

    return raise_


def validator(client: Any, clock: FakeClock, **kw: Any) -> StateConsistencyValidator:
    recovery = ErrorRecoveryManager(
        FillDetectionConfig(max_retries=2, retry_base_delay=0.01, retry_max_delay=0.05),
        clock=clock,
    )
    settings: dict[str, Any] = {"timeout_seconds": 3.0, "initial_delay": 0.1, "max_delay": 1.0}
    settings.update(kw)
    return StateConsistencyValidator(client, clock=clock, recovery=recovery, **settings)


def test_side_of() -> None:
    assert side_of(Decimal(2)) == "long"
    assert side_of(Decimal("-0.5")) == "short"
    assert side_of(Decimal(0)) is None
    assert side_of(None) is None


def test_result_is_frozen() -> None:
    result = ConsistencyResult(True, "AAPL", Decimal(1), Decimal(1), "long", "long", None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.consistent = False  # type: ignore[misc]


def test_404_means_flat() -> None:
    clock = FakeClock()
    v = validator(StubClient(fails(404)), clock)
    assert v.get_broker_position("AAPL") == 0
    result = v.validate_fill_consistency("AAPL", Decimal(0))
    assert result.consistent
    assert result.broker_qty == 0
    assert result.broker_side is None
    assert result.checks == 1


@pytest.mark.parametrize(
    ("answer", "qty"),
    [
        (pos("5", "long"), Decimal(5)),
        (pos("-3", "short"), Decimal(-3)),
        (pos("3", "short"), Decimal(-3)),  # abs(qty) + side, as some clients report
        (pos("0.25"), Decimal("0.25")),
        (type("Position", (), {"qty": "7", "side": "long"}), Decimal(7)),
    ],
)
def test_position_quantity_is_signed(answer: Callable[[], Any], qty: Decimal) -> None:
    v = validator(StubClient(answer), FakeClock())
    assert v.get_broker_position("AAPL") == qty


def test_lag_is_rechecked_with_backoff_until_it_agrees() -> None:
    clock = FakeClock()
    client = StubClient(pos("0"), pos("0"), pos("0"), pos("2", "long"))
    v = validator(client, clock, initial_delay=0.1, max_delay=1.0)
    with capture_logs() as logs:
        result = v.validate_fill_consistency("AAPL", Decimal(2))
    assert result.consistent
    assert result.checks == 4
    assert clock.slept == [0.1, 0.2, 0.4]
    assert result.elapsed_seconds == pytest.approx(0.7)
    [record] = logs.events("consistency_check")
    assert record.levelno == logging.INFO
    assert event_fields(record)["checks"] == 4


def test_persistent_difference_is_a_mismatch_within_the_time_bound() -> None:
    clock = FakeClock()
    v = validator(StubClient(pos("5", "long")), clock, timeout_seconds=3.0, max_delay=1.0)
    with capture_logs() as logs:
        result = v.validate_fill_consistency("AAPL", Decimal(2))
    assert not result.consistent
    assert result.expected_qty == 2
    assert result.broker_qty == 5
    assert result.discrepancy == "AAPL: expected 2, broker has 5 (difference 3)"
    assert result.elapsed_seconds == pytest.approx(3.0)
    assert max(clock.slept) <= 1.0
    assert result.checks == 1 + len(clock.slept)
    [record] = logs.events("consistency_check")
    assert record.levelno == logging.ERROR
    fields = event_fields(record)
    assert fields["consistent"] is False
    assert fields["expected_qty"] == "2"
    assert fields["broker_qty"] == "5"
    assert fields["discrepancy"] == result.discrepancy


def test_side_difference_is_named() -> None:
    v = validator(StubClient(pos("-1", "short")), FakeClock(), timeout_seconds=0.0)
    result = v.validate_fill_consistency("AAPL", Decimal(1))
    assert not result.consistent
    assert result.expected_side == "long"
    assert result.broker_side == "short"
    assert result.discrepancy is not None
    assert "side long vs short" in result.discrepancy
    assert result.checks == 1


def test_transient_read_errors_are_retried() -> None:
    clock = FakeClock()
    client = StubClient(fails(503), fails(500), pos("2", "long"))
    v = validator(client, clock)
    result = v.validate_fill_consistency("AAPL", Decimal(2))
    assert result.consistent
    assert client.calls == 3


def test_unreadable_position_is_not_consistent_and_has_no_broker_qty() -> None:
    clock = FakeClock()
    v = validator(StubClient(fails(403)), clock, timeout_seconds=1.0)
    result = v.validate_fill_consistency("AAPL", Decimal(2))
    assert not result.consistent
    assert result.broker_qty is None
    assert result.discrepancy is not None
    assert "could not be read" in result.discrepancy
    with pytest.raises(RefusedError):
        v.get_broker_position("AAPL")


def test_garbage_position_is_not_read_as_zero() -> None:
    v = validator(StubClient(pos("abc")), FakeClock(), timeout_seconds=0.0)
    result = v.validate_fill_consistency("AAPL", Decimal(0))
    assert not result.consistent
    assert result.broker_qty is None


def test_against_the_simulator_through_the_sdk() -> None:
    rig = make_rig(faults={"position_lag_seconds": 0.5})
    v = StateConsistencyValidator(rig.client, clock=rig.clock, timeout_seconds=2.0)
    assert v.validate_fill_consistency("AAPL", Decimal(0)).consistent
    rig.outside_fill("AAPL", "sell", Decimal(4))
    result = v.validate_fill_consistency("AAPL", Decimal(-4))
    assert result.consistent
    assert result.broker_side == "short"
    rig.broker.submit(
        OrderRequest(symbol="AAPL", side="buy", type="market", time_in_force="day", qty=Decimal(4))
    )
    rig.advance(0.2)  # filled, but the position lags by 0.5 s
    lagging = v.validate_fill_consistency("AAPL", Decimal(0))
    assert lagging.consistent
    assert lagging.checks > 1
