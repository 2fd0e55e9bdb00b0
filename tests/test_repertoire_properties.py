"""Hypothesis: random trades under random combinations of every fault knob keep every promise.

The real alpaca-py client against the in-process simulator, in fake time, with the account's
trade_updates played by :class:`tests.fake_stream.FakeTimeStream` (so the stream knobs act on
the tracker as the simulator's hub applies them over a socket). For random trades (symbols,
sides, whole and fractional quantities, market and limit orders at, near or far from the price,
day and gtc) under a random draw of every knob of :class:`FaultProfile`:

* nothing escapes ``execute_trade``, and each call returns within ``config.max_trade_seconds``
  (plus a small slack) on the clock it uses;
* the outcome agrees with the ledger once the simulator has drained: ``PLACED`` iff an order
  with the trade's ``client_order_id`` exists (an ``UNKNOWN`` is resolved by
  ``resolve_unknown()`` to that truth; ``NOT_PLACED``/``REFUSED`` only when none ever appears);
  a result that says the order ended reports the ledger's filled quantity (of the whole replace
  chain), one still open never more than the ledger;
* one order per ``client_order_id``;
* at quiescence (resolved, reconciled) the executor's book equals the broker's positions.
"""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from fillguard.accounts import shutdown_all
from fillguard.executor import SmartOrderExecutor, TradeOutcome, TradeResult
from fillguard.sim.faults import FaultProfile
from tests.executor_support import Rig, capture_logs, fast_config, make_rig
from tests.fake_stream import FakeTimeStream

PROPERTY = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SYMBOLS = ("AAPL", "MSFT")
SLACK_SECONDS = 1.0
#: Fake time let pass after the trades: longer than every lag, hang, done_for_day pause, and
#: the unknown horizon (a trade the broker never learned of becomes NOT_PLACED after it).
DRAIN_SECONDS = 70.0
RESOLVE_ROUNDS = 30  # a look-up fails a third of the time under the worst mixes


def knob(*values: Any) -> st.SearchStrategy[Any]:
    """Off most of the time, else one of ``values``."""
    return st.one_of(st.just(0.0), st.sampled_from(values))


faults = st.fixed_dictionaries(
    {
        # REST, per request
        "http_error_rate": knob(0.05, 0.2),
        "rate_limit_burst_rate": knob(0.02, 0.05),
        "rate_limit_burst_length": st.sampled_from([1, 3, 5]),
        "reset_rate": knob(0.05, 0.15),
        "latency": st.sampled_from(
            [0.0, [0.001, 0.02], {"kind": "lognormal", "a": 0.005, "b": 0.08}]
        ),
        "hang_rate": knob(0.02, 0.05),
        "hang_seconds": st.sampled_from([3.0, 15.0]),
        "stale_read_rate": knob(0.1, 0.3),
        "stale_read_seconds": st.sampled_from([0.2, 0.5]),
        "lost_submit_rate": knob(0.3, 1.0),
        "lost_submit_modes": st.sampled_from(
            [["504"], ["reset"], ["hang"], ["504", "reset", "hang"]]
        ),
        # broker core, per order
        "missing_price_rate": knob(0.3, 1.0),
        "cancel_race_rate": knob(0.5, 1.0),
        "partial_fill_rate": knob(0.5, 1.0),
        "reject_rate": knob(0.1),
        "position_lag_seconds": knob(0.2, 1.0),
        # how brokers really misbehave
        "half_update_rate": knob(0.3, 1.0),
        "lookup_refused_rate": knob(0.3, 1.0),
        "not_found_lag_rate": knob(0.3, 1.0),
        "not_found_lag_seconds": st.sampled_from([1.0, 8.0]),
        "duplicate_message_variant_rate": knob(0.5, 1.0),
        "duplicate_refused_as_funds_rate": knob(0.5, 1.0),
        "position_long_lag_rate": knob(0.3, 1.0),
        "position_long_lag_seconds": st.sampled_from([2.0, 5.0]),
        "trickle_rate": knob(0.01, 0.05),
        "trickle_seconds_per_byte": st.sampled_from([0.001, 0.5]),
        "done_for_day_rate": knob(0.5, 1.0),
        "done_for_day_after_seconds": st.sampled_from([0.2, 1.0]),
        "done_for_day_seconds": st.sampled_from([1.0, 3.0]),
        "external_replace_rate": knob(0.5, 1.0),
        "external_replace_after_seconds": st.sampled_from([0.1, 0.5]),
        "timestamp_style": st.sampled_from(["micro", "nanos", "offset", "mixed"]),
        # trade_updates, per event
        "stream_drop_rate": knob(0.2, 0.5),
        "stream_duplicate_rate": knob(0.2, 0.5),
        "stream_delay_rate": knob(0.2, 0.5),
        "stream_delay_seconds": st.sampled_from([0.1, 0.5]),
        "stream_disconnect_rate": knob(0.05, 0.2),
        "stream_gap_rate": knob(0.05, 0.2),
        "stream_gap_seconds": st.sampled_from([0.5, 2.0]),
        "stream_silence_rate": knob(0.05, 0.2),
        "stream_silence_seconds": st.sampled_from([1.0, 3.0]),
    }
)

quantities = st.one_of(
    st.integers(1, 6).map(Decimal), st.integers(1, 2500).map(lambda n: Decimal(n) / 1000)
)
trades = st.lists(
    st.fixed_dictionaries(
        {
            "symbol": st.sampled_from(SYMBOLS),
            "side": st.sampled_from(["buy", "buy", "sell"]),
            "qty": quantities,
            "order_type": st.sampled_from(["market", "limit"]),
            # through the price, near it (may fill on a tick), far (rests; a replace may fill it)
            "offset": st.sampled_from([Decimal("0.01"), Decimal("-0.002"), Decimal("-0.05")]),
            "time_in_force": st.sampled_from(["day", "gtc"]),
            "pause": st.sampled_from([0.0, 0.0, 0.5, 3.0]),
        }
    ),
    min_size=1,
    max_size=4,
)
configs = st.fixed_dictionaries(
    {
        "timeout": st.sampled_from([1.0, 2.0, 4.0]),
        "partial_fill_policy": st.sampled_from(["cancel_remainder", "wait"]),
        "final_verification_seconds": st.sampled_from([2.0, 5.0]),
        "submit_timeout_seconds": st.sampled_from([3.0, 8.0]),
        "stream": st.booleans(),
    }
)


def run_trade(rig: Rig, spec: dict[str, Any]) -> tuple[TradeResult, float]:
    fractional = spec["qty"] != spec["qty"].to_integral_value()
    tif = "day" if fractional else spec["time_in_force"]  # else refused before any request
    kwargs: dict[str, Any] = {"order_type": spec["order_type"], "time_in_force": tif}
    if spec["order_type"] == "limit":
        price = rig.broker.price(spec["symbol"])
        sign = 1 if spec["side"] == "buy" else -1
        kwargs["limit_price"] = (price * (1 + sign * spec["offset"])).quantize(Decimal("0.01"))
    start = rig.clock.monotonic()
    result = rig.trade(spec["symbol"], spec["side"], spec["qty"], **kwargs)
    return result, rig.clock.monotonic() - start


def run_one(rig: Rig, spec: dict[str, Any], bound: float, results: list[TradeResult]) -> None:
    result, elapsed = run_trade(rig, spec)  # raises nothing: any exception fails here
    assert elapsed <= bound, f"{elapsed:.1f} s > {bound:.1f} s: {result}"
    assert isinstance(result.outcome, TradeOutcome)
    results.append(result)
    event(f"outcome: {result.outcome.value}")
    rig.advance(spec["pause"])


def chains(rig: Rig) -> dict[str, list[Any]]:
    """The broker's orders by client_order_id of the chain's first order (replacements join it)."""
    orders = rig.broker.orders
    out: dict[str, list[Any]] = {}
    for order in orders.values():
        head = order
        while head.replaces is not None:
            head = orders[head.replaces]
        out.setdefault(head.client_order_id, []).append(order)
    return out


def drain(rig: Rig) -> None:
    for _ in range(int(DRAIN_SECONDS)):
        rig.advance(1.0)


@PROPERTY
@given(knobs=faults, plan=trades, config=configs, seed=st.integers(0, 2**20))
def test_every_promise_holds_under_any_mix_of_the_whole_repertoire(
    knobs: dict[str, Any], plan: list[dict[str, Any]], config: dict[str, Any], seed: int
) -> None:
    shutdown_all()  # a fresh tracker (and fake stream) per example
    profile = FaultProfile().with_(**knobs)
    use_stream = config.pop("stream")
    timeout = config.pop("timeout")
    # No retry jitter and numbered ids: an example replays exactly (Hypothesis shrinks it).
    order_config = fast_config(timeout=timeout, retry_jitter=0.0, **config)
    rig = make_rig(seed=seed, faults=profile, config=order_config)
    ids = itertools.count(1)
    rig.executor = executor = SmartOrderExecutor(
        rig.client, order_config, clock=rig.clock, id_factory=lambda: f"props8-{next(ids)}"
    )
    bound = executor.config.max_trade_seconds + SLACK_SECONDS
    stream = FakeTimeStream(rig.broker, executor.engine.tracker) if use_stream else None
    results: list[TradeResult] = []
    with capture_logs():
        for spec in plan:
            run_one(rig, spec, bound, results)
    if stream is not None:
        event(f"stream: {'events lost' if stream.lost else 'every event delivered'}")
        event(f"stream: {'reconnected' if stream.reconnects else 'never reconnected'}")

    # ---- quiescence: the simulator drains, unknowns are resolved, open orders reconciled
    drain(rig)
    resolved: dict[str, TradeResult] = {}
    for _ in range(RESOLVE_ROUNDS):  # a look-up may fail too (a 429, a reset): ask again
        resolved.update((r.client_order_id, r) for r in executor.resolve_unknown())
        if not executor.unresolved_trades():
            break
        rig.advance(2.0)
    for symbol in SYMBOLS:
        executor.reconcile_open_orders(symbol)
    assert executor.unresolved_trades() == [], executor.unresolved_trades()

    by_coid = chains(rig)
    for coid, orders in by_coid.items():
        heads = [o for o in orders if o.replaces is None]
        assert len(heads) == 1, f"{len(heads)} orders for client_order_id {coid}"
    for result in results:
        final = resolved.get(result.client_order_id, result)
        if result.outcome is TradeOutcome.UNKNOWN:
            event("unknown, resolved")
            assert final.outcome in (TradeOutcome.PLACED, TradeOutcome.NOT_PLACED), final
        chain = by_coid.get(result.client_order_id, [])
        exists = bool(chain)
        assert (final.outcome is TradeOutcome.PLACED) == exists, (final, [o.status for o in chain])
        if not exists:
            continue
        head = next(o for o in chain if o.replaces is None)
        if final.order_id is not None:
            # A trade resolved later names the order its look-up started from: the head, or
            # (executor: an UNKNOWN fill keeps fill.final_order_id) the chain's last order.
            assert final.order_id in {o.id for o in chain}, (
                final,
                result.outcome,
                [(o.id, o.status, o.replaces, o.client_order_id) for o in chain],
            )
        ledger_filled = sum((o.filled_qty for o in chain), Decimal(0))
        fill = final.fill
        if fill is None:
            continue
        if len(chain) > 1:
            event("replaced")
        assert fill.filled_qty <= ledger_filled, (fill, ledger_filled)
        if not fill.order_open and fill.status.value != "unknown":
            assert fill.filled_qty == ledger_filled, (
                fill,
                [(o.status, o.filled_qty) for o in chain],
            )
        if fill.filled:
            assert ledger_filled == head.qty
    for symbol in SYMBOLS:
        expected = executor.expected_position(symbol)
        if expected is None:
            continue  # no baseline (nothing traded in it, or it waits out a position lag)
        assert expected == rig.position(symbol), (symbol, expected, rig.position(symbol))
    if stream is not None:
        stream.close()
