"""FinalVerificationHandler: the last check at the deadline and the truth after a cancel."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

from fillguard import FinalVerificationHandler
from fillguard.clock import FakeClock
from fillguard.gateway import OrderGateway
from fillguard.retry import ErrorRecoveryManager, RetryStats
from tests.engine_support import (
    ORDER_ID,
    ActivitiesClient,
    ScriptedClient,
    Timeline,
    capture_logs,
    fast_config,
)
from tests.helpers_errors import api_error, read_timeout
from tests.order_factory import order_dict

FILLED_AT = "2026-01-05T14:30:01Z"


def handler(client: Any, clock: FakeClock, **config: Any) -> FinalVerificationHandler:
    cfg = fast_config(**config)
    recovery = ErrorRecoveryManager(cfg, clock=clock, rng=random.Random(0))
    return FinalVerificationHandler(OrderGateway(client, recovery, clock), cfg, clock)


def filled(price: str | None = "100.5", qty: str = "10") -> dict[str, Any]:
    return order_dict(
        status="filled", filled_qty=qty, filled_avg_price=price, filled_at=FILLED_AT, qty=qty
    )


def partial(qty: str, status: str = "partially_filled", price: str = "100") -> dict[str, Any]:
    return order_dict(status=status, filled_qty=qty, filled_avg_price=price)


# ---------------------------------------------------------------------------------- final check
def test_final_check_of_a_priced_fill_is_filled_and_settled() -> None:
    clock = FakeClock()
    client = ScriptedClient([filled()])
    with capture_logs() as logs:
        check = handler(client, clock).perform_final_check(ORDER_ID)
    assert check.filled
    assert check.settled
    assert check.snapshot is not None
    assert check.snapshot.filled_avg_price == Decimal("100.5")
    assert check.cancel is None
    assert logs.fields("final_check")[0]["filled"] is True
    assert client.count("get_order_by_id") == 1


def test_final_check_of_an_open_order_reads_once_and_is_not_settled() -> None:
    clock = FakeClock()
    client = ScriptedClient([order_dict(status="new")])
    check = handler(client, clock).perform_final_check(ORDER_ID)
    assert not check.filled
    assert not check.settled
    assert check.snapshot is not None
    assert check.snapshot.status == "new"
    assert client.count("get_order_by_id") == 1
    assert client.count("cancel_order_by_id") == 0


def test_final_check_of_a_terminal_order_is_settled() -> None:
    clock = FakeClock()
    check = handler(ScriptedClient([partial("4", "canceled")]), clock).perform_final_check(ORDER_ID)
    assert check.settled
    assert not check.filled
    assert check.snapshot is not None
    assert check.snapshot.filled_qty == 4


def test_final_check_keeps_reading_a_fill_until_its_price_shows() -> None:
    clock = FakeClock()
    client = ScriptedClient([filled(price=None), filled(price=None), filled("101")])
    check = handler(client, clock).perform_final_check(ORDER_ID)
    assert check.filled
    assert check.snapshot is not None
    assert check.snapshot.filled_avg_price == Decimal(101)
    assert client.count("get_order_by_id") == 3


def test_final_check_takes_the_price_from_the_fill_activities_on_a_second_look() -> None:
    clock = FakeClock()
    rows = [{"order_id": ORDER_ID, "qty": "10", "price": "99.5"}]
    client = ActivitiesClient([filled(price=None)], activities=rows)
    check = handler(client, clock).perform_final_check(ORDER_ID)
    assert check.filled
    assert check.settled
    assert check.price_source == "activities"
    assert check.snapshot is not None
    assert check.snapshot.filled_avg_price == Decimal("99.5")
    assert client.count("get_order_by_id") == 2
    assert client.count("get") == 1


def test_final_check_of_an_unpriced_fill_within_budget_is_not_settled() -> None:
    clock = FakeClock()
    start = clock.monotonic()
    client = ScriptedClient([filled(price=None)])
    check = handler(client, clock, final_verification_seconds=0.5).perform_final_check(ORDER_ID)
    assert not check.filled
    assert not check.settled
    assert check.verification is not None
    assert check.verification.is_filled
    assert clock.monotonic() - start <= 0.5 + 1e-9


def test_final_check_that_cannot_read_says_so() -> None:
    clock = FakeClock()
    start = clock.monotonic()
    client = ScriptedClient([api_error(503)])
    check = handler(client, clock, max_retries=100).perform_final_check(
        ORDER_ID, deadline=start + 1.0
    )
    assert check.snapshot is None
    assert check.verification is None
    assert not check.settled
    assert clock.monotonic() <= start + 1.0 + 1e-9


def test_final_check_retries_transient_errors() -> None:
    clock = FakeClock()
    client = ScriptedClient([api_error(502), read_timeout(), filled()])
    stats = RetryStats()
    check = handler(client, clock).perform_final_check(ORDER_ID, stats=stats)
    assert check.filled
    assert stats.retries == 2


# ---------------------------------------------------------------------------------- after cancel
def test_cancel_422_already_filled_returns_the_fill() -> None:
    clock = FakeClock()
    client = ScriptedClient([filled()], cancels=[api_error(422)])
    check = handler(client, clock).verify_after_cancel_attempt(ORDER_ID)
    assert check.cancel is not None
    assert check.cancel.kind == "not_cancelable"
    assert check.filled
    assert check.settled
    assert client.count("cancel_order_by_id") == 1


def test_cancel_204_then_pending_cancel_then_filled_is_a_fill() -> None:
    clock = FakeClock()
    client = ScriptedClient(
        [partial("0", "pending_cancel"), partial("4", "pending_cancel"), filled("100.2")],
        cancels=[None],
    )
    check = handler(client, clock).verify_after_cancel_attempt(ORDER_ID)
    assert check.cancel is not None
    assert check.cancel.kind == "accepted"
    assert check.filled
    assert check.snapshot is not None
    assert check.snapshot.filled_avg_price == Decimal("100.2")
    assert client.count("get_order_by_id") == 3


def test_cancel_204_then_canceled_reports_what_filled() -> None:
    clock = FakeClock()
    client = ScriptedClient([partial("3", "pending_cancel"), partial("3", "canceled")])
    check = handler(client, clock).verify_after_cancel_attempt(ORDER_ID)
    assert check.settled
    assert not check.filled
    assert check.snapshot is not None
    assert check.snapshot.status == "canceled"
    assert check.snapshot.filled_qty == 3


def test_cancel_that_never_settles_within_budget_is_not_settled() -> None:
    clock = FakeClock()
    start = clock.monotonic()
    client = ScriptedClient([partial("0", "pending_cancel")])
    check = handler(client, clock, final_verification_seconds=0.7).verify_after_cancel_attempt(
        ORDER_ID
    )
    assert not check.settled
    assert check.snapshot is not None
    assert check.snapshot.status == "pending_cancel"
    assert clock.monotonic() - start <= 0.7 + 1e-9


def test_a_failed_cancel_is_sent_again_while_the_order_is_live() -> None:
    clock = FakeClock()
    client = ScriptedClient(
        [order_dict(status="new"), partial("0", "pending_cancel"), partial("0", "canceled")],
        cancels=[api_error(503), None],
    )
    check = handler(client, clock, max_retries=0).verify_after_cancel_attempt(ORDER_ID)
    assert client.count("cancel_order_by_id") == 2
    assert check.cancel is not None
    assert check.cancel.kind == "accepted"
    assert check.settled
    assert check.snapshot is not None
    assert check.snapshot.status == "canceled"


def test_an_accepted_cancel_is_not_sent_again() -> None:
    clock = FakeClock()
    client = ScriptedClient(
        [order_dict(status="new"), order_dict(status="new"), partial("0", "canceled")]
    )
    handler(client, clock).verify_after_cancel_attempt(ORDER_ID)
    assert client.count("cancel_order_by_id") == 1


def test_a_stale_read_after_the_cancel_does_not_undo_a_fill_seen() -> None:
    clock = FakeClock()
    # Filled without a price yet, then an older version (stale), then the price.
    client = ScriptedClient([filled(price=None), partial("4"), filled("100.1")])
    with capture_logs() as logs:
        check = handler(client, clock).verify_after_cancel_attempt(ORDER_ID)
    assert check.filled
    assert "stale_read_ignored" in logs.names()


def test_a_stale_read_at_the_end_of_the_budget_keeps_the_freshest_state() -> None:
    clock = FakeClock()
    timeline = Timeline(
        clock, [(0.0, partial("0", "pending_cancel")), (0.2, partial("6")), (0.4, partial("2"))]
    )
    client = ScriptedClient([timeline])
    check = handler(client, clock, final_verification_seconds=0.6).verify_after_cancel_attempt(
        ORDER_ID
    )
    assert not check.settled
    assert check.snapshot is not None
    assert check.snapshot.filled_qty == 6


def test_post_cancel_check_is_logged() -> None:
    clock = FakeClock()
    client = ScriptedClient([partial("0", "canceled")])
    with capture_logs() as logs:
        handler(client, clock).verify_after_cancel_attempt(ORDER_ID)
    names = logs.names()
    assert names.index("cancel_requested") < names.index("cancel_result")
    assert names.index("cancel_result") < names.index("post_cancel_check")
    assert logs.fields("post_cancel_check")[0]["settled"] is True
