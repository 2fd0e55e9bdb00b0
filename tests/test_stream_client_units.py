"""The trade_updates client's pure parts: frame parsing, URLs, settings, the reconnect plan."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fillguard.errors import InvalidInputError
from fillguard.stream import KNOWN_EVENTS, Gap, StreamConfig, TradeEvent, stream_url_for
from fillguard.stream_parse import Control, Skipped, parse_frame
from fillguard.stream_policy import ReconnectPlan, backoff_delay, slow_retry_delay

ORDER = {
    "id": "61e69015-8549-4bfd-b9c3-01e75843f47d",
    "client_order_id": "fg-1",
    "symbol": "AAPL",
    "side": "buy",
    "type": "market",
    "status": "filled",
    "qty": "2",
    "filled_qty": "2",
    "filled_avg_price": "189.123456789",
}


def fill(**changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "event": "fill",
        "execution_id": "2f63ea93-423d-4169-b3f6-3fdafc10c418",
        "order": ORDER,
        "position_qty": "-3.5",
        "price": "189.123456789",
        "qty": "2",
        "timestamp": "2026-03-09T13:45:05.024916716-04:00",
    }
    data.update(changes)
    return {"stream": "trade_updates", "data": data}


def test_a_fill_parses_into_decimals_and_a_utc_timestamp_from_text_or_binary() -> None:
    text = json.dumps(fill())
    for frame in (text, text.encode(), bytearray(text.encode()), memoryview(text.encode())):
        event = parse_frame(frame, 12.5)
        assert isinstance(event, TradeEvent)
        assert event.event == "fill"
        assert event.is_fill
        assert event.order_id == ORDER["id"]
        assert event.client_order_id == "fg-1"
        assert event.order.filled_avg_price == Decimal("189.123456789")
        assert (event.qty, event.price) == (Decimal(2), Decimal("189.123456789"))
        assert event.position_qty == Decimal("-3.5")
        # Nine fraction digits and a -04:00 offset: 17:45:05.024916 UTC.
        assert event.timestamp == datetime(2026, 3, 9, 17, 45, 5, 24916, tzinfo=UTC)
        assert event.received_monotonic == 12.5
        assert event.raw["execution_id"] == "2f63ea93-423d-4169-b3f6-3fdafc10c418"
        with pytest.raises(TypeError):
            event.raw["qty"] = "3"  # type: ignore[index]


def test_json_numbers_become_decimals_not_floats() -> None:
    event = parse_frame(
        b'{"stream":"trade_updates","data":{"event":"partial_fill",'
        b'"order":{"id":"x","filled_qty":0.1},"qty":0.1,"price":101.07}}',
        0,
    )
    assert isinstance(event, TradeEvent)
    assert event.qty == Decimal("0.1")
    assert event.price == Decimal("101.07")
    assert event.order.filled_qty == Decimal("0.1")


def test_a_new_event_has_no_execution_values() -> None:
    event = parse_frame(
        json.dumps(
            fill(
                event="new",
                execution_id=None,
                qty=None,
                price=None,
                position_qty=None,
                timestamp=None,
            )
        ),
        0,
    )
    assert isinstance(event, TradeEvent)
    assert (event.execution_id, event.qty, event.price, event.position_qty) == (None,) * 4
    assert event.timestamp is None
    assert not event.is_fill


@pytest.mark.parametrize(
    ("frame", "kind"),
    [
        (b"\xff\xfe not json", "malformed"),
        ("{", "malformed"),
        ("[1, 2]", "malformed"),
        ('"trade_updates"', "malformed"),
        ('{"data": {}}', "malformed"),
        ('{"stream": "trade_updates", "data": null}', "null"),
        ('{"stream": "trade_updates"}', "null"),
        ('{"stream": "trade_updates", "data": [1]}', "malformed"),
        (json.dumps(fill(event="teleported")), "unknown"),
        (json.dumps(fill(event=7)), "unknown"),
        (json.dumps(fill(order=None)), "no_order"),
        (json.dumps(fill(order="61e69015")), "no_order"),
        (json.dumps(fill(order={"symbol": "AAPL"})), "no_order"),
        ('{"stream": "account_updates", "data": {}}', "other_stream"),
        ("[" * 100_000 + "]" * 100_000, "malformed"),
    ],
)
def test_bad_frames_are_skipped_with_their_kind(frame: str | bytes, kind: str) -> None:
    parsed = parse_frame(frame, 0)
    assert isinstance(parsed, Skipped)
    assert parsed.kind == kind
    assert parsed.reason


def test_control_messages() -> None:
    parsed = parse_frame(b'{"stream":"authorization","data":{"status":"authorized"}}', 0)
    assert parsed == Control("authorization", {"status": "authorized"})
    assert parse_frame('{"stream":"listening","data":null}', 0) == Control("listening", {})


@settings(max_examples=150, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=200),
        st.text(max_size=200),
        st.recursive(
            st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(st.text(max_size=8), inner, max_size=4)
            ),
            max_leaves=20,
        ).map(lambda v: json.dumps({"stream": "trade_updates", "data": v})),
    )
)
def test_parse_frame_never_raises(frame: str | bytes) -> None:
    parsed = parse_frame(frame, 0)
    assert isinstance(parsed, TradeEvent | Control | Skipped)
    if isinstance(parsed, TradeEvent):
        assert parsed.event in KNOWN_EVENTS


def test_stream_url_for_derives_and_rejects() -> None:
    assert stream_url_for("http://127.0.0.1:8787") == "ws://127.0.0.1:8787/stream"
    assert stream_url_for("https://paper-api.alpaca.markets") == (
        "wss://paper-api.alpaca.markets/stream"
    )
    assert stream_url_for("https://API.alpaca.markets/v2/") == "wss://api.alpaca.markets/stream"
    assert stream_url_for("ws://h:1/stream") == "ws://h:1/stream"
    for bad in ("", "paper-api.alpaca.markets", "ftp://h", "http://"):
        with pytest.raises(InvalidInputError, match="base_url"):
            stream_url_for(bad)


def test_stream_config_errors_name_the_field() -> None:
    with pytest.raises(InvalidInputError, match="silence_seconds"):
        StreamConfig(silence_seconds=0)
    with pytest.raises(InvalidInputError, match="ping_interval_seconds"):
        StreamConfig(silence_seconds=5, ping_interval_seconds=5)
    with pytest.raises(InvalidInputError, match="max_backoff_seconds"):
        StreamConfig(min_backoff_seconds=5, max_backoff_seconds=1)
    with pytest.raises(InvalidInputError, match="auth_retry_seconds"):
        StreamConfig(auth_retry_seconds=float("inf"))


def test_backoff_is_exponential_with_equal_jitter_from_1_to_30_seconds() -> None:
    rng = random.Random(3)
    for attempt, cap in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 16), (6, 30), (7, 30), (500, 30)]:
        for _ in range(50):
            delay = backoff_delay(attempt, rng, 1.0, 30.0)
            assert cap / 2 <= delay <= cap
    for _ in range(50):
        assert 60 <= slow_retry_delay(60, rng, 0.2) <= 72


def test_reconnect_plan_resets_only_after_trade_updates_data_and_retries_auth_slowly() -> None:
    plan = ReconnectPlan(StreamConfig(), random.Random(1))
    caps = []
    for _ in range(6):
        delay = plan.after("closed", data_received=False)
        caps.append(delay)
    assert plan.attempts == 6
    assert caps[-1] >= 15  # grown to the 30 s cap (equal jitter: at least half)
    assert plan.after("silence", data_received=True) <= 1.0  # data came: back to the start
    assert plan.attempts == 1
    assert 60 <= plan.after("auth", data_received=False) <= 72
    assert 30 <= plan.after("refused", data_received=False) <= 36


def test_gap_seconds() -> None:
    t = datetime(2026, 1, 5, 14, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert Gap(t, t + timedelta(seconds=2.5), reconnect=True).seconds == 2.5


def test_stream_arguments_are_checked_by_name() -> None:
    from fillguard.stream import TradeUpdatesStream

    with pytest.raises(InvalidInputError, match="key_id"):
        TradeUpdatesStream("", "secret", "http://127.0.0.1:1")
    with pytest.raises(InvalidInputError, match="secret_key"):
        TradeUpdatesStream("key", "", "http://127.0.0.1:1")
    with pytest.raises(InvalidInputError, match="base_url"):
        TradeUpdatesStream("key", "secret")
    with pytest.raises(InvalidInputError, match="url"):
        TradeUpdatesStream("key", "secret", url="http://127.0.0.1:1/stream")
    stream = TradeUpdatesStream("key", "secret", url="ws://127.0.0.1:1/stream/")
    assert stream.url == "ws://127.0.0.1:1/stream/"
    assert stream.status.state.value == "idle"
