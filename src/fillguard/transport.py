"""Taking charge of alpaca-py's HTTP transport: one total deadline per request, no hidden retries.

alpaca-py 0.44.0 sends requests without a timeout (a stalled broker blocks forever) and
silently retries 429/504 three times with blocking 3 s sleeps, re-POSTing orders on a 504.
fillguard does its own, deadline-aware retries, so it switches both behaviours off here.

A ``requests`` timeout bounds each socket read, not the request: a server sending one byte
every half second never trips it. So every request also gets a **total** deadline: the
response's reader checks it before every read and shrinks the socket timeout to what is left,
for the status line, the headers and the body alike. The budget is the request timeout, or
less when the caller's deadline is nearer (:func:`request_budget`, set by the retry layer).
Every request is reported to the client's :class:`~fillguard.observer.Observer`.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import http.client
import io
import math
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from fillguard.errors import InvalidInputError
from fillguard.observer import NULL_OBSERVER, Observer, endpoint_of

__all__ = [
    "CONNECT_TIMEOUT_CAP",
    "MIN_REQUEST_SECONDS",
    "RequestTimeout",
    "own_transport",
    "request_budget",
]

#: Connect timeout ceiling: just over a multiple of 3 s, the TCP SYN retransmission interval.
CONNECT_TIMEOUT_CAP = 3.05
#: The smallest total budget a request is sent with (a request that cannot finish is pointless,
#: but the first attempt of a call is always made).
MIN_REQUEST_SECONDS = 0.05

# Marks a session whose ``request`` is already wrapped, so a second call doesn't stack wrappers.
_MARK = "_fillguard_timeout"
_OBSERVER = "_fillguard_observer"

# Seconds the current request may take in total (set by the caller's retry layer).
_budget: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "fillguard_request_budget", default=None
)
# The current request's total deadline on time.monotonic(), read by the response reader.
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "fillguard_request_deadline", default=None
)


@contextlib.contextmanager
def request_budget(seconds: float | None) -> Iterator[None]:
    """Requests made inside the block take at most ``seconds`` each (None: the request timeout)."""
    token = _budget.set(seconds)
    try:
        yield
    finally:
        _budget.reset(token)


class RequestTimeout(tuple[float, float]):
    """A ``(connect, read)`` timeout that also carries the request's ``total_seconds``.

    ``requests`` unpacks it like any tuple; fillguard's own transport (and the simulator's
    in-process adapter) read ``total_seconds``.
    """

    total_seconds: float

    def __new__(cls, connect: float, read: float, total_seconds: float) -> RequestTimeout:
        """Build the timeout."""
        value = super().__new__(cls, (connect, read))
        value.total_seconds = total_seconds
        return value


class _DeadlineReader(io.RawIOBase):
    """A socket reader that never reads past a deadline (each read gets only the time left)."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._raw = sock.makefile("rb", buffering=0)
        self._deadline = deadline
        self._read_timeout = sock.gettimeout()

    def readable(self) -> bool:
        """It is a reader."""
        return True

    def readinto(self, buffer: Any) -> int | None:
        """Read what arrives within the time left, else raise ``TimeoutError``."""
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request's total deadline passed")
        base = self._read_timeout
        self._sock.settimeout(left if base is None else min(base, left))
        return self._raw.readinto(buffer)

    def close(self) -> None:
        """Release the socket file (the connection owns the socket itself)."""
        self._raw.close()
        super().close()


class _DeadlineHTTPResponse(http.client.HTTPResponse):
    """http.client's response, reading through a :class:`_DeadlineReader` when one is due."""

    def __init__(
        self, sock: socket.socket, debuglevel: int = 0, method: str | None = None, url: Any = None
    ) -> None:
        super().__init__(sock, debuglevel, method, url)
        deadline = _deadline.get()
        if deadline is not None:
            self.fp.close()
            self.fp = io.BufferedReader(_DeadlineReader(sock, deadline))


class _DeadlineHTTPConnection(HTTPConnection):
    response_class = _DeadlineHTTPResponse


class _DeadlineHTTPSConnection(HTTPSConnection):
    response_class = _DeadlineHTTPResponse


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _DeadlineHTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _DeadlineHTTPSConnection


class DeadlineAdapter(HTTPAdapter):
    """requests' adapter whose connections enforce each request's total deadline."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """Build the pool manager with deadline-aware connection pools."""
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


def _valid_timeout(request_timeout: object) -> float:
    if (
        isinstance(request_timeout, bool)
        or not isinstance(request_timeout, int | float)
        or not math.isfinite(request_timeout)
        or request_timeout <= 0
    ):
        raise InvalidInputError("request_timeout", f"must be > 0, got {request_timeout!r}")
    return float(request_timeout)


def _mount_deadline_adapters(session: requests.Session) -> None:
    for prefix in ("http://", "https://"):
        current = session.adapters.get(prefix)
        # Replace only requests' stock adapter: a user's own adapter is left alone.
        if current is None or type(current) is HTTPAdapter:
            session.mount(prefix, DeadlineAdapter())


def own_transport(
    client: object, *, request_timeout: float, observer: Observer | None = None
) -> bool:
    """Give every request of ``client`` a total deadline and turn off its hidden retries.

    Works on alpaca-py REST clients (anything with a ``requests.Session`` in ``_session``).
    Each request gets ``timeout=(min(3.05, budget), budget)`` with ``budget`` the request
    timeout or the caller's :func:`request_budget`, whichever is smaller, and the whole request
    (headers and body) must finish within ``budget``. A timeout the caller passes is kept.
    ``_retry`` is set to 0. Idempotent; calling again updates the timeout and observer.
    Returns False, changing nothing, for a client without a session.
    """
    read_timeout = _valid_timeout(request_timeout)
    session = getattr(client, "_session", None)
    if not isinstance(session, requests.Session):
        return False
    existing = getattr(session, _MARK, None)
    if existing is None:
        _mount_deadline_adapters(session)
        original: Callable[..., requests.Response] = session.request

        @functools.wraps(original)
        def request_with_deadline(method: str, url: str, **kwargs: Any) -> requests.Response:
            default_seconds: float = getattr(session, _MARK)
            budget = _budget.get()
            total = default_seconds if budget is None else min(default_seconds, budget)
            total = max(total, MIN_REQUEST_SECONDS)
            if "timeout" not in kwargs:
                kwargs["timeout"] = RequestTimeout(min(CONNECT_TIMEOUT_CAP, total), total, total)
            watcher: Observer = getattr(session, _OBSERVER, NULL_OBSERVER)
            started = time.monotonic()
            token = _deadline.set(started + total)
            code = "transport_error"
            try:
                response = original(method, url, **kwargs)
                code = str(response.status_code)
                return response
            finally:
                _deadline.reset(token)
                with contextlib.suppress(Exception):  # an observer must never break a request
                    watcher.broker_request(
                        endpoint_of(str(method), str(url)), code, time.monotonic() - started
                    )

        # Instance attribute shadows Session.request for this session only.
        session.request = request_with_deadline  # type: ignore[method-assign,assignment]
    setattr(session, _MARK, read_timeout)
    if observer is not None:
        setattr(session, _OBSERVER, observer)
    if hasattr(client, "_retry"):
        # alpaca-py's own loop retries 429/504 with time.sleep(3); ours is deadline-aware.
        setattr(client, "_retry", 0)  # noqa: B010 - client is an untyped object
    return True
