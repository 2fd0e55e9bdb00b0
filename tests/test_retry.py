"""Error classification, backoff and ErrorRecoveryManager, all in fake time."""

from __future__ import annotations

import http.client
import json
import logging
import random
import threading
from collections.abc import Callable
from email.utils import format_datetime
from typing import Any

import pydantic
import pytest
import requests
from alpaca.trading.models import Order
from hypothesis import given, settings
from hypothesis import strategies as st

from fillguard.clock import FakeClock
from fillguard.config import FillDetectionConfig
from fillguard.errors import (
    BrokerError,
    ClientSideError,
    InvalidInputError,
    OutcomeUnknownError,
    RefusedError,
    TransientError,
    UnparseableResponseError,
)
from fillguard.logs import event_fields, event_name
from fillguard.retry import (
    Classification,
    ErrorClass,
    ErrorRecoveryManager,
    RetryStats,
    backoff_delay,
    classify_error,
    to_fillguard_error,
)
from tests.helpers_errors import (
    api_error,
    bare_api_error,
    connect_timeout,
    connection_refused,
    connection_reset,
    rate_limited,
    read_timeout,
)

T = ErrorClass.TRANSIENT
P = ErrorClass.PERMANENT
U = ErrorClass.UNKNOWN_OUTCOME
X = ErrorClass.UNPARSEABLE
C = ErrorClass.CLIENT_ERROR
NOW = 1_767_623_400.0  # 2026-01-05T14:30:00Z, FakeClock's default start


def _validation_error() -> Exception:
    try:
        Order(id="not-a-uuid")
    except pydantic.ValidationError as exc:
        return exc
    raise AssertionError("expected a ValidationError")


def _json_error() -> Exception:
    resp = requests.Response()
    resp.status_code = 200
    resp._content = b"<html>ok</html>"
    try:
        resp.json()
    except requests.exceptions.JSONDecodeError as exc:
        return exc
    raise AssertionError("expected a JSONDecodeError")


# --------------------------------------------------------------------------- classify_error


@pytest.mark.parametrize(
    ("make", "read_kind", "write_kind"),
    [
        (lambda: api_error(429), T, T),
        (lambda: api_error(500), T, U),
        (lambda: api_error(502, body="<html><body>502 Bad Gateway</body></html>"), T, U),
        (lambda: api_error(503, body=""), T, U),
        (lambda: api_error(504), T, U),
        (lambda: api_error(507), T, U),
        (lambda: api_error(400), P, P),
        (lambda: api_error(401), P, P),
        (lambda: api_error(403), P, P),
        (lambda: api_error(404, body="404 page not found"), P, P),
        (lambda: api_error(422), P, P),
        (connect_timeout, T, T),
        (connection_refused, T, T),
        (lambda: requests.exceptions.ConnectionError("Connection refused"), T, T),
        (lambda: ConnectionRefusedError(111, "Connection refused"), T, T),
        (connection_reset, T, U),
        (lambda: requests.exceptions.ConnectionError("boom"), T, U),
        (read_timeout, T, U),
        (lambda: requests.exceptions.ChunkedEncodingError("incomplete read"), T, U),
        (lambda: http.client.RemoteDisconnected("closed"), T, U),
        (lambda: ConnectionResetError(104, "reset by peer"), T, U),
        (lambda: TimeoutError("timed out"), T, U),
        (lambda: OSError("weird"), T, U),
        (_json_error, X, X),
        (_validation_error, X, X),
        (lambda: KeyError("code"), C, C),
        (lambda: ValueError("badly formed hexadecimal UUID string"), C, C),
        (lambda: TypeError("unsupported operand"), C, C),
        (lambda: AttributeError("'NoneType' object has no attribute 'get'"), C, C),
        (lambda: requests.exceptions.InvalidHeader("Invalid header value"), C, C),
        (lambda: requests.exceptions.InvalidURL("Invalid URL"), C, C),
        (lambda: TransientError("x"), T, T),
        (lambda: RefusedError("x"), P, P),
        (lambda: OutcomeUnknownError("x"), U, U),
        (lambda: BrokerError("x"), T, U),
        (lambda: InvalidInputError("qty", "must be > 0"), C, C),
    ],
)
def test_classification_table(
    make: Callable[[], BaseException], read_kind: ErrorClass, write_kind: ErrorClass
) -> None:
    """Each known failure sorts into the documented class for reads and for writes."""
    assert classify_error(make(), now_epoch=NOW).kind is read_kind
    assert classify_error(make(), is_write=True, now_epoch=NOW).kind is write_kind


def test_404_is_transient_inside_the_grace_window() -> None:
    """A 404 is transient only when the caller says eventual consistency applies."""
    err = api_error(404)
    assert classify_error(err).kind is P
    verdict = classify_error(err, not_found_transient=True)
    assert verdict.kind is T
    assert verdict.status_code == 404
    assert verdict.code == 40410000
    assert verdict.message == "order not found"


def test_api_error_body_parsing_is_defensive() -> None:
    """Non-JSON bodies, JSON without keys and non-dict JSON fall back to the raw text."""
    html = api_error(502, body="<html>Bad Gateway</html>")
    with pytest.raises(json.JSONDecodeError):
        _ = html.code  # alpaca-py's own property raises: we must not use it
    verdict = classify_error(html)
    assert verdict.status_code == 502
    assert verdict.code is None
    assert verdict.message == "<html>Bad Gateway</html>"
    assert classify_error(api_error(422, body='{"msg": 1}')).message == '{"msg": 1}'
    assert classify_error(api_error(422, body="[1, 2]")).code is None
    assert classify_error(api_error(403, body='{"code": "40310000", "message": 5}')).code == (
        40310000
    )
    long = classify_error(api_error(500, body="x" * 5000)).message
    assert len(long) <= 300


def test_api_error_without_http_error_uses_the_code() -> None:
    """Without a response, the 8-digit Alpaca code's prefix stands in for the HTTP status."""
    verdict = classify_error(bare_api_error('{"code":40410000,"message":"order not found"}'))
    assert verdict.status_code == 404
    assert verdict.kind is P
    bare = classify_error(bare_api_error("something"), is_write=True)
    assert bare.status_code is None
    assert bare.kind is U


def test_rate_limit_reset_header_gives_retry_after() -> None:
    """X-Ratelimit-Reset (epoch seconds) becomes seconds from now; never negative."""
    assert classify_error(rate_limited(NOW + 12), now_epoch=NOW).retry_after == 12.0
    assert classify_error(rate_limited(NOW - 5), now_epoch=NOW).retry_after == 0.0
    assert classify_error(api_error(429), now_epoch=NOW).retry_after is None


def test_retry_after_header_wins_and_names_are_case_insensitive() -> None:
    """Retry-After (seconds or HTTP date) beats the reset header; header case is ignored."""
    err = rate_limited(NOW + 30, retry_after="2")
    assert classify_error(err, now_epoch=NOW).retry_after == 2.0
    resp = api_error(429, headers={"x-ratelimit-reset": str(int(NOW + 7))})
    assert classify_error(resp, now_epoch=NOW).retry_after == 7.0
    from datetime import UTC, datetime

    date = format_datetime(datetime.fromtimestamp(NOW + 4, UTC), usegmt=True)
    assert classify_error(rate_limited(retry_after=date), now_epoch=NOW).retry_after == 4.0
    garbled = rate_limited(retry_after="soon")
    assert classify_error(garbled, now_epoch=NOW).retry_after is None
    assert classify_error(rate_limited(retry_after="nan"), now_epoch=NOW).retry_after is None


def test_rate_limit_with_plain_dict_headers_and_no_response() -> None:
    """Headers in a plain dict are searched case-insensitively; a missing response is fine."""
    err = api_error(429)
    err.response.headers = {"X-RATELIMIT-RESET": str(int(NOW + 3))}
    assert classify_error(err, now_epoch=NOW).retry_after == 3.0
    err.response.headers = None
    assert classify_error(err, now_epoch=NOW).retry_after is None


def test_classify_never_raises() -> None:
    """An exception whose str() raises still gets a classification."""

    class Nasty(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert classify_error(Nasty()).kind is T
    assert classify_error(Nasty(), is_write=True).kind is U


def test_to_fillguard_error_builds_the_matching_type() -> None:
    """The BrokerError subclass follows the class and carries codes, ids and the cause."""
    err = rate_limited(NOW + 5)
    verdict = classify_error(err, now_epoch=NOW)
    out = to_fillguard_error(err, verdict, order_id="o-1", client_order_id="c-1")
    assert type(out) is TransientError
    assert (out.status_code, out.code, out.retry_after) == (429, 42910000, 5.0)
    assert (out.order_id, out.client_order_id) == ("o-1", "c-1")
    assert out.__cause__ is err
    assert "rate limit exceeded" in str(out)
    refused = to_fillguard_error(err, Classification(kind=P, message="m"))
    assert type(refused) is RefusedError
    unknown = to_fillguard_error(read_timeout(), Classification(kind=U))
    assert type(unknown) is OutcomeUnknownError
    assert "ReadTimeout" in str(unknown)
    inner = TransientError("inner", order_id="o-9")
    assert to_fillguard_error(inner, classify_error(inner)).order_id == "o-9"


# --------------------------------------------------------------------------- backoff


def test_backoff_doubles_and_caps_without_jitter() -> None:
    """Without jitter: 0.5, 1, 2, 4, 8, 8 ... and attempt 0 counts as 1."""
    rng = random.Random(0)
    delays = [backoff_delay(n, base=0.5, maximum=8.0, jitter=0.0, rng=rng) for n in range(0, 8)]
    assert delays == [0.5, 0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_backoff_is_overflow_safe() -> None:
    """Huge attempt numbers give the maximum, not an OverflowError."""
    rng = random.Random(0)
    assert backoff_delay(10**6, base=0.5, maximum=8.0, jitter=0.5, rng=rng) == 8.0
    assert backoff_delay(1025, base=1e300, maximum=1e308, jitter=0.0, rng=rng) == 1e308


@settings(max_examples=200, deadline=None)
@given(
    base=st.floats(min_value=0.001, max_value=10),
    factor=st.floats(min_value=1, max_value=100),
    jitter=st.floats(min_value=0, max_value=1),
    seed=st.integers(0, 2**32),
    attempts=st.integers(1, 80),
)
def test_property_backoff_bounds(
    base: float, factor: float, jitter: float, seed: int, attempts: int
) -> None:
    """Delays lie in [min(base*2^(n-1), max), max] and the un-jittered floor never decreases."""
    maximum = base * factor
    rng = random.Random(seed)
    floors = []
    for n in range(1, attempts + 1):
        floor = min(base * 2.0 ** min(n - 1, 64), maximum)
        delay = backoff_delay(n, base=base, maximum=maximum, jitter=jitter, rng=rng)
        assert floor <= delay <= maximum
        assert delay <= floor * (1 + jitter) + 1e-9
        floors.append(backoff_delay(n, base=base, maximum=maximum, jitter=0.0, rng=rng))
    assert floors == sorted(floors)


# --------------------------------------------------------------------------- manager


def _manager(
    clock: FakeClock | None = None, *, seed: int = 1, **cfg: Any
) -> tuple[ErrorRecoveryManager, FakeClock]:
    clock = clock or FakeClock()
    return ErrorRecoveryManager(
        FillDetectionConfig(**cfg), clock=clock, rng=random.Random(seed)
    ), clock


class Script:
    """A callable that raises the scripted errors in turn, then returns ``result``."""

    def __init__(self, errors: list[BaseException], result: object = "ok") -> None:
        self.errors = list(errors)
        self.result = result
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> object:
        self.calls.append((args, kwargs))
        if self.errors:
            raise self.errors.pop(0)
        return self.result


def test_success_first_time_needs_no_retry() -> None:
    """A call that works returns at once; arguments pass through, options are consumed."""
    mgr, clock = _manager()
    fn = Script([])
    stats = RetryStats()
    assert mgr.execute_with_retry(fn, 1, x=2, _order_id="o", _deadline=5.0, _stats=stats) == "ok"
    assert fn.calls == [((1,), {"x": 2})]
    assert (mgr.calls, mgr.retries, stats.calls, stats.retries) == (1, 0, 1, 0)
    assert clock.slept == []


def test_transient_errors_are_retried_with_backoff() -> None:
    """Transient failures are retried after 0.5, 1, 2 s (no jitter) and the result returned."""
    mgr, clock = _manager(retry_jitter=0)
    fn = Script([api_error(503), connection_refused(), read_timeout()])
    stats = RetryStats()
    assert mgr.execute_with_retry(fn, _stats=stats) == "ok"
    assert clock.slept == [0.5, 1.0, 2.0]
    assert (stats.calls, stats.retries, stats.errors, stats.waited_seconds) == (4, 3, 3, 3.5)
    assert (mgr.calls, mgr.retries) == (4, 3)


def test_permanent_error_is_not_retried() -> None:
    """A 422 raises RefusedError at once, carrying the order id and the original cause."""
    mgr, clock = _manager()
    err = api_error(422)
    fn = Script([err])
    with pytest.raises(RefusedError) as info:
        mgr.execute_with_retry(fn, _order_id="o-1", _client_order_id="c-1")
    assert info.value.__cause__ is err
    assert (info.value.order_id, info.value.client_order_id) == ("o-1", "c-1")
    assert info.value.status_code == 422
    assert len(fn.calls) == 1
    assert clock.slept == []


def test_write_with_unknown_outcome_is_never_retried() -> None:
    """A 504 or read timeout on a write raises OutcomeUnknownError after exactly one call."""
    for err in (api_error(504), read_timeout(), connection_reset()):
        mgr, clock = _manager()
        fn = Script([err])
        with pytest.raises(OutcomeUnknownError) as info:
            mgr.execute_with_retry(fn, _is_write=True, _order_id="o")
        assert info.value.__cause__ is err
        assert len(fn.calls) == 1
        assert clock.slept == []


def test_write_connect_failure_is_retried() -> None:
    """A refused connect on a write sent nothing, so it is retried."""
    mgr, _ = _manager()
    fn = Script([connection_refused(), connect_timeout()])
    assert mgr.execute_with_retry(fn, _is_write=True) == "ok"
    assert len(fn.calls) == 3


def test_not_found_grace_option() -> None:
    """_not_found_transient turns a 404 into a retry instead of a refusal."""
    mgr, _ = _manager()
    assert mgr.execute_with_retry(Script([api_error(404)]), _not_found_transient=True) == "ok"
    with pytest.raises(RefusedError):
        mgr.execute_with_retry(Script([api_error(404)]))


def test_retries_are_exhausted_after_max_retries() -> None:
    """max_retries=2 means three calls, then TransientError from the last error."""
    mgr, clock = _manager(max_retries=2, retry_jitter=0)
    errors: list[BaseException] = [api_error(500), api_error(502), api_error(503)]
    last = errors[-1]
    fn = Script([*errors, api_error(504)])
    with pytest.raises(TransientError) as info:
        mgr.execute_with_retry(fn, _order_id="o")
    assert info.value.__cause__ is last
    assert info.value.status_code == 503
    assert len(fn.calls) == 3
    assert clock.slept == [0.5, 1.0]


def test_zero_retries_means_one_call() -> None:
    """max_retries=0 makes one call only."""
    mgr, _ = _manager(max_retries=0)
    fn = Script([api_error(500)])
    with pytest.raises(TransientError):
        mgr.execute_with_retry(fn)
    assert len(fn.calls) == 1


def test_deadline_caps_waits_and_stops() -> None:
    """No wait runs past the deadline: when the next wait would reach it, give up at once."""
    clock = FakeClock()
    mgr, _ = _manager(clock, retry_jitter=0, max_retries=10)
    deadline = clock.monotonic() + 2.0
    fn = Script([api_error(500)] * 10)
    with pytest.raises(TransientError):
        mgr.execute_with_retry(fn, _deadline=deadline)
    assert clock.slept == [0.5, 1.0]
    assert clock.monotonic() < deadline
    assert len(fn.calls) == 3


def test_programming_errors_and_unreadable_bodies_are_never_retried() -> None:
    """Rule 7: only transport failures, 5xx and 429 are retried."""
    import pydantic

    for exc in (
        ValueError("bad"),
        TypeError("bad"),
        AttributeError("bad"),
        requests.exceptions.InvalidHeader("bad"),
        _json_error(),
        _validation_error(),
    ):
        mgr, _ = _manager(max_retries=5)
        fn = Script([exc])
        with pytest.raises(BrokerError) as info:
            mgr.execute_with_retry(fn)
        assert len(fn.calls) == 1
        assert not isinstance(info.value, TransientError)
        if isinstance(exc, pydantic.ValidationError | requests.exceptions.JSONDecodeError):
            assert isinstance(info.value, UnparseableResponseError)
        else:
            assert isinstance(info.value, ClientSideError)


def test_a_huge_retry_after_is_capped() -> None:
    """Retry-After: 86400 waits at most max_retry_after_seconds, and never past the deadline."""
    clock = FakeClock()
    mgr, _ = _manager(clock, retry_jitter=0, max_retry_after_seconds=2.0)
    fn = Script([rate_limited(retry_after="86400")])
    assert mgr.execute_with_retry(fn) == "ok"
    assert clock.slept == [2.0]
    fn = Script([rate_limited(retry_after="86400")])
    with pytest.raises(TransientError):
        mgr.execute_with_retry(fn, _deadline=clock.monotonic() + 1.0)
    assert clock.slept == [2.0]


def test_deadline_already_passed_makes_one_call() -> None:
    """With the deadline behind us the call is still made once, then no wait."""
    clock = FakeClock()
    mgr, _ = _manager(clock)
    fn = Script([api_error(500)])
    with pytest.raises(TransientError):
        mgr.execute_with_retry(fn, _deadline=clock.monotonic() - 1)
    assert clock.slept == []
    assert len(fn.calls) == 1


def test_rate_limit_waits_until_reset() -> None:
    """A 429 with X-Ratelimit-Reset waits until the reset even when backoff is shorter."""
    clock = FakeClock()
    mgr, _ = _manager(clock, retry_jitter=0, max_retry_after_seconds=60.0)
    reset = clock.now().timestamp() + 20
    fn = Script([rate_limited(reset)])
    assert mgr.execute_with_retry(fn) == "ok"
    assert clock.slept == [20.0]
    assert clock.now().timestamp() >= reset


def test_retry_and_exhaustion_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Every retry logs a WARNING 'retry' event; giving up logs an ERROR event."""
    mgr, _ = _manager(max_retries=1, retry_jitter=0)
    fn = Script([api_error(503), read_timeout()])
    with caplog.at_level(logging.DEBUG, logger="fillguard.retry"), pytest.raises(TransientError):
        mgr.execute_with_retry(fn, _order_id="o-7")
    events = [(event_name(r), r.levelno, event_fields(r)) for r in caplog.records]
    retry = [e for e in events if e[0] == "retry"]
    assert len(retry) == 1
    assert retry[0][1] == logging.WARNING
    fields = retry[0][2]
    assert fields["error_type"] == "APIError"
    assert (fields["attempt"], fields["delay"], fields["order_id"]) == (1, 0.5, "o-7")
    assert fields["message"]
    exhausted = [e for e in events if e[0] == "retries_exhausted"]
    assert len(exhausted) == 1
    assert exhausted[0][1] == logging.ERROR
    assert exhausted[0][2]["error_type"] == "ReadTimeout"


def test_permanent_failures_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    """A refused call is logged as 'call_failed' with its class."""
    mgr, _ = _manager()
    with caplog.at_level(logging.WARNING, logger="fillguard.retry"), pytest.raises(RefusedError):
        mgr.execute_with_retry(Script([api_error(403)]))
    [record] = [r for r in caplog.records if event_name(r) == "call_failed"]
    assert event_fields(record)["kind"] == "permanent"


def test_plan_named_wrappers() -> None:
    """_is_retryable_error and _calculate_backoff follow classify_error and backoff_delay."""
    mgr, _ = _manager(retry_jitter=0)
    assert mgr._is_retryable_error(api_error(429))
    assert mgr._is_retryable_error(read_timeout())
    assert not mgr._is_retryable_error(api_error(401))
    assert [mgr._calculate_backoff(n) for n in (1, 2, 3, 10)] == [0.5, 1.0, 2.0, 8.0]


def test_shared_manager_counts_across_threads() -> None:
    """Aggregate counters stay exact when several threads share one manager."""
    mgr, _ = _manager(retry_jitter=0)

    def work() -> None:
        for _ in range(50):
            mgr.execute_with_retry(Script([api_error(500)]))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert mgr.calls == 400
    assert mgr.retries == 200


def test_call_takes_a_zero_argument_function() -> None:
    """call() is the typed, lower-level entry point."""
    mgr, _ = _manager()
    stats = RetryStats()
    assert mgr.call(lambda: 42, stats=stats) == 42
    assert stats.calls == 1


# --------------------------------------------------------------------------- properties

_TRANSIENT_READ_ERRORS: list[Callable[[], BaseException]] = [
    lambda: api_error(429),
    lambda: api_error(500),
    lambda: api_error(502, body="<html>Bad Gateway</html>"),
    lambda: api_error(503),
    lambda: api_error(504),
    connection_refused,
    connection_reset,
    read_timeout,
]


@settings(max_examples=200, deadline=None)
@given(
    picks=st.lists(st.integers(0, len(_TRANSIENT_READ_ERRORS) - 1), max_size=10),
    max_retries=st.integers(0, 7),
    seed=st.integers(0, 2**32),
)
def test_property_recovers_iff_failures_within_max_retries(
    picks: list[int], max_retries: int, seed: int
) -> None:
    """Property 3: transient failures then success: success iff failures <= max_retries."""
    mgr, clock = _manager(max_retries=max_retries, seed=seed)
    fn = Script([_TRANSIENT_READ_ERRORS[i]() for i in picks], result="order")
    if len(picks) <= max_retries:
        assert mgr.execute_with_retry(fn) == "order"
        assert len(fn.calls) == len(picks) + 1
        assert mgr.retries == len(picks)
    else:
        with pytest.raises(TransientError):
            mgr.execute_with_retry(fn)
        assert len(fn.calls) == max_retries + 1
    assert all(0 < s <= 8.0 for s in clock.slept)


@settings(max_examples=200, deadline=None)
@given(
    picks=st.lists(st.integers(0, len(_TRANSIENT_READ_ERRORS) - 1), max_size=10),
    max_retries=st.integers(0, 10),
    budget=st.floats(min_value=0.01, max_value=40),
    seed=st.integers(0, 2**32),
)
def test_property_never_waits_past_the_deadline(
    picks: list[int], max_retries: int, budget: float, seed: int
) -> None:
    """Total fake time slept never passes the deadline; a failure means a real limit was hit."""
    mgr, clock = _manager(max_retries=max_retries, seed=seed)
    start = clock.monotonic()
    deadline = start + budget
    fn = Script([_TRANSIENT_READ_ERRORS[i]() for i in picks])
    try:
        assert mgr.execute_with_retry(fn, _deadline=deadline) == "ok"
        assert len(picks) <= max_retries
    except TransientError:
        # Gave up: retries ran out, or the next wait would have reached the deadline.
        assert len(picks) > max_retries or len(fn.calls) <= len(picks)
    assert sum(clock.slept) <= budget + 1e-9
    assert clock.monotonic() <= deadline + 1e-9


@settings(max_examples=200, deadline=None)
@given(
    wait=st.integers(0, 60),
    budget=st.floats(min_value=0.5, max_value=90),
    seed=st.integers(0, 2**32),
)
def test_property_rate_limit_waits_for_reset_within_deadline(
    wait: int, budget: float, seed: int
) -> None:
    """A 429 with X-Ratelimit-Reset waits at least until the reset, capped by the deadline."""
    clock = FakeClock()
    mgr, _ = _manager(clock, seed=seed, max_retry_after_seconds=120.0)
    reset = clock.now().timestamp() + wait
    deadline = clock.monotonic() + budget
    fn = Script([rate_limited(reset)])
    try:
        mgr.execute_with_retry(fn, _deadline=deadline)
        assert clock.now().timestamp() >= reset
        assert len(fn.calls) == 2
    except TransientError:
        assert clock.slept == []  # gave up at once instead of waiting into the deadline
        # Gave up only because the reset (or the 0.5-0.55 s backoff) lies beyond the deadline.
        assert max(wait, 0.55) >= budget - 1e-9
    assert clock.monotonic() <= deadline + 1e-9


def test_an_expected_refusal_is_logged_at_debug_not_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A 404 the caller expects (e.g. "flat") is still logged, at DEBUG, marked expected."""
    manager = ErrorRecoveryManager(FillDetectionConfig(), clock=FakeClock())
    caplog.set_level(logging.DEBUG, logger="fillguard")

    def not_found() -> None:
        raise api_error(404, '{"code":40410000,"message":"position does not exist"}')

    with pytest.raises(RefusedError):
        manager.call(not_found, expected_statuses=frozenset({404}))
    [record] = [r for r in caplog.records if event_name(r) == "call_failed"]
    assert record.levelno == logging.DEBUG
    assert event_fields(record)["expected"] is True
    with pytest.raises(RefusedError):
        manager.call(not_found)
    assert [r.levelno for r in caplog.records if event_name(r) == "call_failed"][
        -1
    ] == logging.WARNING
