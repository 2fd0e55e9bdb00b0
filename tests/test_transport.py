"""own_transport: per-request timeouts and alpaca-py's hidden retries switched off."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import requests
from alpaca.trading.client import TradingClient

from fillguard.errors import InvalidInputError
from fillguard.transport import own_transport


class _Recorder:
    """Stands in for Session.request: records kwargs, returns a canned response."""

    def __init__(self) -> None:
        self.kwargs: list[dict[str, Any]] = []

    def __call__(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        self.kwargs.append(kwargs)
        resp = requests.Response()
        resp.status_code = 200
        return resp


def _client() -> tuple[TradingClient, _Recorder]:
    client = TradingClient("key-id-xxxx", "secret-xxxx", paper=True)
    recorder = _Recorder()
    # Replace the network call beneath our wrapper: no sockets in unit tests.
    client._session.request = recorder  # type: ignore[method-assign,assignment]
    return client, recorder


def test_real_client_gets_timeouts_and_no_retries() -> None:
    """A TradingClient gets (connect, read) timeouts on every request and _retry = 0."""
    client, recorder = _client()
    assert client._retry == 3
    assert own_transport(client, request_timeout=10.0) is True
    assert client._retry == 0
    client._session.request("GET", "http://x/v2/orders")
    assert recorder.kwargs[-1]["timeout"] == (3.05, 10.0)


def test_short_timeouts_cap_connect_at_the_read_timeout() -> None:
    """A request timeout under 3.05 s is used for connect too."""
    client, recorder = _client()
    own_transport(client, request_timeout=1)
    client._session.request("GET", "http://x")
    assert recorder.kwargs[-1]["timeout"] == (1.0, 1.0)


def test_explicit_timeout_is_kept() -> None:
    """A caller's own timeout wins (setdefault)."""
    client, recorder = _client()
    own_transport(client, request_timeout=10)
    client._session.request("GET", "http://x", timeout=99)
    assert recorder.kwargs[-1]["timeout"] == 99


def test_idempotent_and_updatable() -> None:
    """Applying twice does not double-wrap; the latest timeout is used."""
    client, recorder = _client()
    own_transport(client, request_timeout=10)
    first = client._session.request
    assert own_transport(client, request_timeout=5) is True
    assert client._session.request is first
    client._session.request("GET", "http://x")
    assert recorder.kwargs[-1]["timeout"] == (3.05, 5.0)
    assert len(recorder.kwargs) == 1


def test_client_without_session_is_left_alone() -> None:
    """Objects without a requests.Session are untouched and report False."""
    plain = SimpleNamespace(_retry=3)
    assert own_transport(plain, request_timeout=10) is False
    assert plain._retry == 3
    assert own_transport(SimpleNamespace(_session="nope"), request_timeout=10) is False
    assert own_transport(object(), request_timeout=10) is False


def test_session_without_retry_attribute() -> None:
    """A client with a session but no _retry still gets timeouts."""
    session = requests.Session()
    recorder = _Recorder()
    session.request = recorder  # type: ignore[method-assign,assignment]
    client = SimpleNamespace(_session=session)
    assert own_transport(client, request_timeout=2) is True
    assert not hasattr(client, "_retry")
    session.request("GET", "http://x")
    assert recorder.kwargs[-1]["timeout"] == (2.0, 2.0)


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), True, "10"])
def test_bad_timeout_is_refused(bad: Any) -> None:
    """A non-positive or non-numeric timeout raises InvalidInputError."""
    with pytest.raises(InvalidInputError):
        own_transport(SimpleNamespace(), request_timeout=bad)


def test_through_alpaca_client_no_hidden_retry_on_504() -> None:
    """Through alpaca-py's own request path: timeout is passed and a 504 raises at once."""
    client, recorder = _client()

    def gateway_timeout(method: str, url: str, **kwargs: Any) -> requests.Response:
        recorder.kwargs.append(kwargs)
        resp = requests.Response()
        resp.status_code = 504
        resp.url = url
        resp._content = b'{"code":50400000,"message":"gateway timeout"}'
        return resp

    client._session.request = gateway_timeout  # type: ignore[method-assign,assignment]
    own_transport(client, request_timeout=4)
    from alpaca.common.exceptions import APIError

    with pytest.raises(APIError) as info:
        client.get("/orders")
    assert info.value.status_code == 504
    # One request only: alpaca-py's 3 x time.sleep(3) retry loop is off.
    assert len(recorder.kwargs) == 1
    assert recorder.kwargs[0]["timeout"] == (3.05, 4.0)
