"""SmartOrderExecutor in fake time: validation, idempotent submission, the flag, consistency."""

from __future__ import annotations

import logging
import math
import uuid
from decimal import Decimal
from typing import Any

import pytest

from fillguard.errors import InvalidInputError
from fillguard.executor import ENV_FLAG, OrderConfig, SmartOrderExecutor, TradeResult
from fillguard.logs import event_fields
from fillguard.outcome import TradeOutcome
from fillguard.results import FillStatus
from fillguard.sim.core import BrokerConfig, OrderRequest
from fillguard.sim.faults import Latency
from tests.executor_support import Rig, answer_with, capture_logs, fast_config, make_rig, script

ORDERS = "/v2/orders"
BY_COID = "/v2/orders:by_client_order_id"


def assert_nothing_sent(rig: Rig) -> None:
    assert rig.api.requests_total == 0
    assert rig.adapter.exchanges == []
    assert rig.broker.posts == {}
    assert rig.broker.list_orders() == []


# ---------------------------------------------------------------------------------- validation
VALID: dict[str, Any] = {"symbol": "AAPL", "side": "buy", "qty": Decimal(1)}

BAD_INPUTS: list[tuple[dict[str, Any], str]] = [
    ({"symbol": ""}, "symbol"),
    ({"symbol": "AA PL"}, "symbol"),
    ({"symbol": "$AAPL"}, "symbol"),
    ({"symbol": "ABCDEFGHIJK"}, "symbol"),
    ({"symbol": None}, "symbol"),
    ({"symbol": 123}, "symbol"),
    ({"side": "hold"}, "side"),
    ({"side": ""}, "side"),
    ({"side": None}, "side"),
    ({"side": 1}, "side"),
    ({"qty": 0}, "qty"),
    ({"qty": Decimal(0)}, "qty"),
    ({"qty": -1}, "qty"),
    ({"qty": "-0.5"}, "qty"),
    ({"qty": math.nan}, "qty"),
    ({"qty": Decimal("NaN")}, "qty"),
    ({"qty": "nan"}, "qty"),
    ({"qty": math.inf}, "qty"),
    ({"qty": -math.inf}, "qty"),
    ({"qty": Decimal("Infinity")}, "qty"),
    ({"qty": "abc"}, "qty"),
    ({"qty": ""}, "qty"),
    ({"qty": True}, "qty"),
    ({"qty": False}, "qty"),
    ({"qty": None}, "qty"),
    ({"qty": [1]}, "qty"),
    ({"qty": Decimal("0.0000000001")}, "qty"),
    ({"order_type": "trailing_stop"}, "order_type"),
    ({"order_type": "stop"}, "stop_price"),
    ({"order_type": None}, "order_type"),
    ({"order_type": "limit"}, "limit_price"),
    ({"order_type": "limit", "limit_price": 0}, "limit_price"),
    ({"order_type": "limit", "limit_price": -5}, "limit_price"),
    ({"order_type": "limit", "limit_price": "abc"}, "limit_price"),
    ({"order_type": "limit", "limit_price": math.nan}, "limit_price"),
    ({"order_type": "limit", "limit_price": True}, "limit_price"),
    ({"limit_price": 100}, "limit_price"),
    ({"time_in_force": "week"}, "time_in_force"),
    ({"time_in_force": None}, "time_in_force"),
    ({"qty": Decimal("0.5"), "time_in_force": "gtc"}, "time_in_force"),
    ({"client_order_id": ""}, "client_order_id"),
    ({"client_order_id": "x" * 129}, "client_order_id"),
    ({"client_order_id": 12345}, "client_order_id"),
    ({"expected_price": -1}, "expected_price"),
    ({"expected_price": "abc"}, "expected_price"),
]


@pytest.mark.parametrize(("changes", "field"), BAD_INPUTS)
def test_bad_input_raises_naming_the_field_and_sends_nothing(
    changes: dict[str, Any], field: str
) -> None:
    rig = make_rig()
    args = {**VALID, **changes}
    with capture_logs() as logs, pytest.raises(InvalidInputError) as info:
        rig.executor.execute_trade(args.pop("symbol"), args.pop("side"), args.pop("qty"), **args)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.field == field
    assert field in str(err)
    assert_nothing_sent(rig)
    assert logs.events("trade_started") == []


@pytest.mark.parametrize(
    "qty", [Decimal("0.5"), "0.001", 1.5, 3, "2", Decimal("0.123456789")], ids=repr
)
def test_positive_and_fractional_quantities_are_accepted(qty: Any) -> None:
    rig = make_rig()
    result = rig.trade("AAPL", "buy", qty)
    assert result.filled, result
    assert result.filled_qty == Decimal(str(qty))
    assert rig.position("AAPL") == Decimal(str(qty))


def test_lowercase_symbol_and_enum_sides_are_normalised() -> None:
    from alpaca.trading.enums import OrderSide, TimeInForce

    rig = make_rig()
    result = rig.trade(" msft ", OrderSide.SELL, 2, time_in_force=TimeInForce.GTC)
    assert result.filled
    assert result.fill is not None
    assert result.fill.symbol == "MSFT"
    assert rig.position("MSFT") == -2


def test_order_config_is_validated() -> None:
    with pytest.raises(InvalidInputError) as info:
        OrderConfig(submit_attempts=0)
    assert info.value.field == "submit_attempts"
    with pytest.raises(InvalidInputError) as info:
        OrderConfig(consistency_timeout_seconds=math.nan)
    assert info.value.field == "consistency_timeout_seconds"
    with pytest.raises(InvalidInputError) as info:
        OrderConfig(legacy_poll_interval=0)
    assert info.value.field == "legacy_poll_interval"
    with pytest.raises(InvalidInputError) as info:
        OrderConfig(fill_detection="fast")  # type: ignore[arg-type]
    assert info.value.field == "fill_detection"
    assert OrderConfig().consistency_check is True
    assert OrderConfig().use_fill_detection_engine is True


# ---------------------------------------------------------------------------------- identity
def test_client_order_id_is_minted_once_and_keys_the_result_and_every_log_line() -> None:
    rig = make_rig(faults={"lost_submit_rate": 1.0, "lost_submit_modes": ["504"]})
    with capture_logs() as logs:
        result = rig.trade("AAPL", "buy", 3, expected_price=rig.broker.price("AAPL"))
    coid = result.client_order_id
    assert uuid.UUID(coid).version == 4
    assert result.fill is not None
    assert result.fill.client_order_id == coid
    [order] = rig.orders_of(coid)
    assert result.order_id == order.id
    assert [p["body"]["client_order_id"] for p in rig.posts(coid)] == [coid]
    records = logs.events()
    assert len(records) > 8
    missing = [(r.getMessage()) for r in records if event_fields(r).get("client_order_id") != coid]
    assert missing == [], "log lines of the trade without its client_order_id"


def test_caller_client_order_id_is_used() -> None:
    rig = make_rig()
    result = rig.trade("AAPL", "buy", 1, client_order_id="my-key-1")
    assert result.client_order_id == "my-key-1"
    [order] = rig.orders_of("my-key-1")
    assert order.id == result.order_id


def test_two_trades_get_two_ids() -> None:
    rig = make_rig()
    a = rig.trade("AAPL", "buy", 1)
    b = rig.trade("AAPL", "buy", 1)
    assert a.client_order_id != b.client_order_id
    assert len(rig.broker.list_orders()) == 2


def test_sdk_retry_is_off() -> None:
    rig = make_rig()
    assert rig.client._retry == 0
    assert rig.executor.engine.transport_owned


# ---------------------------------------------------------------------------------- submit
@pytest.mark.parametrize("mode", ["504", "reset", "hang"])
def test_submit_answer_lost_after_the_order_exists_is_found_by_lookup(mode: str) -> None:
    rig = make_rig(faults={"lost_submit_rate": 1.0, "lost_submit_modes": [mode]})
    with capture_logs() as logs:
        result = rig.trade("AAPL", "buy", 4, expected_price=rig.broker.price("AAPL"))
    coid = result.client_order_id
    [order] = rig.orders_of(coid)
    posts = rig.posts(coid)
    assert [p["outcome"] for p in posts] == [f"applied, response lost ({mode})"]
    assert result.order_id == order.id
    assert result.submit_attempts == 1
    assert result.error is None
    assert result.filled
    assert result.filled_qty == order.filled_qty == 4
    assert result.fill_price == order.filled_avg_price
    assert logs.fields("submit_outcome_unknown")[0]["attempt"] == 1
    assert logs.fields("order_found_after_ambiguous_submit")[0]["order_id"] == order.id
    assert logs.events("resubmitting") == []
    assert len(logs.events("monitoring_started")) == 1


@pytest.mark.parametrize(
    ("status", "reset", "delay"),
    [
        (500, False, 0.0),
        (502, False, 0.0),
        (503, False, 0.0),
        (504, False, 0.0),
        (0, True, 0.0),
        (504, False, 30.0),
    ],
    ids=["500", "502", "503", "504", "reset", "hang"],
)
def test_submit_failing_before_apply_is_confirmed_absent_then_resubmitted_once(
    status: int, reset: bool, delay: float
) -> None:
    rig = make_rig()
    script(rig.api, answer_with(status, method="POST", path=ORDERS, reset=reset, delay=delay))
    with capture_logs() as logs:
        result = rig.trade("AAPL", "buy", 2)
    coid = result.client_order_id
    [order] = rig.orders_of(coid)
    assert [p["outcome"] for p in rig.posts(coid)] == [f"scripted:{status}", "accepted"]
    assert [p["body"]["client_order_id"] for p in rig.posts(coid)[1:]] == [coid]
    assert result.order_id == order.id
    assert result.submit_attempts == 2
    assert result.filled
    lookups = logs.fields("order_lookup")
    assert [f["found"] for f in lookups] == [False] * rig.executor.config.lookup_attempts
    assert logs.fields("resubmitting")[0]["reason"] == "confirmed not placed"
    # the lookups were spaced apart before the resubmit
    spacing = rig.executor.config.lookup_spacing_seconds
    assert sum(1 for slept in rig.clock.slept if abs(slept - spacing) < 1e-9) >= 2


def test_submit_never_applied_after_ambiguous_attempts_is_unknown_then_resolved_not_placed() -> None:
    """Rule 3: giving up after ambiguous attempts (5xx) is UNKNOWN, never "not placed"; the
    trade stays unresolved and resolve_unknown() says NOT_PLACED once the horizon passed."""
    rig = make_rig(config=fast_config(submit_attempts=3, unknown_horizon_seconds=30.0))
    script(rig.api, answer_with(503, method="POST", path=ORDERS, times=10))
    result = rig.trade("AAPL", "buy", 2)
    assert result.outcome is TradeOutcome.UNKNOWN
    assert result.order_id is None
    assert result.fill is None
    assert result.status is None
    assert not result.filled
    assert result.error is not None
    assert len(rig.posts(result.client_order_id)) == 3
    assert rig.broker.list_orders() == []
    [kept] = rig.executor.unresolved_trades()
    assert kept.intent.client_order_id == result.client_order_id
    assert rig.executor.resolve_unknown() == []  # 404, but not yet for the horizon
    rig.advance(30.0)
    [resolved] = rig.executor.resolve_unknown()
    assert resolved.outcome is TradeOutcome.NOT_PLACED
    assert resolved.client_order_id == result.client_order_id
    assert rig.executor.unresolved_trades() == []


def test_submit_rate_limited_on_every_attempt_is_not_placed() -> None:
    """A 429 is the broker's word that nothing was applied: NOT_PLACED, with no look-ups."""
    rig = make_rig(config=fast_config(submit_attempts=3))
    limited = b'{"code":42910000,"message":"rate limit exceeded"}'
    script(rig.api, answer_with(429, method="POST", path=ORDERS, times=10, body=limited))
    with capture_logs() as logs:
        result = rig.trade("AAPL", "buy", 2)
    assert result.outcome is TradeOutcome.NOT_PLACED
    assert result.error is not None
    assert result.error.startswith("not placed")
    assert len(rig.posts(result.client_order_id)) == 3
    assert logs.events("order_lookup") == []
    assert rig.executor.unresolved_trades() == []


def test_lookup_unavailable_after_ambiguous_submit_is_outcome_unknown_not_resubmitted() -> None:
    rig = make_rig(config=fast_config(max_retries=1))
    script(
        rig.api,
        answer_with(503, method="POST", path=ORDERS),
        answer_with(503, method="GET", path=BY_COID, times=100),
    )
    result = rig.trade("AAPL", "buy", 2)
    assert result.order_id is None
    assert result.error is not None
    assert result.error.startswith("outcome unknown")
    assert len(rig.posts(result.client_order_id)) == 1


def test_lost_submit_when_the_lookup_first_fails_then_finds_the_order() -> None:
    rig = make_rig(
        faults={"lost_submit_rate": 1.0, "lost_submit_modes": ["reset"]},
        config=fast_config(max_retries=0),
    )
    script(rig.api, answer_with(503, method="GET", path=BY_COID, times=1))
    result = rig.trade("AAPL", "buy", 2)
    [order] = rig.orders_of(result.client_order_id)
    assert result.order_id == order.id
    assert result.filled
    assert len(rig.posts(result.client_order_id)) == 1


def test_duplicate_client_order_id_fetches_the_existing_order() -> None:
    rig = make_rig()
    existing = rig.broker.submit(
        OrderRequest(
            symbol="AAPL",
            side="buy",
            type="market",
            time_in_force="day",
            qty=Decimal(2),
            client_order_id="dup-1",
        )
    )
    with capture_logs() as logs:
        result = rig.trade("AAPL", "buy", 2, client_order_id="dup-1")
    assert result.order_id == existing.id
    assert result.error is None
    assert result.filled
    assert len(rig.orders_of("dup-1")) == 1
    assert [p["outcome"] for p in rig.posts("dup-1")] == ["duplicate"]
    assert logs.fields("duplicate_client_order_id")[0]["client_order_id"] == "dup-1"


def test_duplicate_after_a_lost_first_answer_is_one_order() -> None:
    # The first POST is applied but its answer is lost; the lookups do not see it (scripted
    # 404s, as a lagging index would); the resubmit is refused as a duplicate; fetched.
    rig = make_rig(faults={"lost_submit_rate": 1.0, "lost_submit_modes": ["504"]})
    not_found = b'{"code":40410000,"message":"order not found"}'
    script(rig.api, answer_with(404, method="GET", path=BY_COID, times=3, body=not_found))
    result = rig.trade("AAPL", "buy", 2)
    coid = result.client_order_id
    [order] = rig.orders_of(coid)
    assert [p["outcome"] for p in rig.posts(coid)] == [
        "applied, response lost (504)",
        "duplicate",
    ]
    assert result.order_id == order.id
    assert result.filled


def test_insufficient_buying_power_is_reported_without_retry() -> None:
    rig = make_rig()
    with capture_logs() as logs:
        result = rig.trade("AAPL", "buy", 100_000)
    assert result.order_id is None
    assert result.fill is None
    assert result.consistency is None
    assert result.error is not None
    assert "insufficient buying power" in result.error
    assert "403" in result.error
    assert result.submit_attempts == 1
    assert [p["outcome"] for p in rig.posts(result.client_order_id)] == ["refused:403"]
    assert logs.events("order_refused")[0].levelno == logging.ERROR
    assert logs.events("order_lookup") == []
    assert logs.events("retry") == []


def test_selling_more_than_held_is_refused_and_the_book_is_unchanged() -> None:
    rig = make_rig()
    assert rig.trade("AAPL", "buy", 2).filled
    result = rig.trade("AAPL", "sell", 5)
    assert result.order_id is None
    assert result.error is not None
    assert "insufficient qty" in result.error
    assert rig.executor.expected_position("AAPL") == 2


def test_bad_credentials_are_an_error_result_and_no_order() -> None:
    rig = make_rig(server_secret="the-real-secret")
    result = rig.trade("AAPL", "buy", 1)
    assert result.order_id is None
    assert result.error is not None
    assert "403" in result.error
    assert rig.broker.list_orders() == []


# ---------------------------------------------------------------------------------- flag
def test_engine_is_the_default_path() -> None:
    rig = make_rig()
    assert rig.executor.fill_detection_enabled
    result = rig.trade("AAPL", "buy", 1)
    assert result.fill is not None
    assert result.fill.detection_method != "legacy_polling"
    assert result.fill.verification is not None


def test_flag_off_runs_the_legacy_loop() -> None:
    rig = make_rig(config=fast_config(use_engine=False))
    assert not rig.executor.fill_detection_enabled
    with capture_logs() as logs:
        result = rig.trade("AAPL", "buy", 3)
    assert result.fill is not None
    assert result.fill.detection_method == "legacy_polling"
    assert result.filled
    [order] = rig.orders_of(result.client_order_id)
    assert result.fill_price == order.filled_avg_price
    assert logs.events("monitoring_started") == []
    assert logs.fields("trade_started")[0]["fill_detection"] == "legacy"
    assert result.consistency is not None
    assert result.consistency.consistent


def test_legacy_loop_times_out_on_a_resting_order() -> None:
    rig = make_rig(config=fast_config(use_engine=False, timeout=3.0, legacy_poll_interval=1.0))
    price = rig.broker.price("AAPL")
    result = rig.trade("AAPL", "buy", 1, order_type="limit", limit_price=price / 2)
    assert result.fill is not None
    assert result.status is FillStatus.TIMEOUT
    assert result.fill.api_calls == 4  # t = 0, 1, 2, 3
    assert result.consistency is None


def test_runtime_toggle_switches_paths() -> None:
    rig = make_rig()
    first = rig.trade("AAPL", "buy", 1)
    rig.executor.fill_detection_enabled = False
    second = rig.trade("AAPL", "buy", 1)
    rig.executor.fill_detection_enabled = True
    third = rig.trade("AAPL", "buy", 1)
    methods = [r.fill.detection_method for r in (first, second, third)]
    assert methods[1] == "legacy_polling"
    assert methods[0] != "legacy_polling"
    assert methods[2] != "legacy_polling"
    assert all(r.filled for r in (first, second, third))
    assert rig.executor.expected_position("AAPL") == 3 == rig.position("AAPL")


@pytest.mark.parametrize(
    ("value", "engine"),
    [("legacy", False), (" LEGACY ", False), ("engine", True), ("", True)],
)
def test_env_var_forces_the_legacy_loop(
    monkeypatch: pytest.MonkeyPatch, value: str, engine: bool
) -> None:
    monkeypatch.setenv(ENV_FLAG, value)
    rig = make_rig()
    assert rig.executor.fill_detection_enabled is engine
    result = rig.trade("AAPL", "buy", 1)
    assert result.fill is not None
    assert (result.fill.detection_method == "legacy_polling") is (not engine)


def test_wait_for_fill_keeps_its_old_interface() -> None:
    rig = make_rig()
    order = rig.broker.submit(
        OrderRequest(symbol="AAPL", side="buy", type="market", time_in_force="day", qty=Decimal(1))
    )
    fill = rig.executor._wait_for_fill(order.id, 5.0, Decimal(200))
    assert fill.filled
    assert fill.order_id == order.id
    rig.executor.fill_detection_enabled = False
    again = rig.executor._wait_for_fill(order.id, 5.0)
    assert again.filled
    assert again.detection_method == "legacy_polling"


# ---------------------------------------------------------------------------------- consistency
def test_baseline_is_the_position_before_the_first_trade() -> None:
    rig = make_rig()
    rig.outside_fill("AAPL", "buy", Decimal(5))
    executor = SmartOrderExecutor(rig.client, fast_config(), clock=rig.clock)
    assert executor.expected_position("AAPL") is None
    result = executor.execute_trade("AAPL", "buy", 2)
    assert result.consistency is not None
    assert result.consistency.consistent
    assert result.consistency.expected_qty == 7
    assert result.consistency.broker_qty == 7
    assert result.consistency.discrepancy is None
    assert executor.expected_position("aapl") == 7


def test_no_position_is_flat_404() -> None:
    rig = make_rig()
    with capture_logs() as logs:
        result = rig.trade("AAPL", "buy", 2)
    assert logs.fields("position_baseline")[0]["qty"] == "0"
    assert result.consistency is not None
    assert result.consistency.expected_qty == 2
    sell = rig.trade("AAPL", "sell", 2)
    assert sell.consistency is not None
    assert sell.consistency.consistent
    assert sell.consistency.broker_qty == 0
    assert sell.consistency.broker_side is None
    assert rig.executor.expected_position("AAPL") == 0


def test_position_lag_is_rechecked_until_consistent() -> None:
    rig = make_rig(
        faults={"position_lag_seconds": 1.5}, config=fast_config(consistency_timeout_seconds=3.0)
    )
    result = rig.trade("AAPL", "buy", 2)
    assert result.consistency is not None
    assert result.consistency.consistent
    assert result.consistency.checks > 1
    assert result.consistency.broker_qty == 2
    assert rig.executor.expected_position("AAPL") == 2


def test_outside_trade_is_a_mismatch_reported_and_synced_once_past_the_lag_window() -> None:
    """Rule 5: a difference read right after our fill may be lag: unverified, never synced;
    the same difference read past the lag window is a mismatch, reported and synced."""
    rig = make_rig(config=fast_config(position_settle_seconds=5.0))
    assert rig.trade("AAPL", "buy", 2).consistency.consistent
    rig.outside_fill("AAPL", "buy", Decimal(3))
    with capture_logs() as logs:
        result = rig.trade("AAPL", "buy", 1)
    c = result.consistency
    assert c is not None
    assert not c.consistent
    assert c.verdict == "unverified"
    assert not c.synced
    assert c.expected_qty == 3
    assert c.broker_qty == 6
    assert result.filled  # the trade itself is fine
    assert not logs.events("position_synced")
    assert rig.executor.expected_position("AAPL") == 3
    rig.advance(5.0)
    with capture_logs() as logs:
        late = rig.executor.check_position("AAPL")
    assert late is not None
    assert late.verdict == "mismatch"
    assert late.synced
    assert late.discrepancy is not None
    assert "expected 3" in late.discrepancy
    assert "6" in late.discrepancy
    [synced] = logs.events("position_synced")
    assert synced.levelno == logging.ERROR
    assert event_fields(synced)["delta"] == "3"
    assert event_fields(synced)["broker_qty"] == "6"
    assert any(r.levelno == logging.ERROR for r in logs.events("consistency_check"))
    assert rig.executor.expected_position("AAPL") == 6
    nxt = rig.trade("AAPL", "sell", 1)
    assert nxt.consistency is not None
    assert nxt.consistency.consistent
    assert nxt.consistency.expected_qty == 5


def test_short_positions() -> None:
    rig = make_rig()
    result = rig.trade("AAPL", "sell", 3)
    c = result.consistency
    assert c is not None
    assert c.consistent
    assert c.expected_qty == c.broker_qty == -3
    assert c.expected_side == c.broker_side == "short"
    cover = rig.trade("AAPL", "buy", 1)
    assert cover.consistency is not None
    assert cover.consistency.broker_qty == -2
    rig.outside_fill("AAPL", "sell", Decimal(1))
    again = rig.trade("AAPL", "buy", 1)
    assert again.consistency is not None
    assert not again.consistency.consistent
    assert again.consistency.expected_qty == -1
    assert again.consistency.broker_qty == -2
    rig.advance(rig.executor.config.position_settle_seconds)
    late = rig.executor.check_position("AAPL")
    assert late is not None
    assert late.synced
    assert rig.executor.expected_position("AAPL") == -2


def test_side_flip_is_named_in_the_discrepancy() -> None:
    rig = make_rig()
    rig.trade("AAPL", "buy", 1)
    rig.outside_fill("AAPL", "sell", Decimal(1))
    rig.outside_fill("AAPL", "sell", Decimal(2))
    result = rig.trade("AAPL", "buy", 1)
    c = result.consistency
    assert c is not None
    assert not c.consistent
    assert c.expected_side == "long"
    assert c.broker_side == "short"
    assert c.discrepancy is not None
    assert "long vs short" in c.discrepancy


def test_partial_fill_counts_toward_the_expected_position() -> None:
    slow_parts = BrokerConfig(partial_gap=Latency("fixed", 1.0, 1.0))
    rig = make_rig(
        faults={"partial_fill_rate": 1.0, "max_partial_fills": 4},
        broker_config=slow_parts,
        config=fast_config(partial_fill_policy="cancel_remainder"),
    )
    with capture_logs() as logs:
        result = rig.trade("AAPL", "buy", 10)
    [order] = rig.orders_of(result.client_order_id)
    assert order.status == "canceled"
    assert result.status is FillStatus.PARTIALLY_FILLED
    assert 0 < result.filled_qty < 10
    assert result.filled_qty == order.filled_qty
    assert not result.filled
    assert logs.fields("partial_fill_detected")[0]["action"] == "cancel_remainder"
    assert logs.events("cancel_requested")
    c = result.consistency
    assert c is not None
    assert c.consistent
    assert c.expected_qty == result.filled_qty == rig.position("AAPL")
    assert rig.executor.expected_position("AAPL") == result.filled_qty


def test_consistency_check_can_be_switched_off() -> None:
    rig = make_rig(config=fast_config(consistency_check=False))
    result = rig.trade("AAPL", "buy", 1)
    assert result.filled
    assert result.consistency is None
    assert rig.executor.expected_position("AAPL") is None
    assert all("/v2/positions" not in x.path for x in rig.adapter.exchanges)


def test_no_fill_no_consistency_check() -> None:
    rig = make_rig(config=fast_config(timeout=1.0))
    price = rig.broker.price("AAPL")
    result = rig.trade("AAPL", "buy", 1, order_type="limit", limit_price=price / 2)
    assert result.status is FillStatus.TIMEOUT
    assert result.consistency is None
    assert result.error is None or "filled" not in result.error
    [order] = rig.orders_of(result.client_order_id)
    assert order.status == "canceled"


def test_trade_result_shortcuts() -> None:
    empty = TradeResult("c", None, None, None, "nope")
    assert not empty.filled
    assert empty.filled_qty == 0
    assert empty.fill_price is None
    assert empty.status is None
    with pytest.raises(AttributeError):
        empty.error = "changed"  # type: ignore[misc]
    rig = make_rig()
    result = rig.trade("AAPL", "buy", 2)
    assert result.filled
    assert result.status is FillStatus.FILLED
    assert result.filled_qty == 2
    assert result.fill_price is not None
    assert result.api_calls >= 3


def test_duplicate_whose_order_cannot_be_read_is_not_reported_as_not_placed() -> None:
    # The broker says the client_order_id is taken (so an order exists), but every lookup
    # fails: the result must not claim "not placed" (order_id None means never accepted).
    rig = make_rig(config=fast_config(max_retries=0))
    existing = rig.broker.submit(
        OrderRequest(
            symbol="AAPL",
            side="buy",
            type="market",
            time_in_force="day",
            qty=Decimal(1),
            client_order_id="dup-2",
        )
    )
    script(rig.api, answer_with(503, method="GET", path=BY_COID, times=100))
    result = rig.trade("AAPL", "buy", 1, client_order_id="dup-2")
    assert rig.orders_of("dup-2") == [existing]
    assert result.order_id is None
    assert result.error is not None
    assert result.error.startswith("outcome unknown"), result.error
    assert len(rig.posts("dup-2")) == 1


# ------------------------------------------------------------------ orders left open


def test_order_left_open_at_the_deadline_is_booked_when_it_fills_later() -> None:
    """A limit left open (no cancel at the deadline) that fills later is booked, with no mismatch."""
    rig = make_rig(config=fast_config(timeout=1.0, cancel_on_timeout=False))
    price = rig.broker.price("AAPL")
    resting = rig.trade(
        "AAPL",
        "buy",
        Decimal(4),
        order_type="limit",
        limit_price=(price * Decimal("0.5")).quantize(Decimal("0.01")),
        time_in_force="gtc",
    )
    assert resting.status is FillStatus.TIMEOUT
    assert resting.fill is not None
    assert resting.fill.order_open
    assert rig.executor.open_orders("AAPL") == {resting.order_id: Decimal(0)}
    rig.broker.set_price("AAPL", price * Decimal("0.4"))  # the market comes down to the limit
    rig.advance(2.0)
    assert rig.position("AAPL") == Decimal(4)

    nxt = rig.trade("AAPL", "buy", Decimal(1))
    assert nxt.filled
    assert nxt.consistency is not None
    assert nxt.consistency.consistent, nxt.consistency
    assert rig.executor.expected_position("AAPL") == Decimal(5) == rig.position("AAPL")
    assert rig.executor.open_orders("AAPL") == {}


def test_position_check_waits_while_our_order_is_still_open() -> None:
    """No check (and so no sync) while one of our orders may still fill: it would double count."""
    rig = make_rig(config=fast_config(timeout=1.0, cancel_on_timeout=False))
    price = rig.broker.price("AAPL")
    rig.trade(
        "AAPL",
        "buy",
        Decimal(2),
        order_type="limit",
        limit_price=(price * Decimal("0.5")).quantize(Decimal("0.01")),
        time_in_force="gtc",
    )
    with capture_logs() as logs:
        nxt = rig.trade("AAPL", "buy", Decimal(1))
    assert nxt.filled
    assert nxt.consistency is None
    assert any(f.get("reason") == "orders still open" for f in logs.fields("consistency_deferred"))
    assert not logs.events("position_synced")
    assert rig.executor.expected_position("AAPL") == rig.position("AAPL") == Decimal(1)
