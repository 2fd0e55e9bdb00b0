"""Issue 8: the driver, the tracker, the stream path and the async API.

* the driver in fake time runs 1,000 monitors at once, each matching the ledger;
* through the real alpaca-py client over loopback: every stream fault and the hostile profile
  give no missed and no false fill; a disconnect during which orders fill is repaired by a
  sweep with a bounded number of requests; a stream that will not authenticate is reported and
  fill detection carries on by polling; the async API trades without a thread per order.
"""

from __future__ import annotations

import asyncio
import threading
import time
from decimal import Decimal
from typing import Any

import pytest

from fillguard import FillDetectionConfig, FillDetectionEngine, FillStatus, TradeOutcome
from fillguard.clock import FakeClock, SystemClock
from fillguard.executor import SmartOrderExecutor
from fillguard.sim import SimServer
from fillguard.sim.api import SimApi
from fillguard.sim.core import Broker, OrderRequest
from fillguard.sim.inprocess import in_process_client
from tests.executor_support import capture_logs, fast_config

pytestmark = pytest.mark.timeout(60)


def real_config(**overrides: Any) -> FillDetectionConfig:
    values: dict[str, Any] = {
        "timeout_seconds": 3.0,
        "initial_poll_interval": 0.05,
        "poll_interval_increase": 0.05,
        "max_poll_interval": 0.3,
        "retry_base_delay": 0.02,
        "retry_max_delay": 0.2,
        "request_timeout_seconds": 1.0,
        "final_verification_seconds": 2.0,
        "not_found_grace_seconds": 1.0,
        "stream_silence_seconds": 1.0,
        "rate_limit_per_minute": None,
    }
    values.update(overrides)
    return FillDetectionConfig(**values)


def ledger_order(sim: SimServer, order_id: str) -> dict[str, Any]:
    [entry] = [e for e in sim.ledger()["orders"] if e["order"]["id"] == order_id]
    return entry["order"]  # type: ignore[no-any-return]


def matches(sim: SimServer, result: Any) -> None:
    truth = ledger_order(sim, result.order_id)
    assert Decimal(truth["filled_qty"]) == result.filled_qty
    if result.filled:
        assert truth["status"] == "filled"
        assert Decimal(truth["filled_avg_price"]) == result.fill_price


def wait_listening(engine: FillDetectionEngine, seconds: float = 5.0) -> None:
    end = time.monotonic() + seconds
    while not engine.tracker.stream_live and time.monotonic() < end:
        time.sleep(0.01)
    assert engine.tracker.stream_live


# ---------------------------------------------------------------------------------- fake time
def test_the_driver_runs_a_thousand_monitors_in_fake_time() -> None:
    clock = FakeClock()
    broker = Broker(clock=clock, seed=3)
    broker.set_faults(broker.faults.with_(partial_fill_rate=0.3, stale_read_rate=0.1))
    api = SimApi(broker, key_id="K", secret_key="S", rate_limit=None)
    client = in_process_client(api)
    price = broker.price("AAPL")
    ids = []
    for i in range(1000):
        limit = None if i % 4 else (price * Decimal("0.5")).quantize(Decimal("0.01"))
        order = broker.submit(
            OrderRequest(
                symbol="AAPL",
                side="buy",
                type="limit" if limit else "market",
                time_in_force="day",
                qty=Decimal(1 + i % 3),
                limit_price=limit,
            )
        )
        ids.append(order.id)
    threads_before = threading.active_count()
    engine = FillDetectionEngine(
        client,
        FillDetectionConfig(
            timeout_seconds=5.0,
            final_verification_seconds=3.0,
            rate_limit_per_minute=None,
            partial_fill_policy="wait",
        ),
        clock=clock,
    )
    start = clock.monotonic()
    results = engine.monitor_orders(ids)
    assert threading.active_count() == threads_before  # inline: no thread at all
    assert clock.monotonic() - start <= 5.0 + 3.0 + 1e-6
    for order_id, result in zip(ids, results, strict=True):
        truth = broker.orders[order_id]
        assert result.order_id == order_id
        assert result.filled_qty == truth.filled_qty
        if result.filled:
            assert truth.status == "filled"
            assert result.fill_price == truth.filled_avg_price
    statuses = {r.status for r in results}
    assert FillStatus.FILLED in statuses
    assert FillStatus.TIMEOUT in statuses  # the resting limits, canceled at the deadline
    assert engine.tracker.sweeps > 0  # reads of many orders were batched
    assert engine.tracker.reads_by_id < 1000 * 3


# ---------------------------------------------------------------------------------- the stream
STREAM_FAULTS = [
    {"stream_drop_rate": 0.5},
    {"stream_duplicate_rate": 0.5},
    {"stream_delay_rate": 0.5, "stream_delay_seconds": 0.3},
    {"stream_disconnect_rate": 0.2},
    {"stream_gap_rate": 0.2, "stream_gap_seconds": 0.5},
    {"stream_silence_rate": 0.2, "stream_silence_seconds": 1.0},
]


@pytest.mark.integration
@pytest.mark.parametrize("faults", STREAM_FAULTS, ids=lambda f: next(iter(f)))
def test_every_stream_fault_gives_no_missed_and_no_false_fill(
    sim: SimServer, faults: dict[str, Any]
) -> None:
    sim.set_faults({**faults, "partial_fill_rate": 0.3})
    executor = SmartOrderExecutor(
        sim.trading_client(),
        fast_config(
            timeout=2.0,
            request_timeout_seconds=1.0,
            initial_poll_interval=0.05,
            max_poll_interval=0.3,
            final_verification_seconds=2.0,
            stream_silence_seconds=0.5,
            consistency_timeout_seconds=1.0,
        ),
    )
    results = [executor.execute_trade("AAPL", "buy", 1 + i % 2) for i in range(8)]
    for result in results:
        assert result.outcome is TradeOutcome.PLACED
        matches(sim, result)


@pytest.mark.integration
def test_the_hostile_profile_gives_no_missed_and_no_false_fill(sim: SimServer) -> None:
    sim.set_faults("hostile")
    executor = SmartOrderExecutor(
        sim.trading_client(),
        fast_config(
            timeout=2.0,
            request_timeout_seconds=1.0,
            initial_poll_interval=0.05,
            max_poll_interval=0.3,
            final_verification_seconds=3.0,
            stream_silence_seconds=0.5,
            consistency_timeout_seconds=1.0,
            submit_timeout_seconds=4.0,
        ),
    )
    results = [executor.execute_trade("MSFT", "buy", 1) for _ in range(8)]
    for result in results:
        if result.outcome is TradeOutcome.PLACED:
            matches(sim, result)
        elif result.outcome is TradeOutcome.NOT_PLACED:
            assert not [
                e
                for e in sim.ledger()["orders"]
                if e["order"]["client_order_id"] == result.client_order_id
            ]


@pytest.mark.integration
def test_a_disconnect_during_fills_is_repaired_by_a_sweep_with_few_requests(
    sim: SimServer,
) -> None:
    client = sim.trading_client()
    engine = FillDetectionEngine(
        client, real_config(timeout_seconds=8.0, stream_silence_seconds=30.0), clock=SystemClock()
    )
    price = sim.broker.price("AAPL")
    low = (price * Decimal("0.9")).quantize(Decimal("0.01"))
    ids = []
    for _ in range(6):
        ids.append(
            str(
                sim.broker.submit(
                    OrderRequest(
                        symbol="AAPL",
                        side="buy",
                        type="limit",
                        time_in_force="gtc",
                        qty=Decimal(1),
                        limit_price=low,
                    )
                ).id
            )
        )
    results: list[Any] = []
    thread = threading.Thread(target=lambda: results.extend(engine.monitor_orders(ids)))
    thread.start()
    wait_listening(engine)
    time.sleep(0.3)  # every monitor has read its order once (it was not seen yet)
    # The stream is cut and stays down 0.6 s; meanwhile the market comes to the limit.
    sim.set_faults({"stream_gap_rate": 1.0, "stream_gap_seconds": 0.6})
    sim.broker.set_price("AAPL", low * Decimal("0.99"))
    before = sim.api.requests_total
    time.sleep(0.2)
    sim.set_faults("calm")
    thread.join(20)
    repair = sim.api.requests_total - before
    assert len(results) == 6
    assert all(r.filled for r in results)
    for result in results:
        matches(sim, result)
    # Reads of the six orders were batched (a sweep), never one read each per poll.
    assert repair <= 4, f"{repair} requests to repair the gap for 6 orders"
    stream = engine.tracker.stream
    assert stream is not None
    assert stream.stats().reconnects >= 1  # the connection really was cut


@pytest.mark.integration
def test_a_stream_that_will_not_authenticate_is_reported_and_polling_carries_on(
    sim: SimServer,
) -> None:
    sim.hub._authorized = lambda key, secret: False  # type: ignore[method-assign]
    # This test is about authentication: a slot another test's socket still holds is not.
    single = sim.hub.single_connection
    sim.hub.single_connection = False
    try:
        with capture_logs() as logs:
            engine = FillDetectionEngine(sim.trading_client(), real_config(), clock=SystemClock())
            order = sim.broker.submit(
                OrderRequest(
                    symbol="AAPL", side="buy", type="market", time_in_force="day", qty=Decimal(1)
                )
            )
            result = engine.monitor_order_fill(str(order.id))
            stream = engine.tracker.stream
            assert stream is not None
            end = time.monotonic() + 5
            while stream.stats().auth_failures < 1 and time.monotonic() < end:
                time.sleep(0.02)
            time.sleep(0.5)  # a tight loop would make many more attempts meanwhile
        assert result.filled  # detected by polling
        matches(sim, result)
        assert not engine.tracker.stream_live
        errors = [r for r in logs.records if r.levelname == "ERROR" and "auth" in r.getMessage()]
        assert errors, "the auth failure was not logged as an error"
        stats = stream.stats()
        assert stats.auth_failures >= 1
        assert stats.connect_attempts <= 2  # retried slowly (60 s), never a tight loop
    finally:
        del sim.hub._authorized
        sim.hub.single_connection = single


# ---------------------------------------------------------------------------------- async
@pytest.mark.integration
def test_execute_trade_async_trades_many_at_once_without_a_thread_each(sim: SimServer) -> None:
    executor = SmartOrderExecutor(
        sim.trading_client(),
        fast_config(
            timeout=3.0,
            request_timeout_seconds=1.0,
            initial_poll_interval=0.05,
            stream_silence_seconds=0.5,
            consistency_timeout_seconds=1.0,
        ),
    )
    peak = [threading.active_count()]

    async def main() -> list[Any]:
        async def one(i: int) -> Any:
            return await executor.execute_trade_async(("AAPL", "MSFT")[i % 2], "buy", 1)

        tasks = [asyncio.create_task(one(i)) for i in range(30)]
        while not all(t.done() for t in tasks):
            peak[0] = max(peak[0], threading.active_count())
            await asyncio.sleep(0.01)
        return [t.result() for t in tasks]

    results = asyncio.run(main())
    assert len(results) == 30
    assert all(r.outcome is TradeOutcome.PLACED for r in results)
    assert all(r.filled for r in results)
    for result in results:
        matches(sim, result)
    # The worker pools are small and fixed: no thread per order.
    assert peak[0] < 30


def test_the_async_engine_api_works_inside_a_running_loop_in_fake_time() -> None:
    clock = FakeClock()
    broker = Broker(clock=clock, seed=1)
    api = SimApi(broker, key_id="K", secret_key="S", rate_limit=None)
    client = in_process_client(api)
    order = broker.submit(
        OrderRequest(symbol="AAPL", side="buy", type="market", time_in_force="day", qty=Decimal(2))
    )
    engine = FillDetectionEngine(
        client, FillDetectionConfig(rate_limit_per_minute=None, timeout_seconds=5), clock=clock
    )

    async def main() -> Any:
        return await engine.monitor_order_fill_async(str(order.id))

    result = asyncio.run(main())
    assert result.filled
    assert result.filled_qty == broker.orders[order.id].filled_qty


def test_shutdown_account_stops_only_that_accounts_tracker_and_budget() -> None:
    from alpaca.trading.client import TradingClient

    from fillguard import budget
    from fillguard.accounts import shutdown_account, tracker_for
    from fillguard.clock import SystemClock
    from fillguard.engine import FillDetectionEngine

    one = TradingClient("K1", "S1", url_override="http://127.0.0.1:1")
    two = TradingClient("K2", "S2", url_override="http://127.0.0.1:1")
    first = FillDetectionEngine(one).tracker
    second = FillDetectionEngine(two).tracker
    budget.budget_for("K1", "http://127.0.0.1:1")
    shutdown_account(one)
    assert ("K1", "http://127.0.0.1:1") not in budget._registry
    again = tracker_for(one, clock=SystemClock(), make=lambda: second)
    assert again is second  # the first one is gone: a new one would be made
    assert tracker_for(two, clock=SystemClock(), make=lambda: first) is second
    shutdown_account(one)  # idempotent
