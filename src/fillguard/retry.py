"""Error classification, exponential backoff and the retry loop (:class:`ErrorRecoveryManager`).

Every failure is sorted by what it tells us about the broker's state:

* ``TRANSIENT``        surely not applied, or a read that can simply be repeated: connect
                       failures, 429, 5xx and timeouts on reads, a 404 inside the grace window;
* ``PERMANENT``        surely refused: 401, 403, 404, 422 and other 4xx; retrying as is won't help;
* ``UNKNOWN_OUTCOME``  a write that may have been applied: read timeout, connection reset or 5xx
                       after the request was sent. Never retried blindly: the caller must look
                       the order up first, or risk a duplicate order.

Waiting happens only through the injected :class:`~fillguard.clock.Clock`, so tests run in fake
time, and never past the caller's deadline.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import random
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any, TypeVar

import requests
import urllib3.exceptions
from alpaca.common.exceptions import APIError

from fillguard.clock import Clock, SystemClock
from fillguard.config import FillDetectionConfig
from fillguard.errors import (
    BrokerError,
    InvalidInputError,
    OutcomeUnknownError,
    RefusedError,
    TransientError,
)
from fillguard.logs import log_event

__all__ = [
    "Classification",
    "ErrorClass",
    "ErrorRecoveryManager",
    "RetryStats",
    "backoff_delay",
    "classify_error",
    "to_fillguard_error",
]

T = TypeVar("T")

_logger = logging.getLogger("fillguard.retry")

#: 5xx codes the spec names; any other 5xx is treated the same way.
_SERVER_ERRORS = frozenset({500, 502, 503, 504})
_MESSAGE_LIMIT = 300


class ErrorClass(StrEnum):
    """What a failure says about whether the request took effect."""

    TRANSIENT = "transient"
    PERMANENT = "permanent"
    UNKNOWN_OUTCOME = "unknown_outcome"


@dataclass(frozen=True, slots=True)
class Classification:
    """The verdict on one exception, with what the broker told us."""

    kind: ErrorClass
    status_code: int | None = None
    code: int | None = None
    message: str = ""
    retry_after: float | None = None


# --------------------------------------------------------------------------- classification


def _ambiguous(is_write: bool) -> ErrorClass:
    """A failure after the request may have been sent: repeatable for reads, unknown for writes."""
    return ErrorClass.UNKNOWN_OUTCOME if is_write else ErrorClass.TRANSIENT


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 3] + "..."


def _safe_attr(obj: object, name: str) -> Any:
    """``getattr`` that treats a raising property (APIError.code on HTML bodies) as missing."""
    try:
        return getattr(obj, name, None)
    except Exception:
        return None


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _parse_body(body: str) -> tuple[int | None, str]:
    """Alpaca's ``{"code": ..., "message": ...}`` body, or (None, the raw text) if it isn't."""
    try:
        data = json.loads(body)
    except (ValueError, TypeError, RecursionError):
        return None, _short(body)
    if not isinstance(data, dict):
        return None, _short(body)
    code = _as_int(data.get("code"))
    message = data.get("message")
    return code, _short(message if isinstance(message, str) else body)


def _header(headers: object, name: str) -> str | None:
    """Header ``name`` looked up case-insensitively in any mapping, or None."""
    if not isinstance(headers, Mapping):
        return None
    wanted = name.lower()
    try:
        for key, value in headers.items():
            if isinstance(key, str) and key.lower() == wanted and value is not None:
                return str(value).strip()
    except Exception:
        return None
    return None


def _finite_float(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _retry_after(response: object, now_epoch: float) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or HTTP date) or ``X-Ratelimit-Reset``.

    ``Retry-After`` is the more specific instruction and wins; Alpaca documents only
    ``X-Ratelimit-Reset`` (epoch seconds when the per-minute window resets).
    """
    headers = _safe_attr(response, "headers")
    raw = _header(headers, "Retry-After")
    seconds = _finite_float(raw)
    if seconds is None and raw:
        try:
            seconds = parsedate_to_datetime(raw).timestamp() - now_epoch
        except (TypeError, ValueError, IndexError, OverflowError):
            seconds = None
    if seconds is None:
        reset = _finite_float(_header(headers, "X-Ratelimit-Reset"))
        if reset is not None:
            seconds = reset - now_epoch
    if seconds is None:
        return None
    return max(0.0, seconds)


def _classify_api_error(
    exc: BaseException, *, is_write: bool, not_found_transient: bool, now_epoch: float
) -> Classification:
    status = _as_int(_safe_attr(exc, "status_code"))
    try:
        body = str(exc)
    except Exception:
        body = ""
    code, message = _parse_body(body)
    if status is None and code is not None and 10_000_000 <= code <= 99_999_999:
        # Alpaca's 8-digit codes start with the HTTP status (40410000 -> 404).
        status = code // 100_000

    def verdict(kind: ErrorClass, retry_after: float | None = None) -> Classification:
        return Classification(
            kind=kind, status_code=status, code=code, message=message, retry_after=retry_after
        )

    if status is None:
        return verdict(_ambiguous(is_write))
    if status == 429:
        return verdict(ErrorClass.TRANSIENT, _retry_after(_safe_attr(exc, "response"), now_epoch))
    if status in _SERVER_ERRORS or 500 <= status <= 599:
        # The server may have acted before failing: a write's outcome is unknown.
        return verdict(_ambiguous(is_write))
    if status == 404:
        return verdict(ErrorClass.TRANSIENT if not_found_transient else ErrorClass.PERMANENT)
    if 400 <= status <= 499:
        return verdict(ErrorClass.PERMANENT)
    return verdict(_ambiguous(is_write))


def _causes(exc: BaseException) -> list[object]:
    """``exc`` and what it wraps (args, ``reason``, ``__cause__``, ``__context__``), bounded."""
    seen: list[object] = []
    stack: list[object] = [exc]
    while stack and len(seen) < 32:
        item = stack.pop()
        if any(item is s for s in seen):
            continue
        seen.append(item)
        if isinstance(item, BaseException):
            stack.extend(arg for arg in item.args if isinstance(arg, BaseException))
            for name in ("reason", "__cause__", "__context__"):
                inner = _safe_attr(item, name)
                if isinstance(inner, BaseException):
                    stack.append(inner)
    return seen


def _is_connect_failure(exc: BaseException) -> bool:
    """Whether the connection was never established, so nothing was sent.

    requests wraps a refused connect as ``ConnectionError(MaxRetryError(reason=
    NewConnectionError))``; a reset mid-request as ``ConnectionError(ProtocolError(...))``.
    """
    for item in _causes(exc):
        if isinstance(item, urllib3.exceptions.ReadTimeoutError):
            return False
        if isinstance(
            item,
            urllib3.exceptions.NewConnectionError
            | urllib3.exceptions.ConnectTimeoutError
            | ConnectionRefusedError
            | socket.gaierror,
        ):
            return True
    text = str(exc)
    return "Failed to establish a new connection" in text or "Connection refused" in text


def _classify(
    exc: BaseException, *, is_write: bool, not_found_transient: bool, now_epoch: float
) -> Classification:
    message = _short(str(exc)) or type(exc).__name__
    if isinstance(exc, BrokerError):
        fields: dict[str, Any] = {
            "status_code": exc.status_code,
            "code": exc.code,
            "message": _short(exc.message) or message,
            "retry_after": exc.retry_after,
        }
        if isinstance(exc, RefusedError):
            return Classification(kind=ErrorClass.PERMANENT, **fields)
        if isinstance(exc, TransientError):
            return Classification(kind=ErrorClass.TRANSIENT, **fields)
        if isinstance(exc, OutcomeUnknownError):
            return Classification(kind=ErrorClass.UNKNOWN_OUTCOME, **fields)
        return Classification(kind=_ambiguous(is_write), **fields)
    if isinstance(exc, InvalidInputError):
        # Our own argument check failed: nothing was sent and repeating won't fix it.
        return Classification(kind=ErrorClass.PERMANENT, message=message)
    if isinstance(exc, APIError):
        return _classify_api_error(
            exc, is_write=is_write, not_found_transient=not_found_transient, now_epoch=now_epoch
        )
    # requests' JSON errors are OSErrors too; check them before the transport rules. A garbled
    # 2xx body means the request *was* handled, so a write's outcome is unknown.
    if isinstance(exc, requests.exceptions.InvalidJSONError):
        return Classification(kind=_ambiguous(is_write), message=message)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return Classification(kind=ErrorClass.TRANSIENT, message=message)
    if isinstance(exc, requests.exceptions.ConnectionError | ConnectionRefusedError):
        kind = ErrorClass.TRANSIENT if _is_connect_failure(exc) else _ambiguous(is_write)
        return Classification(kind=kind, message=message)
    if isinstance(
        exc, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError
    ) and not isinstance(exc, urllib3.exceptions.ReadTimeoutError):
        return Classification(kind=ErrorClass.TRANSIENT, message=message)
    # ReadTimeout, ChunkedEncodingError, resets, RemoteDisconnected, builtin TimeoutError and
    # OSError, pydantic ValidationError and anything unforeseen: the read can be repeated, but
    # a write may have landed.
    return Classification(kind=_ambiguous(is_write), message=message)


def classify_error(
    exc: BaseException,
    *,
    is_write: bool = False,
    not_found_transient: bool = False,
    now_epoch: float | None = None,
) -> Classification:
    """Sort ``exc`` into TRANSIENT, PERMANENT or UNKNOWN_OUTCOME; never raises.

    ``is_write`` marks a request that changes broker state (submit, cancel, replace).
    ``not_found_transient`` makes a 404 transient (eventual consistency just after a submit).
    ``now_epoch`` is the wall time used to turn ``X-Ratelimit-Reset`` into a wait.
    """
    now = time.time() if now_epoch is None else now_epoch
    try:
        return _classify(
            exc, is_write=is_write, not_found_transient=not_found_transient, now_epoch=now
        )
    except Exception:  # classification must never mask the original error
        return Classification(kind=_ambiguous(is_write), message=type(exc).__name__)


def to_fillguard_error(
    exc: BaseException,
    classification: Classification,
    *,
    order_id: str | None = None,
    client_order_id: str | None = None,
) -> BrokerError:
    """The :class:`BrokerError` subclass matching ``classification``, with ``exc`` as cause."""
    error_type: type[BrokerError]
    if classification.kind is ErrorClass.PERMANENT:
        error_type = RefusedError
    elif classification.kind is ErrorClass.TRANSIENT:
        error_type = TransientError
    else:
        error_type = OutcomeUnknownError
    if isinstance(exc, BrokerError):
        order_id = order_id or exc.order_id
        client_order_id = client_order_id or exc.client_order_id
    message = classification.message or type(exc).__name__
    if not isinstance(exc, BrokerError):
        message = f"{type(exc).__name__}: {message}"
    error = error_type(
        message,
        order_id=order_id,
        client_order_id=client_order_id,
        status_code=classification.status_code,
        code=classification.code,
        retry_after=classification.retry_after,
    )
    error.__cause__ = exc
    return error


# --------------------------------------------------------------------------- backoff


def backoff_delay(
    attempt: int, *, base: float, maximum: float, jitter: float, rng: random.Random
) -> float:
    """Delay before retry number ``attempt`` (1-based): ``base * 2**(attempt-1)`` capped at
    ``maximum``, plus up to ``jitter`` times that as random spread, never above ``maximum``.
    """
    exponent = max(attempt, 1) - 1
    # 2.0 ** 1024 overflows; long before that the cap applies anyway.
    delay = maximum if exponent >= 64 else min(base * 2.0**exponent, maximum)
    if jitter > 0 and delay > 0:
        delay += rng.uniform(0.0, jitter * delay)
    return min(delay, maximum)


# --------------------------------------------------------------------------- retry loop


@dataclass(slots=True)
class RetryStats:
    """Counters for one caller (one order monitor). Not locked: keep one per thread."""

    calls: int = 0
    retries: int = 0
    errors: int = 0
    waited_seconds: float = 0.0


class ErrorRecoveryManager:
    """Calls broker functions, retrying transient failures with backoff inside a deadline.

    One manager may be shared by threads: the aggregate ``calls`` and ``retries`` are locked.
    Per-order numbers belong in a :class:`RetryStats` passed to :meth:`call`.
    """

    def __init__(
        self,
        config: FillDetectionConfig,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self._logger = logger or _logger
        self._lock = threading.Lock()
        self._calls = 0
        self._retries = 0

    @property
    def calls(self) -> int:
        """Total function calls made through this manager."""
        with self._lock:
            return self._calls

    @property
    def retries(self) -> int:
        """Total retries (calls after a failure) made through this manager."""
        with self._lock:
            return self._retries

    def _is_retryable_error(self, exc: BaseException) -> bool:
        """Whether ``exc`` on a read is worth retrying (TRANSIENT)."""
        return classify_error(exc, now_epoch=self._now_epoch()).kind is ErrorClass.TRANSIENT

    def _calculate_backoff(self, attempt: int) -> float:
        """The jittered delay before retry ``attempt`` (1-based), from the config."""
        return backoff_delay(
            attempt,
            base=self.config.retry_base_delay,
            maximum=self.config.retry_max_delay,
            jitter=self.config.retry_jitter,
            rng=self._rng,
        )

    def _now_epoch(self) -> float:
        # Wall time from the injected clock, so rate-limit resets work in fake time too.
        return self.clock.now().timestamp()

    def execute_with_retry(
        self,
        fn: Callable[..., T],
        *args: Any,
        _deadline: float | None = None,
        _is_write: bool = False,
        _not_found_transient: bool = False,
        _order_id: str | None = None,
        _client_order_id: str | None = None,
        _stats: RetryStats | None = None,
        **kwargs: Any,
    ) -> T:
        """``fn(*args, **kwargs)`` with retries; the ``_``-prefixed options are not passed on.

        See :meth:`call` for the rules.
        """
        return self.call(
            functools.partial(fn, *args, **kwargs),
            deadline=_deadline,
            is_write=_is_write,
            not_found_transient=_not_found_transient,
            order_id=_order_id,
            client_order_id=_client_order_id,
            stats=_stats,
        )

    def call(
        self,
        fn: Callable[[], T],
        *,
        deadline: float | None = None,
        is_write: bool = False,
        not_found_transient: bool = False,
        order_id: str | None = None,
        client_order_id: str | None = None,
        stats: RetryStats | None = None,
        expected_statuses: frozenset[int] = frozenset(),
    ) -> T:
        """Call ``fn`` until it succeeds, a failure is not transient, or retries run out.

        * PERMANENT -> :class:`RefusedError`; UNKNOWN_OUTCOME -> :class:`OutcomeUnknownError`
          at once (a write is never repeated blindly);
        * TRANSIENT -> wait ``max(backoff, retry_after)``, but never past ``deadline`` (a
          ``clock.monotonic()`` value), and try again; after ``max_retries`` retries, or once
          the deadline is reached, :class:`TransientError`.

        The first call is always made, even at or past the deadline. ``stats`` is updated.
        A refusal whose HTTP status is in ``expected_statuses`` is logged at DEBUG, not WARNING.
        """
        stats = stats if stats is not None else RetryStats()
        attempt = 0
        while True:
            attempt += 1
            stats.calls += 1
            with self._lock:
                self._calls += 1
            try:
                return fn()
            except Exception as exc:
                stats.errors += 1
                verdict = classify_error(
                    exc,
                    is_write=is_write,
                    not_found_transient=not_found_transient,
                    now_epoch=self._now_epoch(),
                )
                error = to_fillguard_error(
                    exc, verdict, order_id=order_id, client_order_id=client_order_id
                )
                fields: dict[str, Any] = {
                    "error_type": type(exc).__name__,
                    "message": verdict.message,
                    "kind": verdict.kind.value,
                    "status_code": verdict.status_code,
                    "code": verdict.code,
                    "attempt": attempt,
                    "order_id": order_id,
                    "client_order_id": client_order_id,
                }
                if verdict.kind is not ErrorClass.TRANSIENT:
                    # An answer the caller expects (a 404 that means "flat" or "not placed")
                    # is news, not a warning.
                    expected = verdict.status_code in expected_statuses
                    level = logging.DEBUG if expected else logging.WARNING
                    log_event(self._logger, level, "call_failed", expected=expected, **fields)
                    raise error from exc
                if attempt > self.config.max_retries:
                    log_event(
                        self._logger,
                        logging.ERROR,
                        "retries_exhausted",
                        reason="max_retries",
                        **fields,
                    )
                    raise error from exc
                delay = max(self._calculate_backoff(attempt), verdict.retry_after or 0.0)
                if deadline is not None:
                    left = deadline - self.clock.monotonic()
                    if left <= 0:
                        log_event(
                            self._logger,
                            logging.ERROR,
                            "retries_exhausted",
                            reason="deadline",
                            **fields,
                        )
                        raise error from exc
                    delay = min(delay, left)
                log_event(
                    self._logger,
                    logging.WARNING,
                    "retry",
                    delay=round(delay, 6),
                    retry_after=verdict.retry_after,
                    **fields,
                )
                self.clock.sleep(delay)
                stats.waited_seconds += delay
                if deadline is not None and self.clock.monotonic() >= deadline:
                    log_event(
                        self._logger,
                        logging.ERROR,
                        "retries_exhausted",
                        reason="deadline",
                        **fields,
                    )
                    raise error from exc
                stats.retries += 1
                with self._lock:
                    self._retries += 1
