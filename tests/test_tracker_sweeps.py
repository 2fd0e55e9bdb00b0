"""A sweep pages far enough to cover every order it is for (found by bench_tracker part 3).

With a fixed cap of pages (4 x 500), every order past the 2,000th was read by id on every
round: thousands of reads where a few more pages answer for all of them.
"""

from __future__ import annotations

from decimal import Decimal

from fillguard import FillDetectionConfig, FillDetectionEngine, FillStatus
from fillguard.clock import FakeClock
from fillguard.sim.api import SimApi
from fillguard.sim.core import Broker, OrderRequest
from fillguard.sim.inprocess import in_process_client

ORDERS = 2600  # more than the default cap of pages holds


def test_a_sweep_of_more_orders_than_four_pages_reads_none_of_them_by_id_again() -> None:
    clock = FakeClock()
    broker = Broker(clock=clock, seed=3)
    api = SimApi(broker, key_id="K", secret_key="S", rate_limit=None)
    limit = (broker.price("AAPL") * Decimal("0.5")).quantize(Decimal("0.01"))
    ids = []
    for _ in range(ORDERS):
        clock.advance(0.001)  # distinct submission times, as on a real broker
        order = broker.submit(
            OrderRequest(
                symbol="AAPL",
                side="buy",
                type="limit",
                time_in_force="day",
                qty=Decimal("0.01"),
                limit_price=limit,
            )
        )
        ids.append(order.id)
    engine = FillDetectionEngine(
        in_process_client(api),
        FillDetectionConfig(
            timeout_seconds=4.0, final_verification_seconds=2.0, rate_limit_per_minute=None
        ),
        clock=clock,
    )
    before = api.requests_total
    results = engine.monitor_orders(ids)
    assert {r.status for r in results} == {FillStatus.TIMEOUT}
    assert all(broker.orders[r.order_id].status == "canceled" for r in results)
    tracker = engine.tracker
    assert tracker.sweeps >= 3  # the orders were polled by sweeps, round after round
    # Each order is read by id once (never seen before: no submission time to sweep from),
    # then only sweeps answer for it.
    assert tracker.reads_by_id <= ORDERS + 50, tracker.reads_by_id
    cancels = ORDERS
    assert api.requests_total - before <= tracker.reads_by_id + cancels + 20 * tracker.sweeps
