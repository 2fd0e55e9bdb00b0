"""Builders for the exceptions alpaca-py and requests raise, made the way the libraries make them."""

from __future__ import annotations

import http.client
import json

import requests
import urllib3.exceptions
from alpaca.common.exceptions import APIError

DEFAULT_BODIES = {
    401: {"code": 40110000, "message": "request is not authorized"},
    403: {"code": 40310000, "message": "insufficient buying power"},
    404: {"code": 40410000, "message": "order not found"},
    422: {"code": 42210000, "message": 'order is already in "filled" state'},
    429: {"code": 42910000, "message": "rate limit exceeded"},
    500: {"code": 50010000, "message": "internal server error"},
}


def make_response(
    status: int, body: str | bytes | None = None, headers: dict[str, str] | None = None
) -> requests.Response:
    """A ``requests.Response`` with the given status, body and headers."""
    resp = requests.Response()
    resp.status_code = status
    if body is None:
        body = json.dumps(DEFAULT_BODIES.get(status, {"code": status * 100_000, "message": "x"}))
    resp._content = body.encode() if isinstance(body, str) else body
    resp.url = "https://paper-api.alpaca.markets/v2/orders"
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    return resp


def api_error(
    status: int, body: str | bytes | None = None, headers: dict[str, str] | None = None
) -> APIError:
    """An ``APIError`` exactly as alpaca-py's RESTClient raises it."""
    resp = make_response(status, body, headers)
    return APIError(resp.text, requests.HTTPError(response=resp))  # type: ignore[no-untyped-call]


def bare_api_error(body: str) -> APIError:
    """An ``APIError`` with no HTTP error attached (status_code is None)."""
    return APIError(body)  # type: ignore[no-untyped-call]


def rate_limited(reset_epoch: float | None = None, retry_after: str | None = None) -> APIError:
    """A 429 with ``X-Ratelimit-Reset`` and/or ``Retry-After`` headers."""
    headers = {"X-Ratelimit-Limit": "200", "X-Ratelimit-Remaining": "0"}
    if reset_epoch is not None:
        headers["X-Ratelimit-Reset"] = str(int(reset_epoch))
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return api_error(429, headers=headers)


def connection_refused() -> requests.exceptions.ConnectionError:
    """requests' error for a refused connect: ConnectionError(MaxRetryError(NewConnectionError))."""
    reason = urllib3.exceptions.NewConnectionError(
        None,  # type: ignore[arg-type]
        "Failed to establish a new connection: [Errno 111] Connection refused",
    )
    inner = urllib3.exceptions.MaxRetryError(None, "/v2/orders", reason)  # type: ignore[arg-type]
    return requests.exceptions.ConnectionError(inner)


def connection_reset() -> requests.exceptions.ConnectionError:
    """requests' error for a connection dropped mid-request (RemoteDisconnected)."""
    cause = http.client.RemoteDisconnected("Remote end closed connection without response")
    inner = urllib3.exceptions.ProtocolError("Connection aborted.", cause)
    return requests.exceptions.ConnectionError(inner)


def read_timeout() -> requests.exceptions.ReadTimeout:
    """requests' error when the response did not arrive within the read timeout."""
    return requests.exceptions.ReadTimeout("HTTPSConnectionPool: Read timed out. (read timeout=10)")


def connect_timeout() -> requests.exceptions.ConnectTimeout:
    """requests' error when the TCP connect did not complete in time."""
    return requests.exceptions.ConnectTimeout(
        "Connection to host timed out. (connect timeout=3.05)"
    )
