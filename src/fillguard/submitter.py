"""The shell around :class:`~fillguard.submission.Submission`: it makes the requests.

Each POST and look-up is one request through the retry layer with no retries of its own (the
machine decides what happens next), bounded by the submission's deadline. Failures become the
machine's answer values by their classification, so the decision rules live in one place.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fillguard.broker import BrokerClient
from fillguard.classify import is_duplicate_id_refusal
from fillguard.clock import Clock
from fillguard.errors import (
    ClientSideError,
    OutcomeUnknownError,
    RefusedError,
    TransientError,
    UnparseableResponseError,
)
from fillguard.logs import log_event
from fillguard.results import Refusal
from fillguard.retry import ErrorRecoveryManager, RetryStats
from fillguard.snapshot import OrderSnapshot
from fillguard.submission import (
    Accepted,
    Ambiguous,
    Broken,
    Done,
    Found,
    LookUp,
    LookupAnswer,
    LookupFailed,
    NotApplied,
    NotFound,
    NotSent,
    Post,
    PostAnswer,
    Refused,
    Submission,
    SubmitResult,
)
from fillguard.waiting import pause

__all__ = ["run_submission"]

_logger = logging.getLogger("fillguard.submission")
_NOT_FOUND = frozenset({404})


def _refusal(err: RefusedError) -> Refusal:
    return Refusal(err.status_code, err.code, err.message)


def _post(
    machine: Submission,
    broker: BrokerClient,
    recovery: ErrorRecoveryManager,
    attempt: int,
    stats: RetryStats,
) -> PostAnswer:
    coid = machine.intent.client_order_id
    body = machine.intent.wire_body()
    try:
        raw = recovery.call(
            lambda: broker.submit(body),
            deadline=machine.deadline,
            is_write=True,
            client_order_id=coid,
            stats=stats,
            max_retries=0,
            priority="submit",
        )
    except RefusedError as err:
        return Refused(_refusal(err), is_duplicate_id_refusal(err.status_code, err.message))
    except TransientError as err:
        wait = recovery.backoff(attempt)
        if err.retry_after is not None:
            wait = max(wait, min(err.retry_after, recovery.config.max_retry_after_seconds))
        return NotApplied(str(err), wait)
    except (OutcomeUnknownError, UnparseableResponseError) as err:
        return Ambiguous(str(err))
    except ClientSideError as err:
        return NotSent(str(err)) if err.sent_nothing else Broken(str(err))
    except Exception as err:  # the retry layer converts every failure; this is a last guard
        return Broken(f"{type(err).__name__}: {err}")
    return Accepted(OrderSnapshot.from_any(raw))


def _look_up(
    machine: Submission, broker: BrokerClient, recovery: ErrorRecoveryManager, stats: RetryStats
) -> LookupAnswer:
    coid = machine.intent.client_order_id
    try:
        raw = recovery.call(
            lambda: broker.get_order_by_client_id(coid),
            deadline=machine.deadline,
            client_order_id=coid,
            stats=stats,
            expected_statuses=_NOT_FOUND,  # "not placed" is an answer here
            max_retries=0,
        )
    except RefusedError as err:
        if err.status_code == 404:
            return NotFound()
        return LookupFailed(str(err), _refusal(err))
    except Exception as err:
        return LookupFailed(f"{type(err).__name__}: {err}")
    snap = OrderSnapshot.from_any(raw)
    if snap.order_id is None:
        return LookupFailed("the answer carried no order")
    return Found(snap)


def run_submission(
    machine: Submission,
    broker: BrokerClient,
    recovery: ErrorRecoveryManager,
    clock: Clock,
    *,
    stats: RetryStats,
    before_post: Callable[[int], None] | None = None,
    after_post: Callable[[int], None] | None = None,
    logger: logging.Logger | None = None,
) -> SubmitResult:
    """Drive ``machine`` to its end. ``before_post(attempt)`` runs before every POST (it may
    raise to stop the submission), ``after_post(attempt)`` once its answer is in."""
    log = logger or _logger
    coid = machine.intent.client_order_id
    while True:
        action = machine.next_action(clock.monotonic())
        if isinstance(action, Done):
            result = action.result
            log_event(
                log,
                logging.INFO if result.outcome.value == "placed" else logging.WARNING,
                "submission_finished",
                client_order_id=coid,
                outcome=result.outcome,
                order_id=result.order.order_id if result.order else None,
                posts=result.posts,
                lookups=result.lookups,
                reason=result.reason,
            )
            return result
        if isinstance(action, Post):
            if action.attempt > 1:
                log_event(
                    log,
                    logging.WARNING,
                    "resubmitting",
                    client_order_id=coid,
                    attempt=action.attempt,
                    reason="confirmed not placed" if machine.ambiguous else "not applied",
                )
            if before_post is not None:
                before_post(action.attempt)
            answer = _post(machine, broker, recovery, action.attempt, stats)
            if after_post is not None:
                after_post(action.attempt)
            _log_post(log, coid, action.attempt, answer)
            machine.post_answered(answer, clock.monotonic())
        elif isinstance(action, LookUp):
            found = _look_up(machine, broker, recovery, stats)
            fields: dict[str, Any] = {"client_order_id": coid, "lookup": action.number}
            if isinstance(found, Found):
                fields.update(found=True, order_id=found.order.order_id)
            elif isinstance(found, NotFound):
                fields.update(found=False)
            else:
                fields.update(found=None, error=found.reason)
            log_event(log, logging.INFO, "order_lookup", **fields)
            machine.lookup_answered(found, clock.monotonic())
            if isinstance(found, Found) and machine.result is not None and machine.ambiguous:
                log_event(
                    log,
                    logging.INFO,
                    "order_found_after_ambiguous_submit",
                    client_order_id=coid,
                    order_id=found.order.order_id,
                    status=found.order.status,
                )
        else:
            pause(clock, action.until - clock.monotonic())


def _log_post(log: logging.Logger, coid: str, attempt: int, answer: PostAnswer) -> None:
    if isinstance(answer, Accepted):
        log_event(
            log,
            logging.INFO,
            "order_submitted",
            client_order_id=coid,
            order_id=answer.order.order_id,
            status=answer.order.status,
            attempt=attempt,
        )
    elif isinstance(answer, Refused):
        log_event(
            log,
            logging.WARNING if answer.duplicate else logging.ERROR,
            "duplicate_client_order_id" if answer.duplicate else "order_refused",
            client_order_id=coid,
            status_code=answer.refusal.status_code,
            code=answer.refusal.code,
            message=answer.refusal.message,
            attempt=attempt,
        )
    else:
        # NotApplied / NotSent: surely nothing happened; Ambiguous / Broken: it may have.
        surely_not = isinstance(answer, NotApplied | NotSent)
        log_event(
            log,
            logging.WARNING,
            "submit_failed" if surely_not else "submit_outcome_unknown",
            client_order_id=coid,
            kind=type(answer).__name__,
            error=answer.reason,
            attempt=attempt,
        )
