"""The simulator in-process: a ``requests`` transport adapter over :class:`SimApi`.

The real alpaca-py ``TradingClient`` (its requests session, error handling and pydantic models)
talks to the broker core with no sockets, on the broker's clock. With a ``FakeClock`` a whole
order lifecycle, including latency, hangs and read timeouts, runs in fake time: a latency
advances the clock, and a hang longer than the request's read timeout advances the clock by the
timeout and raises ``ReadTimeout``, exactly what a client would see over a socket.

A trickled body (one byte every ``trickle_seconds``) takes ``len(body) * trickle_seconds``; a
per-read timeout never fires on it, since a byte arrives within every read. A timeout object
with a float ``total_seconds`` attribute (fillguard's transport passes a tuple carrying the
request's total deadline) bounds the whole answer: when the delay plus the trickle would
outlast it, the clock moves by ``total_seconds`` and ``ReadTimeout`` is raised.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from fillguard.sim.api import ApiRequest, SimApi

__all__ = ["IN_PROCESS_URL", "SimAdapter", "in_process_client"]

IN_PROCESS_URL = "http://fillguard-sim.invalid"


def _read_timeout(timeout: Any) -> float | None:
    if isinstance(timeout, tuple):
        timeout = timeout[1]
    return float(timeout) if timeout is not None else None


def _total_timeout(timeout: Any) -> float | None:
    total = getattr(timeout, "total_seconds", None)
    if isinstance(total, float | int) and not isinstance(total, bool):
        return float(total)
    return None  # e.g. a timedelta's total_seconds method: not a deadline


class SimAdapter(BaseAdapter):
    """Carries requests to a :class:`SimApi` and its answer back, honouring timeouts."""

    def __init__(self, api: SimApi) -> None:
        super().__init__()
        self.api = api

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Answer ``request`` from the simulator."""
        url = urlsplit(request.url or "")
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        headers = {k.lower(): v for k, v in (request.headers or {}).items()}
        api_request = ApiRequest(
            method=(request.method or "GET").upper(),
            path=url.path,
            query=parse_qs(url.query, keep_blank_values=True),
            body=body,
            headers=headers,
        )
        answer = self.api.handle(api_request)
        clock = self.api.broker.clock
        trickle = len(answer.body) * answer.trickle_seconds if answer.fault is None else 0.0
        # Whichever ends the wait first: the per-read timeout (only a silence longer than it
        # trips it, never a trickle) or the request's total deadline.
        timeouts: list[tuple[float, str]] = []
        read_timeout = _read_timeout(timeout)
        if read_timeout is not None and answer.delay > read_timeout:
            timeouts.append((read_timeout, f"no answer within {read_timeout} s"))
        total = _total_timeout(timeout)
        if total is not None and answer.delay + trickle > total:
            timeouts.append((total, f"answer not complete within {total} s"))
        if timeouts:
            waited, why = min(timeouts)
            clock.sleep(waited)
            raise requests.exceptions.ReadTimeout(f"simulated: {why}", request=request)
        clock.sleep(answer.delay + trickle)
        if answer.fault == "reset":
            raise requests.exceptions.ConnectionError(
                ConnectionResetError(104, "Connection reset by peer (simulated)"), request=request
            )
        response = requests.Response()
        response.status_code = answer.status
        response._content = answer.body
        response.headers = CaseInsensitiveDict(dict(answer.headers))
        response.url = request.url or ""
        response.request = request
        response.reason = ""
        response.encoding = "utf-8"
        return response

    def close(self) -> None:
        """Nothing to release."""


def in_process_client(api: SimApi, *, raw_data: bool = False) -> Any:
    """A real alpaca-py ``TradingClient`` wired to ``api`` in-process."""
    from alpaca.trading.client import TradingClient

    client = TradingClient(
        api.key_id, api.secret_key, raw_data=raw_data, url_override=IN_PROCESS_URL
    )
    client._session.mount(IN_PROCESS_URL, SimAdapter(api))
    return client
