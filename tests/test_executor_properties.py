"""Hypothesis properties of SmartOrderExecutor in fake time against the simulator's ledger.

* plan property 6: after random fills the broker's position equals the expected one, or the
  mismatch was reported (``consistent=False``) and synced;
* plan property 7: every required log event is present, with its fields, for random orders
  under random faults;
* one trade, one order: under random submit faults the ledger holds exactly one order per
  client_order_id, and nothing the executor called "not placed" exists.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from fillguard.executor import SmartOrderExecutor, TradeResult
from fillguard.logs import event_fields
from fillguard.results import FillStatus
from fillguard.sim.core import SimError
from tests.executor_support import (
    ERROR_EVENTS,
    LogCapture,
    Rig,
    capture_logs,
    fast_config,
    make_rig,
)

PROPERTY = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

SYMBOLS = ("AAPL", "MSFT")

whole = st.integers(1, 12).map(Decimal)
fractional = st.integers(1, 3000).map(lambda n: Decimal(n) / 1000)
quantities = st.one_of(whole, fractional)
seeds = st.integers(0, 2**20)


# ---------------------------------------------------------------------------------- property 6
steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("trade"), st.sampled_from(SYMBOLS), st.sampled_from(["buy", "sell"]), quantities
        ),
        st.tuples(
            st.just("outside"), st.sampled_from(SYMBOLS), st.sampled_from(["buy", "sell"]), whole
        ),
    ),
    min_size=1,
    max_size=8,
)


SETTLE = 3.0  # the lag window: longer than every lag drawn below


@PROPERTY
@given(
    plan=steps,
    seed=seeds,
    lag=st.sampled_from([0.0, 0.05, 0.3, 1.0, 2.0]),
    partial_rate=st.sampled_from([0.0, 0.5, 1.0]),
    cancel_race=st.sampled_from([0.0, 0.5]),
    policy=st.sampled_from(["cancel_remainder", "wait"]),
    preexisting=st.integers(0, 5),
    pause=st.sampled_from([0.0, SETTLE]),
)
def test_property_6_position_equals_expected_or_mismatch_is_reported_and_synced(
    plan: list[tuple[str, str, str, Decimal]],
    seed: int,
    lag: float,
    partial_rate: float,
    cancel_race: float,
    policy: str,
    preexisting: int,
    pause: float,
) -> None:
    """A check is consistent (book = broker), unverified (never written into the book), or a
    mismatch read past the lag window (reported, synced to the broker's true position); once
    quiet past the lag window, the book equals the broker's position."""
    rig = make_rig(
        seed=seed,
        faults={
            "position_lag_seconds": lag,
            "partial_fill_rate": partial_rate,
            "cancel_race_rate": cancel_race,
        },
        config=fast_config(
            consistency_timeout_seconds=3.0,
            partial_fill_policy=policy,
            position_settle_seconds=SETTLE,
        ),
    )
    if preexisting:
        rig.outside_fill("AAPL", "buy", Decimal(preexisting))
    # dirty: the broker may legitimately differ from the book (an outside trade, or a fill
    # whose check was skipped) since the last check of that symbol.
    dirty = dict.fromkeys(SYMBOLS, False)
    with capture_logs() as logs:
        for kind, symbol, side, qty in plan:
            if kind == "outside":
                try:
                    rig.outside_fill(symbol, side, qty)
                except SimError:
                    continue  # refused by the broker (e.g. it would flip the position)
                dirty[symbol] = True
                continue
            logs.clear()
            before = rig.executor.expected_position(symbol)
            result = rig.trade(symbol, side, qty)
            rig.advance(pause)
            book = rig.executor.expected_position(symbol)
            truth = rig.position(symbol)
            c = result.consistency
            event(f"trade: {result.status.value if result.status else 'not placed'}")
            if c is not None:
                event(f"check: {c.verdict}")
            if c is None:
                if result.filled_qty > 0:
                    dirty[symbol] = True
                continue
            assert c.symbol == symbol
            assert result.filled_qty > 0
            if c.verdict == "consistent":
                assert c.broker_qty == c.expected_qty == book, (c, book)
                assert c.discrepancy is None
                assert logs.events("position_synced") == []
                if truth != book:
                    # A lagging position that happens to equal the book (an outside trade
                    # just before ours) hides the difference until a later check.
                    assert dirty[symbol], f"consistent, but the broker has {truth}: {c}"
                    assert lag > 0
                    continue
            elif c.verdict == "unverified":
                # Maybe lag: nothing is written into the book.
                assert logs.events("position_synced") == []
                assert not c.synced
                assert before is None or book == c.expected_qty
                dirty[symbol] = True
                continue
            else:
                assert dirty[symbol], f"mismatch with nothing outside the book: {c}"
                assert c.discrepancy
                assert c.broker_qty is not None
                [synced] = logs.fields("position_synced")
                assert synced["broker_qty"] == str(c.broker_qty)
                assert Decimal(synced["delta"]) == c.broker_qty - c.expected_qty
                assert book == c.broker_qty == truth, (c, book, truth)
            dirty[symbol] = False
        # Quiet past the lag window: one check per symbol makes the book equal the broker.
        rig.advance(SETTLE + lag + 1.0)
        for symbol in SYMBOLS:
            if rig.executor.expected_position(symbol) is None:
                continue
            logs.clear()
            final = rig.executor.check_position(symbol)
            assert final is not None, final
            assert final.verdict in ("consistent", "mismatch"), final
            assert rig.executor.expected_position(symbol) == rig.position(symbol)
            assert final.consistent is (not logs.events("position_synced"))


# ---------------------------------------------------------------------------------- property 7
fault_profiles = st.fixed_dictionaries(
    {
        "http_error_rate": st.sampled_from([0.0, 0.1, 0.3]),
        "reset_rate": st.sampled_from([0.0, 0.05, 0.2]),
        "hang_rate": st.sampled_from([0.0, 0.05]),
        "hang_seconds": st.just(5.0),
        "stale_read_rate": st.sampled_from([0.0, 0.3]),
        "lost_submit_rate": st.sampled_from([0.0, 0.5, 1.0]),
        "lost_submit_modes": st.sampled_from(
            [["504"], ["reset"], ["hang"], ["504", "reset", "hang"]]
        ),
        "missing_price_rate": st.sampled_from([0.0, 0.5]),
        "partial_fill_rate": st.sampled_from([0.0, 0.5]),
        "cancel_race_rate": st.sampled_from([0.0, 0.5]),
        "reject_rate": st.sampled_from([0.0, 0.2]),
        "position_lag_seconds": st.sampled_from([0.0, 0.5]),
        "rate_limit_burst_rate": st.sampled_from([0.0, 0.05]),
    }
)

orders = st.fixed_dictionaries(
    {
        "side": st.sampled_from(["buy", "sell"]),
        "qty": whole,
        "order_type": st.sampled_from(["market", "market", "limit"]),
        "limit_offset": st.sampled_from([Decimal("-0.2"), Decimal("0.002"), Decimal("0.2")]),
        "with_expected_price": st.booleans(),
        "timeout": st.sampled_from([0.5, 2.0, 5.0]),
    }
)


def _has(fields: dict[str, Any], *names: str) -> None:
    missing = [n for n in names if n not in fields]
    assert not missing, f"missing {missing} in {fields}"


def check_required_events(rig: Rig, logs: LogCapture, result: TradeResult, since: int) -> None:
    """Every event property 7 requires, with its fields, for one trade."""
    coid = result.client_order_id
    records = logs.events()
    without_id = [r.getMessage() for r in records if event_fields(r).get("client_order_id") != coid]
    assert not without_id, f"records without the client_order_id: {without_id}"

    [started] = logs.fields("trade_started")
    _has(started, "symbol", "side", "qty", "order_type", "time_in_force")
    [finished] = logs.fields("trade_finished")
    assert finished["order_id"] == result.order_id

    # every error and retry: one record per failed exchange, and none without one
    exchanges = rig.adapter.exchanges[since:]
    failures = [x for x in exchanges if x.failed]
    errors = [r for r in records if r.getMessage().split()[0] in ERROR_EVENTS]
    errors_fields = [event_fields(r) for r in errors]
    distinct = [
        r
        for i, r in enumerate(errors)
        if not (
            i > 0
            and r.getMessage().startswith("retries_exhausted")
            and errors[i - 1].getMessage().startswith("retry ")
            and not any(
                LogCapture.seq(errors[i - 1]) < x.seq < LogCapture.seq(r) for x in exchanges
            )
        )
    ]
    assert len(distinct) == len(failures), (failures, [r.getMessage() for r in errors])
    for fields in errors_fields:
        _has(fields, "error_type", "message", "attempt", "kind")
    for fields in logs.fields("retry"):
        _has(fields, "delay")
        assert fields["delay"] >= 0

    if result.order_id is None:
        assert logs.events("monitoring_started") == []
        assert result.error
        return
    fill = result.fill
    assert fill is not None

    [monitoring] = logs.fields("monitoring_started")
    assert monitoring["order_id"] == result.order_id
    assert monitoring["client_order_id"] == coid
    assert monitoring["timeout"] > 0
    assert monitoring["config"]["timeout_seconds"] == monitoring["timeout"]
    _has(monitoring["config"], "max_retries", "partial_fill_policy", "request_timeout_seconds")
    [done] = logs.fields("monitoring_finished")
    assert done["status"] == fill.status.value

    transitions = logs.fields("status_transition")
    previous: str | None = None
    last_elapsed = 0.0
    for fields in transitions:
        _has(fields, "old", "new", "elapsed", "checks", "order_id")
        assert fields["order_id"] == result.order_id
        assert fields["old"] == previous
        assert fields["elapsed"] >= last_elapsed
        previous, last_elapsed = fields["new"], fields["elapsed"]
    if fill.status is FillStatus.FILLED:
        assert previous == "filled"

    verifications = logs.events("verification")
    if transitions:
        assert verifications
    for record in verifications:
        assert record.levelno == logging.DEBUG
        fields = event_fields(record)
        _has(fields, "status_field", "quantity_match", "fill_price", "timestamps", "is_filled")
        assert 0.0 <= fields["confidence"] <= 1.0

    confirmed = logs.fields("fill_confirmed")
    if fill.status is FillStatus.FILLED:
        assert any(event_fields(r)["is_filled"] for r in verifications)
        [c] = confirmed
        assert c["fill_price"] == str(fill.fill_price)
        assert c["filled_qty"] == str(fill.filled_qty)
        assert c["filled_at"] == fill.filled_at.isoformat()  # type: ignore[union-attr]
        assert c["method"] == fill.detection_method
        _has(c, "elapsed", "checks", "confidence")
    else:
        assert confirmed == []

    slippage = logs.fields("slippage") + logs.fields("slippage_exceeded")
    if monitoring["expected_price"] is not None and fill.fill_price is not None:
        [s] = slippage
        assert s["fill_price"] == str(fill.fill_price)
        _has(s, "expected_price", "slippage_pct", "threshold_pct")
        assert Decimal(s["slippage_pct"]) == fill.slippage_pct
    else:
        assert slippage == []

    partial = logs.fields("partial_fill_detected")
    if fill.detection_method == "partial_fill_cancel":
        assert partial
    for fields in partial:
        _has(fields, "filled_qty", "requested_qty", "action")

    deletes = [
        x
        for x in rig.adapter.exchanges[since:]
        if x.method == "DELETE" and result.order_id in x.path
    ]
    requested = logs.fields("cancel_requested")
    results = logs.fields("cancel_result")
    assert len(requested) == len(results)
    assert bool(deletes) == bool(requested)
    assert len(requested) <= len(deletes)
    for fields in results:
        _has(fields, "outcome", "status_code", "message")

    checks = logs.fields("consistency_check")
    if result.consistency is None:
        assert checks == []
    else:
        [check] = checks
        assert check["consistent"] is result.consistency.consistent
        assert check["expected_qty"] == str(result.consistency.expected_qty)
        _has(check, "broker_qty", "discrepancy", "checks", "symbol")
        assert check["verdict"] == result.consistency.verdict
        synced = logs.fields("position_synced")
        if result.consistency.synced:
            assert result.consistency.verdict == "mismatch"
            assert len(synced) == 1
        else:
            assert synced == []


@PROPERTY
@given(faults=fault_profiles, order_list=st.lists(orders, min_size=1, max_size=3), seed=seeds)
def test_property_7_every_required_log_event_is_present_with_its_fields(
    faults: dict[str, Any], order_list: list[dict[str, Any]], seed: int
) -> None:
    rig = make_rig(seed=seed, faults=faults)
    with capture_logs() as logs:
        for spec in order_list:
            since = len(rig.adapter.exchanges)
            logs.clear()
            price = rig.broker.price("AAPL")
            executor = SmartOrderExecutor(
                rig.client, fast_config(timeout=spec["timeout"]), clock=rig.clock
            )
            kwargs: dict[str, Any] = {"order_type": spec["order_type"]}
            if spec["order_type"] == "limit":
                kwargs["limit_price"] = (price * (1 + spec["limit_offset"])).quantize(
                    Decimal("0.01")
                )
            if spec["with_expected_price"]:
                kwargs["expected_price"] = price
            result = executor.execute_trade("AAPL", spec["side"], spec["qty"], **kwargs)
            event(f"status: {result.status.value if result.status else 'not placed'}")
            if any(x.failed for x in rig.adapter.exchanges[since:]):
                event("faults fired")
            if logs.events("cancel_requested"):
                event("cancel sent")
            check_required_events(rig, logs, result, since)


# ---------------------------------------------------------------------------------- one order
submit_faults = st.fixed_dictionaries(
    {
        "lost_submit_rate": st.sampled_from([0.0, 0.3, 0.7, 1.0]),
        "lost_submit_modes": st.lists(
            st.sampled_from(["504", "reset", "hang"]), min_size=1, max_size=3, unique=True
        ),
        "http_error_rate": st.sampled_from([0.0, 0.1, 0.3, 0.5]),
        "reset_rate": st.sampled_from([0.0, 0.1, 0.3]),
        "hang_rate": st.sampled_from([0.0, 0.1, 0.2]),
        "hang_seconds": st.sampled_from([3.0, 15.0]),
        "stale_read_rate": st.sampled_from([0.0, 0.3]),
        "rate_limit_burst_rate": st.sampled_from([0.0, 0.05]),
    }
)


@PROPERTY
@given(
    faults=submit_faults,
    trades=st.lists(
        st.tuples(st.sampled_from(["buy", "sell"]), quantities), min_size=1, max_size=4
    ),
    seed=seeds,
    caller_ids=st.booleans(),
    max_retries=st.sampled_from([0, 2, 5]),
)
def test_one_trade_never_becomes_two_orders(
    faults: dict[str, Any],
    trades: list[tuple[str, Decimal]],
    seed: int,
    caller_ids: bool,
    max_retries: int,
) -> None:
    rig = make_rig(seed=seed, faults=faults, config=fast_config(max_retries=max_retries))
    results: list[TradeResult] = []
    for i, (side, qty) in enumerate(trades):
        coid = f"trade-{seed}-{i}" if caller_ids else None
        results.append(rig.trade("AAPL", side, qty, client_order_id=coid))
    ledger = rig.broker.ledger()
    by_coid: dict[str, list[dict[str, Any]]] = {}
    for entry in ledger["orders"]:
        by_coid.setdefault(entry["order"]["client_order_id"], []).append(entry)
    ours = {r.client_order_id for r in results}
    assert len(ours) == len(results)
    assert all(len(entries) == 1 for entries in by_coid.values()), "duplicate orders"
    assert set(by_coid) <= ours, "orders at the broker that no trade asked for"
    for result in results:
        event(f"submit attempts: {result.submit_attempts}")
        if result.order_id is None:
            event(f"not placed: {(result.error or '').split(':')[0]}")
        entries = by_coid.get(result.client_order_id, [])
        if result.order_id is not None:
            [entry] = entries
            assert entry["order"]["id"] == result.order_id
            truth = entry["order"]
            if result.filled:
                assert truth["status"] == "filled"
                assert Decimal(truth["filled_qty"]) == result.filled_qty
                assert Decimal(truth["filled_avg_price"]) == result.fill_price
        elif result.error is None or not result.error.startswith("outcome unknown"):
            assert entries == [], f"reported not placed, but it exists: {result.error}"
        assert len(rig.posts(result.client_order_id)) <= rig.executor.config.submit_attempts
