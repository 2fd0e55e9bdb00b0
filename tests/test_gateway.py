"""OrderGateway: reads, cancels and the FILL-activities price, in fake time with scripted clients."""

from __future__ import annotations

import math
import random
from decimal import Decimal
from typing import Any

import pytest

from fillguard.clock import FakeClock
from fillguard.errors import RefusedError, TransientError
from fillguard.gateway import OrderGateway
from fillguard.retry import ErrorRecoveryManager, RetryStats
from fillguard.snapshot import OrderSnapshot
from tests.engine_support import ORDER_ID, ActivitiesClient, ScriptedClient, fast_config
from tests.helpers_errors import api_error, connection_refused, rate_limited, read_timeout
from tests.order_factory import order_dict, order_model, order_object


def gateway(client: Any, clock: FakeClock, **config: Any) -> OrderGateway:
    recovery = ErrorRecoveryManager(fast_config(**config), clock=clock, rng=random.Random(0))
    return OrderGateway(client, recovery, clock)


# ---------------------------------------------------------------------------------- read
@pytest.mark.parametrize("build", [order_dict, order_model, order_object])
def test_read_gives_a_decimal_snapshot_whatever_the_shape(build: Any) -> None:
    clock = FakeClock()
    client = ScriptedClient([build(status="filled", filled_qty="10", filled_avg_price="189.12")])
    snap = gateway(client, clock).read(ORDER_ID, deadline=None, stats=RetryStats())
    assert isinstance(snap, OrderSnapshot)
    assert snap.status == "filled"
    assert snap.filled_qty == Decimal("10")
    assert snap.filled_avg_price == Decimal("189.12")


def test_read_retries_transient_errors_and_counts_them() -> None:
    clock = FakeClock()
    client = ScriptedClient([api_error(500), connection_refused(), read_timeout(), order_dict()])
    stats = RetryStats()
    snap = gateway(client, clock).read(ORDER_ID, deadline=None, stats=stats)
    assert snap.status == "new"
    assert stats.calls == 4
    assert stats.retries == 3
    assert stats.errors == 3
    assert clock.slept, "backoff waits go through the clock"


@pytest.mark.parametrize("status", [401, 403])
def test_read_refused_raises_at_once_with_the_order_id(status: int) -> None:
    clock = FakeClock()
    client = ScriptedClient([api_error(status)])
    with pytest.raises(RefusedError) as info:
        gateway(client, clock).read(ORDER_ID, deadline=None, stats=RetryStats())
    assert info.value.order_id == ORDER_ID
    assert info.value.status_code == status
    assert client.count("get_order_by_id") == 1


def test_read_404_is_retried_within_the_grace_and_refused_after_it() -> None:
    clock = FakeClock()
    client = ScriptedClient([api_error(404), api_error(404), order_dict()])
    gw = gateway(client, clock)
    snap = gw.read(ORDER_ID, deadline=None, stats=RetryStats(), grace_until=clock.monotonic() + 5)
    assert snap.status == "new"
    assert client.count("get_order_by_id") == 3

    client = ScriptedClient([api_error(404)])
    with pytest.raises(RefusedError) as info:
        gateway(client, clock).read(
            ORDER_ID, deadline=None, stats=RetryStats(), grace_until=clock.monotonic()
        )
    assert info.value.status_code == 404
    assert info.value.order_id == ORDER_ID
    assert client.count("get_order_by_id") == 1


def test_read_422_is_permanent() -> None:
    clock = FakeClock()
    with pytest.raises(RefusedError):
        gateway(ScriptedClient([api_error(422)]), clock).read(
            ORDER_ID, deadline=None, stats=RetryStats()
        )


def test_read_gives_up_with_transient_error_after_max_retries() -> None:
    clock = FakeClock()
    client = ScriptedClient([api_error(503)])
    with pytest.raises(TransientError) as info:
        gateway(client, clock, max_retries=2).read(ORDER_ID, deadline=None, stats=RetryStats())
    assert client.count("get_order_by_id") == 3
    assert info.value.order_id == ORDER_ID


def test_read_backoff_never_waits_past_the_deadline() -> None:
    clock = FakeClock()
    deadline = clock.monotonic() + 0.3
    client = ScriptedClient([api_error(503)])
    with pytest.raises(TransientError):
        gateway(client, clock, max_retries=50, retry_base_delay=0.2, retry_max_delay=5).read(
            ORDER_ID, deadline=deadline, stats=RetryStats()
        )
    assert clock.monotonic() <= deadline + 1e-9


def test_read_honours_retry_after_on_429_but_not_past_the_deadline() -> None:
    clock = FakeClock()
    client = ScriptedClient([rate_limited(retry_after="0.7"), order_dict()])
    start = clock.monotonic()
    gateway(client, clock).read(ORDER_ID, deadline=None, stats=RetryStats())
    assert clock.monotonic() - start >= 0.7

    clock = FakeClock()
    client = ScriptedClient([rate_limited(retry_after="30")])
    deadline = clock.monotonic() + 1.0
    with pytest.raises(TransientError):
        gateway(client, clock, max_retries=10).read(ORDER_ID, deadline=deadline, stats=RetryStats())
    assert clock.monotonic() <= deadline + 1e-9


def test_read_sends_nothing_once_the_deadline_has_passed() -> None:
    clock = FakeClock()
    client = ScriptedClient([order_dict()])
    with pytest.raises(TransientError, match="deadline"):
        gateway(client, clock).read(ORDER_ID, deadline=clock.monotonic(), stats=RetryStats())
    assert client.calls == []


def test_read_of_garbage_never_raises() -> None:
    clock = FakeClock()
    garbage_reads: list[Any] = [None, 42, "filled", [], {"status": object(), "filled_qty": "x"}]
    for garbage in garbage_reads:
        snap = gateway(ScriptedClient([garbage]), clock).read(
            ORDER_ID, deadline=None, stats=RetryStats()
        )
        assert snap.filled_qty == 0


# ---------------------------------------------------------------------------------- cancel
def test_cancel_204_is_only_accepted() -> None:
    clock = FakeClock()
    client = ScriptedClient([order_dict()], cancels=[None])
    outcome = gateway(client, clock).cancel(ORDER_ID, deadline=None, stats=RetryStats())
    assert outcome.kind == "accepted"
    assert outcome.status_code == 204


def test_cancel_422_already_filled_is_not_cancelable_with_the_message() -> None:
    clock = FakeClock()
    client = ScriptedClient([order_dict()], cancels=[api_error(422)])
    outcome = gateway(client, clock).cancel(ORDER_ID, deadline=None, stats=RetryStats())
    assert outcome.kind == "not_cancelable"
    assert outcome.status_code == 422
    assert "filled" in outcome.message
    assert client.count("cancel_order_by_id") == 1


def test_cancel_404_is_not_found() -> None:
    clock = FakeClock()
    client = ScriptedClient([order_dict()], cancels=[api_error(404)])
    outcome = gateway(client, clock).cancel(ORDER_ID, deadline=None, stats=RetryStats())
    assert outcome.kind == "not_found"


def test_cancel_is_retried_on_5xx_and_timeouts_and_fails_softly() -> None:
    clock = FakeClock()
    client = ScriptedClient([order_dict()], cancels=[api_error(500), read_timeout(), None])
    outcome = gateway(client, clock).cancel(ORDER_ID, deadline=None, stats=RetryStats())
    assert outcome.kind == "accepted"
    assert client.count("cancel_order_by_id") == 3

    client = ScriptedClient([order_dict()], cancels=[api_error(503)])
    outcome = gateway(client, clock, max_retries=1).cancel(
        ORDER_ID, deadline=None, stats=RetryStats()
    )
    assert outcome.kind == "failed"
    assert outcome.status_code == 503


def test_cancel_of_401_fails_softly() -> None:
    clock = FakeClock()
    client = ScriptedClient([order_dict()], cancels=[api_error(401)])
    outcome = gateway(client, clock).cancel(ORDER_ID, deadline=None, stats=RetryStats())
    assert outcome.kind == "failed"
    assert outcome.status_code == 401


def test_cancel_is_not_sent_after_the_deadline() -> None:
    clock = FakeClock()
    client = ScriptedClient([order_dict()])
    outcome = gateway(client, clock).cancel(
        ORDER_ID, deadline=clock.monotonic() - 1, stats=RetryStats()
    )
    assert outcome.kind == "failed"
    assert client.calls == []


# ---------------------------------------------------------------------------------- activities
def fill_row(order_id: str, qty: str, price: str) -> dict[str, Any]:
    return {"activity_type": "FILL", "order_id": order_id, "qty": qty, "price": price}


def test_activities_give_the_vwap_of_the_orders_fills() -> None:
    clock = FakeClock()
    rows = [
        fill_row(ORDER_ID, "4", "100"),
        fill_row("someone-else", "100", "1"),
        fill_row(ORDER_ID, "6", "101"),
    ]
    client = ActivitiesClient([order_dict()], activities=rows)
    price = gateway(client, clock).fill_price_from_activities(
        ORDER_ID, Decimal(10), deadline=None, stats=RetryStats()
    )
    assert price == Decimal("100.6")
    assert client.get_paths == ["/account/activities/FILL"]


@pytest.mark.parametrize(
    "rows",
    [
        [fill_row(ORDER_ID, "4", "100")],  # does not add up to filled_qty
        [fill_row(ORDER_ID, "10", "0")],  # no price
        [fill_row(ORDER_ID, "ten", "100")],  # garbage
        [],
        "not a list",
        None,
        [fill_row(ORDER_ID, "10", "100"), "junk"],
    ],
)
def test_activities_that_do_not_prove_the_price_give_none(rows: Any) -> None:
    clock = FakeClock()
    client = ActivitiesClient([order_dict()], activities=rows)
    price = gateway(client, clock).fill_price_from_activities(
        ORDER_ID, Decimal(10), deadline=None, stats=RetryStats()
    )
    if isinstance(rows, list) and len(rows) == 2:
        assert price == Decimal(100)  # junk rows of no order are skipped
    else:
        assert price is None


def test_activities_errors_and_missing_get_give_none() -> None:
    clock = FakeClock()
    no_get = ScriptedClient([order_dict()])
    assert not hasattr(no_get, "get")
    gw = gateway(no_get, clock)
    assert (
        gw.fill_price_from_activities(ORDER_ID, Decimal(1), deadline=None, stats=RetryStats())
        is None
    )
    for error in (api_error(403), api_error(500)):
        client = ActivitiesClient([order_dict()], activities=error)
        price = gateway(client, clock, max_retries=0).fill_price_from_activities(
            ORDER_ID, Decimal(1), deadline=None, stats=RetryStats()
        )
        assert price is None


def test_activities_are_not_asked_after_the_deadline_or_for_nothing_filled() -> None:
    clock = FakeClock()
    client = ActivitiesClient([order_dict()], activities=[fill_row(ORDER_ID, "1", "5")])
    gw = gateway(client, clock)
    assert (
        gw.fill_price_from_activities(
            ORDER_ID, Decimal(1), deadline=clock.monotonic(), stats=RetryStats()
        )
        is None
    )
    assert (
        gw.fill_price_from_activities(ORDER_ID, Decimal(0), deadline=math.inf, stats=RetryStats())
        is None
    )
    assert client.calls == []
