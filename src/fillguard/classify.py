"""Error classification: what a failure tells us about whether a request took effect.

Every failure is sorted by what it says about the broker's state:

* ``TRANSIENT``        surely not applied, or a read that can simply be repeated: connect
                       failures, 429, 5xx and timeouts on reads, a 404 inside the grace window;
* ``PERMANENT``        surely refused: 401, 403, 404, 422 and other 4xx; retrying as is won't help;
* ``UNKNOWN_OUTCOME``  a write that may have been applied: read timeout, connection reset or 5xx
                       after the request was sent. Never retried blindly: the caller must look
                       the order up first, or risk a duplicate order;
* ``UNPARSEABLE``      a 2xx whose body could not be read (invalid JSON, a model that does not
                       fit): the request *was* handled, only the answer is lost;
* ``CLIENT_ERROR``     a failure inside this process (``ValueError``, ``TypeError``,
                       ``AttributeError``, a bad header value or URL): a programming or
                       configuration error that repeating cannot fix.

Transient means transport: only known transport failures, 5xx and 429 are ever retried.
"""

from __future__ import annotations

import json
import math
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any

import pydantic
import requests
import urllib3.exceptions
from alpaca.common.exceptions import APIError

from fillguard.errors import (
    BrokerError,
    ClientSideError,
    InvalidInputError,
    OutcomeUnknownError,
    RefusedError,
    TransientError,
    UnparseableResponseError,
)

__all__ = [
    "Classification",
    "ErrorClass",
    "classify_error",
    "is_duplicate_id_refusal",
    "to_fillguard_error",
]

#: 5xx codes the spec names; any other 5xx is treated the same way.
_SERVER_ERRORS = frozenset({500, 502, 503, 504})
_MESSAGE_LIMIT = 300

# Raised while requests prepares a request, before any byte is sent.
_PRE_SEND = (
    requests.exceptions.InvalidHeader,
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.URLRequired,
)
# Programming errors: a bug or a misconfiguration in this process, never the network.
_PROGRAMMING = (
    ValueError,
    TypeError,
    AttributeError,
    LookupError,
    AssertionError,
    NotImplementedError,
)


class ErrorClass(StrEnum):
    """What a failure says about whether the request took effect."""

    TRANSIENT = "transient"
    PERMANENT = "permanent"
    UNKNOWN_OUTCOME = "unknown_outcome"
    UNPARSEABLE = "unparseable"
    CLIENT_ERROR = "client_error"


@dataclass(frozen=True, slots=True)
class Classification:
    """The verdict on one exception, with what the broker told us."""

    kind: ErrorClass
    status_code: int | None = None
    code: int | None = None
    message: str = ""
    retry_after: float | None = None
    #: For CLIENT_ERROR: the failure came before any byte was sent.
    sent_nothing: bool = False


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
        kinds: tuple[tuple[type[BrokerError], ErrorClass], ...] = (
            (RefusedError, ErrorClass.PERMANENT),
            (TransientError, ErrorClass.TRANSIENT),
            (OutcomeUnknownError, ErrorClass.UNKNOWN_OUTCOME),
            (UnparseableResponseError, ErrorClass.UNPARSEABLE),
        )
        for error_type, kind in kinds:
            if isinstance(exc, error_type):
                return Classification(kind=kind, **fields)
        if isinstance(exc, ClientSideError):
            return Classification(
                kind=ErrorClass.CLIENT_ERROR, sent_nothing=exc.sent_nothing, **fields
            )
        return Classification(kind=_ambiguous(is_write), **fields)
    if isinstance(exc, InvalidInputError):
        # Our own argument check failed: nothing was sent and repeating won't fix it.
        return Classification(kind=ErrorClass.CLIENT_ERROR, message=message, sent_nothing=True)
    if isinstance(exc, APIError):
        return _classify_api_error(
            exc, is_write=is_write, not_found_transient=not_found_transient, now_epoch=now_epoch
        )
    # A 2xx body that is not JSON, or JSON that does not fit the SDK's model: the request was
    # handled. Both are ValueErrors (and requests' JSON error an OSError): check them first.
    if isinstance(
        exc, requests.exceptions.InvalidJSONError | json.JSONDecodeError | pydantic.ValidationError
    ):
        return Classification(kind=ErrorClass.UNPARSEABLE, message=message)
    if isinstance(exc, _PRE_SEND):
        return Classification(kind=ErrorClass.CLIENT_ERROR, message=message, sent_nothing=True)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return Classification(kind=ErrorClass.TRANSIENT, message=message)
    if isinstance(exc, requests.exceptions.ConnectionError | ConnectionRefusedError):
        kind = ErrorClass.TRANSIENT if _is_connect_failure(exc) else _ambiguous(is_write)
        return Classification(kind=kind, message=message)
    if isinstance(
        exc, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError
    ) and not isinstance(exc, urllib3.exceptions.ReadTimeoutError):
        return Classification(kind=ErrorClass.TRANSIENT, message=message)
    if isinstance(exc, requests.exceptions.RequestException | OSError):
        # ReadTimeout, ChunkedEncodingError, resets, RemoteDisconnected, TimeoutError and other
        # OSErrors: the read can be repeated, but a write may have landed.
        return Classification(kind=_ambiguous(is_write), message=message)
    if isinstance(exc, _PROGRAMMING):
        # A bug or misconfiguration here (the network raises OSErrors): never retried.
        return Classification(kind=ErrorClass.CLIENT_ERROR, message=message)
    # Anything unforeseen: repeatable for a read, unknown for a write.
    return Classification(kind=_ambiguous(is_write), message=message)


def is_duplicate_id_refusal(status_code: int | None, message: str) -> bool:
    """Whether a refusal says the ``client_order_id`` is already taken.

    Alpaca answers 422 with code 40010001 and ``client_order_id must be unique``; a variant
    spells ``client order id must be unique``, others say ``duplicate`` or ``already exists``.
    Code 40010001 alone is not enough: Alpaca reuses it for every invalid-input refusal.
    """
    if status_code not in (None, 400, 409, 422):
        return False
    text = " ".join(message.lower().replace("_", " ").replace("-", " ").split())
    names_the_id = "client order id" in text or "clientorderid" in text.replace(" ", "")
    return names_the_id and any(
        word in text for word in ("unique", "duplicate", "already exists", "already in use")
    )


def classify_error(
    exc: BaseException,
    *,
    is_write: bool = False,
    not_found_transient: bool = False,
    now_epoch: float | None = None,
) -> Classification:
    """Sort ``exc`` into an :class:`ErrorClass`; never raises.

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
    if isinstance(exc, BrokerError):
        order_id = order_id or exc.order_id
        client_order_id = client_order_id or exc.client_order_id
    message = classification.message or type(exc).__name__
    if not isinstance(exc, BrokerError):
        message = f"{type(exc).__name__}: {message}"
    error: BrokerError
    if classification.kind is ErrorClass.CLIENT_ERROR:
        error = ClientSideError(
            message,
            order_id=order_id,
            client_order_id=client_order_id,
            sent_nothing=classification.sent_nothing,
        )
    else:
        error_type: type[BrokerError] = {
            ErrorClass.PERMANENT: RefusedError,
            ErrorClass.TRANSIENT: TransientError,
            ErrorClass.UNPARSEABLE: UnparseableResponseError,
        }.get(classification.kind, OutcomeUnknownError)
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
