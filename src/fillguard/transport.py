"""Taking charge of alpaca-py's HTTP transport: per-request timeouts and no hidden retries.

alpaca-py 0.44.0 sends requests without a timeout (a stalled broker blocks forever) and
silently retries 429/504 three times with blocking 3 s sleeps, re-POSTing orders on a 504.
fillguard does its own, deadline-aware retries, so it switches both behaviours off here.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import requests

from fillguard.errors import InvalidInputError

__all__ = ["CONNECT_TIMEOUT_CAP", "own_transport"]

#: Connect timeout ceiling: just over a multiple of 3 s, the TCP SYN retransmission interval.
CONNECT_TIMEOUT_CAP = 3.05

# Marks a session whose ``request`` is already wrapped, so a second call doesn't stack wrappers.
_MARK = "_fillguard_timeout"


def own_transport(client: object, *, request_timeout: float) -> bool:
    """Give every request of ``client`` a (connect, read) timeout and turn off its retries.

    Works on alpaca-py REST clients (anything with a ``requests.Session`` in ``_session``):
    each request gets ``timeout=(min(3.05, request_timeout), request_timeout)`` unless the
    caller passes one, and ``_retry`` is set to 0. Idempotent; calling again updates the
    timeout. Returns False, changing nothing, for a client without a session.
    """
    if (
        isinstance(request_timeout, bool)
        or not isinstance(request_timeout, int | float)
        or not math.isfinite(request_timeout)
        or request_timeout <= 0
    ):
        raise InvalidInputError("request_timeout", f"must be > 0, got {request_timeout!r}")
    session = getattr(client, "_session", None)
    if not isinstance(session, requests.Session):
        return False
    timeout = (min(CONNECT_TIMEOUT_CAP, float(request_timeout)), float(request_timeout))
    existing = getattr(session, _MARK, None)
    if existing is None:
        original: Callable[..., requests.Response] = session.request

        @functools.wraps(original)
        def request_with_timeout(*args: Any, **kwargs: Any) -> requests.Response:
            kwargs.setdefault("timeout", getattr(session, _MARK))
            return original(*args, **kwargs)

        # Instance attribute shadows Session.request for this session only.
        session.request = request_with_timeout  # type: ignore[method-assign]
    setattr(session, _MARK, timeout)
    if hasattr(client, "_retry"):
        # alpaca-py's own loop retries 429/504 with time.sleep(3); ours is deadline-aware.
        setattr(client, "_retry", 0)  # noqa: B010 - client is an untyped object
    return True
