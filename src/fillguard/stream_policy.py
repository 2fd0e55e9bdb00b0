"""The trade_updates client's decisions, without I/O: URLs, settings, reconnect delays.

Reconnects follow alpaca-py 0.44 (``alpaca.common.utils.reconnect_delay``): exponential
backoff with equal jitter from 1 s to 30 s, the attempt count reset only once a connection
delivered real trade_updates data. Two failures wait much longer, because retrying them fast
only makes things worse: an auth failure (the keys are wrong; a tight loop would hammer the
endpoint and flood the log) and a refused upgrade (HTTP 4xx/429 at connect: on Alpaca, another
socket still holds the account's single trade_updates slot until it is reaped).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, fields
from typing import Final, Literal
from urllib.parse import urlsplit, urlunsplit

from fillguard.config import finite_number
from fillguard.errors import InvalidInputError

__all__ = [
    "FAILURE_KINDS",
    "FailureKind",
    "ReconnectPlan",
    "StreamConfig",
    "backoff_delay",
    "check_stream_url",
    "slow_retry_delay",
    "stream_url_for",
]

#: Why a connection ended (or never got to listen): the ``reason`` reported on reconnect.
FailureKind = Literal["closed", "silence", "error", "auth", "refused"]
FAILURE_KINDS: tuple[FailureKind, ...] = ("closed", "silence", "error", "auth", "refused")

_SCHEMES: Final = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}


def stream_url_for(base_url: str) -> str:
    """The trade_updates URL for a REST base URL: http->ws, https->wss, plus ``/stream``.

    ``stream_url_for("https://paper-api.alpaca.markets") ==
    "wss://paper-api.alpaca.markets/stream"``. A ``/v2`` suffix is dropped (the stream lives
    beside the API, not under it); a URL that already ends in ``/stream`` is kept as it is.
    """
    if not isinstance(base_url, str) or not base_url.strip():
        raise InvalidInputError("base_url", f"must be a non-empty URL, got {base_url!r}")
    parts = urlsplit(base_url.strip())
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise InvalidInputError(
            "base_url", f"must be an http(s) or ws(s) URL with a host, got {base_url!r}"
        )
    path = parts.path.rstrip("/")
    if path.endswith("/v2"):
        path = path[: -len("/v2")]
    if not path.endswith("/stream"):
        path += "/stream"
    return urlunsplit((scheme, parts.netloc.lower(), path, "", ""))


def check_stream_url(url: str) -> str:
    """``url`` if it is a ws:// or wss:// URL with a host, else :class:`InvalidInputError`."""
    parts = urlsplit(url.strip()) if isinstance(url, str) else None
    if parts is None or parts.scheme.lower() not in ("ws", "wss") or not parts.netloc:
        raise InvalidInputError("url", f"must be a ws:// or wss:// URL with a host, got {url!r}")
    return url.strip()


@dataclass(frozen=True, kw_only=True, slots=True)
class StreamConfig:
    """Timing of the trade_updates client (seconds)."""

    min_backoff_seconds: float = 1.0
    max_backoff_seconds: float = 30.0
    #: After ``unauthorized``: wait this long (plus up to ``slow_retry_jitter`` of it).
    auth_retry_seconds: float = 60.0
    #: After a refused upgrade (HTTP 4xx/429) or a ``connection limit exceeded`` error.
    refused_retry_seconds: float = 30.0
    slow_retry_jitter: float = 0.2
    #: Socket open but neither a frame nor a pong for this long: close it and reconnect.
    silence_seconds: float = 30.0
    #: How often the client pings (a pong proves the path alive on a quiet account).
    ping_interval_seconds: float = 10.0
    #: TCP connect plus websocket upgrade.
    open_timeout_seconds: float = 10.0
    #: Waiting for the ``authorization`` and ``listening`` replies.
    handshake_timeout_seconds: float = 10.0
    close_timeout_seconds: float = 2.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = finite_number(f.name, getattr(self, f.name))
            if value < 0 or (value == 0 and f.name != "slow_retry_jitter"):
                raise InvalidInputError(f.name, f"must be > 0, got {value!r}")
        if self.max_backoff_seconds < self.min_backoff_seconds:
            raise InvalidInputError("max_backoff_seconds", "must be >= min_backoff_seconds")
        if self.ping_interval_seconds >= self.silence_seconds:
            raise InvalidInputError("ping_interval_seconds", "must be shorter than silence_seconds")
        if self.slow_retry_jitter > 1:
            raise InvalidInputError("slow_retry_jitter", "must be within [0, 1]")


def backoff_delay(
    attempt: int, rng: random.Random, min_seconds: float, max_seconds: float
) -> float:
    """Exponential backoff with equal jitter, as alpaca-py 0.44: in ``[cap/2, cap]`` where
    ``cap = min(max_seconds, min_seconds * 2 ** (attempt - 1))``."""
    exponent = max(0, attempt - 1)
    cap = max_seconds if exponent >= 64 else min(max_seconds, min_seconds * 2.0**exponent)
    return cap / 2 + rng.uniform(0, cap / 2)


def slow_retry_delay(interval_seconds: float, rng: random.Random, jitter: float) -> float:
    """A slow retry: never sooner than ``interval_seconds``, at most ``jitter`` of it later."""
    return interval_seconds * (1.0 + rng.uniform(0, jitter))


@dataclass(slots=True)
class ReconnectPlan:
    """How long to wait before the next connection attempt (a small state machine).

    ``attempts`` counts consecutive connections that ended without delivering trade_updates
    data; it drives the exponential backoff and is reset (as in alpaca-py 0.44) only when the
    connection that just ended delivered data.
    """

    config: StreamConfig
    rng: random.Random
    attempts: int = 0

    def after(self, kind: FailureKind, *, data_received: bool) -> float:
        """The delay in seconds before reconnecting after a failure of ``kind``."""
        if data_received:
            self.attempts = 0
        self.attempts += 1
        config = self.config
        if kind == "auth":
            return slow_retry_delay(config.auth_retry_seconds, self.rng, config.slow_retry_jitter)
        if kind == "refused":
            return slow_retry_delay(
                config.refused_retry_seconds, self.rng, config.slow_retry_jitter
            )
        return backoff_delay(
            self.attempts, self.rng, config.min_backoff_seconds, config.max_backoff_seconds
        )
