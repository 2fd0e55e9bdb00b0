"""Exponential backoff and the retry loop (:class:`ErrorRecoveryManager`).

What a failure means is decided in :mod:`fillguard.classify`; this module only acts on it.
Only TRANSIENT failures (known transport failures, 5xx and 429 on reads, a 404 inside the grace
window) are retried; everything else is raised at once as the matching
:class:`~fillguard.errors.BrokerError`. Waiting happens only through the injected
:class:`~fillguard.clock.Clock`, so tests run in fake time, never past the caller's deadline, and
a broker's ``Retry-After`` is honoured only up to ``max_retry_after_seconds``. Each attempt is
given the time left as its total request budget (:func:`fillguard.transport.request_budget`).
"""

from __future__ import annotations

import functools
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fillguard.classify import (
    Classification,
    ErrorClass,
    classify_error,
    to_fillguard_error,
)
from fillguard.clock import Clock, SystemClock
from fillguard.config import FillDetectionConfig
from fillguard.logs import log_event
from fillguard.observer import NULL_OBSERVER, Observer
from fillguard.transport import MIN_REQUEST_SECONDS, request_budget

__all__ = [
    "Classification",
    "ErrorClass",
    "ErrorRecoveryManager",
    "RetryStats",
    "backoff_delay",
    "classify_error",
    "retry_reason",
    "to_fillguard_error",
]

T = TypeVar("T")

_logger = logging.getLogger("fillguard.retry")


def retry_reason(verdict: Classification) -> str:
    """The bounded label of why a request is retried: ``429``, ``5xx``, ``not_found``, ``timeout``
    or ``transport``."""
    status = verdict.status_code
    if status == 429:
        return "429"
    if status is not None and 500 <= status <= 599:
        return "5xx"
    if status == 404:
        return "not_found"
    if "timeout" in verdict.message.lower() or "timed out" in verdict.message.lower():
        return "timeout"
    return "transport"


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
        observer: Observer | None = None,
    ) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self._logger = logger or _logger
        self.observer: Observer = observer or NULL_OBSERVER
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
        """Whether ``exc`` on a read is worth retrying (TRANSIENT: transport, 5xx, 429)."""
        return classify_error(exc, now_epoch=self._now_epoch()).kind is ErrorClass.TRANSIENT

    def backoff(self, attempt: int) -> float:
        """The jittered delay before retry ``attempt`` (1-based), from the config."""
        return self._calculate_backoff(attempt)

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
        max_retries: int | None = None,
    ) -> T:
        """Call ``fn`` until it succeeds, a failure is not transient, or retries run out.

        * TRANSIENT -> wait ``max(backoff, min(retry_after, max_retry_after_seconds))``, never
          past ``deadline`` (a ``clock.monotonic()`` value), and try again; after ``max_retries``
          retries (the config's unless given), or when the wait would reach the deadline,
          :class:`~fillguard.errors.TransientError`;
        * anything else at once: PERMANENT -> ``RefusedError``, UNKNOWN_OUTCOME ->
          ``OutcomeUnknownError`` (a write is never repeated blindly), UNPARSEABLE ->
          ``UnparseableResponseError``, CLIENT_ERROR -> ``ClientSideError``.

        Each attempt may take at most the time left before ``deadline`` (and never more than
        the request timeout). The first call is always made, even at or past the deadline,
        with a minimal budget. ``stats`` is updated. A refusal whose HTTP status is in
        ``expected_statuses`` is logged at DEBUG, not WARNING.
        """
        stats = stats if stats is not None else RetryStats()
        limit = self.config.max_retries if max_retries is None else max_retries
        attempt = 0
        while True:
            attempt += 1
            stats.calls += 1
            with self._lock:
                self._calls += 1
            budget = None
            if deadline is not None:
                budget = max(deadline - self.clock.monotonic(), MIN_REQUEST_SECONDS)
            try:
                with request_budget(budget):
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
                if attempt > limit:
                    log_event(
                        self._logger,
                        logging.ERROR,
                        "retries_exhausted",
                        reason="max_retries",
                        **fields,
                    )
                    raise error from exc
                hint = verdict.retry_after
                if hint is not None:
                    hint = min(hint, self.config.max_retry_after_seconds)
                delay = max(self._calculate_backoff(attempt), hint or 0.0)
                if deadline is not None and self.clock.monotonic() + delay >= deadline:
                    # Waiting would use up the caller's budget: give up now, not at the deadline.
                    log_event(
                        self._logger,
                        logging.ERROR,
                        "retries_exhausted",
                        reason="deadline",
                        **fields,
                    )
                    raise error from exc
                log_event(
                    self._logger,
                    logging.WARNING,
                    "retry",
                    delay=round(delay, 6),
                    retry_after=verdict.retry_after,
                    **fields,
                )
                self.observer.retry(retry_reason(verdict))
                self.clock.sleep(delay)
                stats.waited_seconds += delay
                stats.retries += 1
                with self._lock:
                    self._retries += 1
