"""Structured logging: JSON lines, redaction, the trade context, and no secret anywhere."""

from __future__ import annotations

import io
import json
import logging
import sys
import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import pytest

from fillguard import logs
from fillguard.executor import SmartOrderExecutor
from fillguard.logs import (
    JsonFormatter,
    event_fields,
    event_name,
    log_context,
    log_event,
    redact,
    register_secret,
)
from fillguard.outcome import TradeOutcome
from fillguard.results import FillStatus
from tests.executor_support import Rig, capture_logs, fast_config, make_rig

LEAKY_KEY = "KEY-SHOULD-NOT-LEAK-123"
LEAKY_SECRET = "SECRET-SHOULD-NOT-LEAK-456"

logger = logging.getLogger("fillguard.test")


@pytest.fixture
def fresh_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty secret registry, so a test sees only what its own code registered."""
    monkeypatch.setattr(logs, "_secrets", set())


class Color(Enum):
    RED = "red"


def record_of(level: int, event: str, **fields: Any) -> logging.LogRecord:
    with capture_logs() as captured:
        log_event(logger, level, event, **fields)
    [record] = captured.records
    return record


# ---------------------------------------------------------------------------------- format
def test_json_formatter_one_object_per_line_with_event_and_fields() -> None:
    record = record_of(
        logging.INFO,
        "fill_confirmed",
        order_id="o-1",
        fill_price=Decimal("189.120000001"),
        filled_qty=Decimal("0.5"),
        filled_at=datetime(2026, 1, 5, 14, 30, tzinfo=UTC),
        color=Color.RED,
        methods=("status_field", "fill_price"),
        nested={"a": Decimal("1.10")},
        missing=None,
        elapsed=0.25,
        checks=3,
        ok=True,
    )
    line = JsonFormatter().format(record)
    assert "\n" not in line
    payload = json.loads(line)
    assert payload["event"] == "fill_confirmed"
    assert payload["level"] == "INFO"
    assert payload["logger"] == "fillguard.test"
    assert payload["fill_price"] == "189.120000001"  # Decimal as string, no precision lost
    assert payload["filled_qty"] == "0.5"
    assert payload["filled_at"] == "2026-01-05T14:30:00+00:00"
    assert payload["color"] == "red"
    assert payload["methods"] == ["status_field", "fill_price"]
    assert payload["nested"] == {"a": "1.10"}
    assert payload["missing"] is None
    assert payload["elapsed"] == 0.25
    assert payload["checks"] == 3
    assert payload["ok"] is True
    assert payload["message"].startswith("fill_confirmed ")
    datetime.fromisoformat(payload["ts"])


def test_json_formatter_on_a_plain_record_and_with_an_exception() -> None:
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        record = logging.LogRecord(
            "other", logging.ERROR, __file__, 1, "plain %s", ("text",), sys.exc_info()
        )
    line = JsonFormatter().format(record)
    assert "\n" not in line
    payload = json.loads(line)
    assert payload["event"] == "log"
    assert payload["message"] == "plain text"
    assert "ValueError: boom" in payload["exc"]


def test_fields_do_not_overwrite_the_envelope() -> None:
    with capture_logs() as captured:
        log_event(logger, logging.INFO, "x", ts="fake", message="fake")
    [record] = captured.records
    payload = json.loads(JsonFormatter().format(record))
    assert payload["ts"] != "fake"
    assert payload["message"] == "x ts=fake message=fake"
    assert payload["event"] == "x"


def test_event_name_and_fields_of_other_records() -> None:
    plain = logging.LogRecord("x", logging.INFO, __file__, 1, "hi", (), None)
    assert event_name(plain) is None
    assert event_fields(plain) == {}
    record = record_of(logging.WARNING, "retry", attempt=2, delay=0.5)
    assert event_name(record) == "retry"
    assert event_fields(record) == {"attempt": 2, "delay": 0.5}
    assert record.getMessage() == "retry attempt=2 delay=0.5"


def test_disabled_level_builds_nothing() -> None:
    class Explodes:
        def __str__(self) -> str:
            raise AssertionError("formatted a disabled record")

    quiet = logging.getLogger("fillguard.quiet")
    quiet.setLevel(logging.WARNING)
    try:
        log_event(quiet, logging.DEBUG, "verification", thing=Explodes())
    finally:
        quiet.setLevel(logging.NOTSET)


# ---------------------------------------------------------------------------------- context
def test_log_context_fills_in_fields_and_nests() -> None:
    with capture_logs() as captured:
        with log_context(client_order_id="c-1"):
            log_event(logger, logging.INFO, "a")
            log_event(logger, logging.INFO, "b", client_order_id=None)
            log_event(logger, logging.INFO, "c", client_order_id="explicit")
            with log_context(order_id="o-1"):
                log_event(logger, logging.INFO, "d")
        log_event(logger, logging.INFO, "e")
    got = [event_fields(r) for r in captured.records]
    assert got[0] == {"client_order_id": "c-1"}
    assert got[1] == {"client_order_id": "c-1"}
    assert got[2] == {"client_order_id": "explicit"}
    assert got[3] == {"client_order_id": "c-1", "order_id": "o-1"}
    assert got[4] == {}


def test_log_context_is_per_thread() -> None:
    import threading

    seen: list[dict[str, Any]] = []
    with capture_logs() as captured, log_context(client_order_id="main"):
        thread = threading.Thread(target=lambda: log_event(logger, logging.INFO, "other"))
        thread.start()
        thread.join()
        seen = [event_fields(r) for r in captured.records]
    assert seen == [{}]


# ---------------------------------------------------------------------------------- redaction
def test_secret_like_field_names_are_masked(fresh_secrets: None) -> None:
    record = record_of(
        logging.INFO,
        "x",
        api_key="abc",
        secret_key="def",
        key_id="ghi",
        Authorization="Bearer xyz",
        oauth_token="tok",
        password="pw",
        harmless="fine",
        token_missing=None,
    )
    fields = event_fields(record)
    for name in ("api_key", "secret_key", "key_id", "Authorization", "oauth_token", "password"):
        assert fields[name] == "***"
    assert fields["harmless"] == "fine"
    assert fields["token_missing"] is None


def test_registered_secrets_are_masked_everywhere(fresh_secrets: None) -> None:
    register_secret(LEAKY_SECRET)
    register_secret(None)
    register_secret("ab")  # too short to be a secret worth masking (would mangle text)
    assert redact(f"x {LEAKY_SECRET} y") == "x *** y"
    assert redact("ab") == "ab"
    record = record_of(
        logging.INFO,
        "x",
        text=f"header {LEAKY_SECRET}",
        items=[LEAKY_SECRET],
        mapping={"k": LEAKY_SECRET},
        obj=RuntimeError(LEAKY_SECRET),
    )
    line = JsonFormatter().format(record)
    assert LEAKY_SECRET not in line
    assert LEAKY_SECRET not in record.getMessage()


# ---------------------------------------------------------------------------------- no leaks
def leaky_rig(**kw: Any) -> Rig:
    return make_rig(key=LEAKY_KEY, secret=LEAKY_SECRET, **kw)


class TextWithFields(logging.Formatter):
    """The usual text format plus the event's fields (with their repr)."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{super().format(record)} {event_fields(record)!r}"


@pytest.fixture
def all_output(fresh_secrets: None) -> Iterator[Callable[[], list[str]]]:
    """Every log line at DEBUG from every logger, as text and as JSON."""
    text, jsonl = io.StringIO(), io.StringIO()
    text_handler = logging.StreamHandler(text)
    text_handler.setFormatter(TextWithFields("%(asctime)s %(levelname)s %(name)s %(message)s"))
    json_handler = logging.StreamHandler(jsonl)
    json_handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old = root.level
    root.setLevel(logging.DEBUG)
    root.addHandler(text_handler)
    root.addHandler(json_handler)
    try:
        yield lambda: [text.getvalue(), jsonl.getvalue()]
    finally:
        root.removeHandler(text_handler)
        root.removeHandler(json_handler)
        root.setLevel(old)


def exception_texts(exc: BaseException) -> list[str]:
    texts = ["".join(traceback.format_exception(exc)), str(exc), repr(exc)]
    cause: BaseException | None = exc
    while cause is not None:
        texts += [str(cause), repr(cause), repr(getattr(cause, "args", ()))]
        cause = cause.__cause__ or cause.__context__
    return texts


def assert_no_secret(texts: list[str]) -> None:
    blob = "\n".join(texts)
    assert blob.strip(), "nothing captured"
    assert LEAKY_KEY not in blob
    assert LEAKY_SECRET not in blob


def test_no_secret_in_any_output_of_successful_and_failing_trades(
    all_output: Callable[[], list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    texts: list[str] = []
    # a clean fill, then a rough day (errors, retries, lost submits, cancels)
    rig = leaky_rig()
    texts += [repr(rig.trade("AAPL", "buy", 2, expected_price=Decimal(1)))]
    rig = leaky_rig(
        seed=3,
        faults={
            "base": "hostile",
            "lost_submit_rate": 0.5,
            "http_error_rate": 0.3,
            "reset_rate": 0.2,
            "hang_rate": 0.1,
            "hang_seconds": 5.0,
        },
    )
    for i in range(6):
        result = rig.trade("AAPL", "buy", 1 + i, expected_price=Decimal(300))
        texts += [repr(result), str(result), repr(result.fill), repr(result.consistency)]
    texts += [repr(rig.executor), repr(rig.executor.config), repr(vars(rig.executor))]
    # refused: 403 insufficient funds
    result = leaky_rig().trade("AAPL", "buy", 10**6)
    assert result.error is not None
    texts += [repr(result), result.error]
    out = capsys.readouterr()
    texts += [out.out, out.err]
    logged = all_output()
    assert any(" retry " in t for t in logged), "the rough day logged no retry"
    assert any('"event":"verification"' in t for t in logged), "no DEBUG records captured"
    assert_no_secret(texts + logged)


def test_no_secret_when_authentication_fails(
    all_output: Callable[[], list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    texts: list[str] = []
    # 401: the server does not know this key id
    result = leaky_rig(server_key="ANOTHER-KEY").trade("AAPL", "buy", 1)
    assert result.error is not None
    assert "401" in result.error
    texts += [repr(result), result.error]
    # 403: wrong secret
    result = leaky_rig(server_secret="ANOTHER-SECRET").trade("AAPL", "buy", 1)
    assert result.error is not None
    assert "403" in result.error
    texts += [repr(result), result.error]
    # the key pair is revoked mid-trade: reading the order is refused -> an UNKNOWN result
    rig = leaky_rig(config=fast_config(consistency_check=False))
    original = rig.client.submit_order

    def submit_then_revoke(request: Any) -> Any:
        order = original(request)
        rig.api.secret_key = "ROTATED-SECRET"
        return order

    rig.client.submit_order = submit_then_revoke
    revoked = rig.executor.execute_trade("AAPL", "buy", 1)
    assert revoked.outcome is TradeOutcome.PLACED
    assert revoked.status is FillStatus.UNKNOWN
    assert revoked.fill is not None
    assert revoked.fill.refusal is not None
    assert revoked.fill.refusal.status_code == 403
    texts += [repr(revoked), str(revoked.to_log_dict())]
    logging.getLogger("fillguard.test").error("trade failed: %s", revoked.error)
    out = capsys.readouterr()
    texts += [out.out, out.err]
    logged = all_output()
    assert any("403" in t for t in logged)
    assert any("401" in t for t in logged)
    assert_no_secret(texts + logged)


def test_executor_registers_the_client_secrets(fresh_secrets: None) -> None:
    rig = leaky_rig()
    SmartOrderExecutor(rig.client, fast_config(), clock=rig.clock)
    assert redact(f"{LEAKY_KEY} {LEAKY_SECRET}") == "*** ***"
