"""fillguard's own trade_updates client: one connection per account, fanned out to subscribers.

alpaca-py's ``TradingStream`` loses events on every disconnect without telling anyone, never
notices a silent socket and cannot run inside a running event loop (reference notes, section
7). :class:`TradeUpdatesStream` does Alpaca's handshake on ``websockets`` (asyncio), parses
every frame tolerantly (:mod:`fillguard.stream_parse`), reconnects with jittered backoff
(:mod:`fillguard.stream_policy`), closes a socket that stays silent (no frame, no pong) and,
on every (re)connect, tells subscribers the :class:`Gap` in which events may have been missed,
so they can repair it with a REST sweep.

Use it from a blocking program (:meth:`TradeUpdatesStream.start` runs it on a thread the
stream owns; :meth:`~TradeUpdatesStream.stop` joins it) or inside a running loop
(``await stream.run()``, ``await stream.aclose()``). Alpaca allows one trade_updates
connection per account, so share it: :func:`shared_stream` hands every caller with the same
key id and URL the same stream, and the last :meth:`~TradeUpdatesStream.release` stops it.

Callbacks run on the stream's event loop thread, one at a time: keep them short and hand work
over (a queue, ``loop.call_soon_threadsafe``). A callback that raises is logged and counted;
the others still get the event.
"""

from __future__ import annotations

import hmac
import threading
from typing import Any

from fillguard.errors import InvalidInputError
from fillguard.stream_client import AsyncSleep, TradeUpdatesStream
from fillguard.stream_parse import KNOWN_EVENTS, Gap, TradeEvent
from fillguard.stream_policy import StreamConfig, check_stream_url, stream_url_for
from fillguard.stream_state import StreamState, StreamStats, StreamStatus

__all__ = [
    "KNOWN_EVENTS",
    "AsyncSleep",
    "Gap",
    "StreamConfig",
    "StreamState",
    "StreamStats",
    "StreamStatus",
    "TradeEvent",
    "TradeUpdatesStream",
    "shared_refs",
    "shared_stream",
    "stream_url_for",
]


class _Registry:
    """Process-wide: one stream per (key id, stream URL), reference counted."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._streams: dict[tuple[str, str], tuple[TradeUpdatesStream, int]] = {}

    def acquire(
        self, key: tuple[str, str], secret_key: str, options: dict[str, Any]
    ) -> tuple[TradeUpdatesStream, bool]:
        with self._lock:
            entry = self._streams.get(key)
            if entry is not None:
                stream, refs = entry
                if not hmac.compare_digest(stream._secret_key.encode(), secret_key.encode()):
                    raise InvalidInputError(
                        "secret_key",
                        "differs from the one the shared stream for this key id and URL was "
                        "opened with",
                    )
                self._streams[key] = (stream, refs + 1)
                return stream, False
            stream = TradeUpdatesStream(key[0], secret_key, url=key[1], **options)
            stream._on_release = self.release
            self._streams[key] = (stream, 1)
            return stream, True

    def release(self, stream: TradeUpdatesStream) -> None:
        with self._lock:
            key = next((k for k, (s, _) in self._streams.items() if s is stream), None)
            if key is None:
                return
            refs = self._streams[key][1] - 1
            if refs > 0:
                self._streams[key] = (stream, refs)
                return
            del self._streams[key]
            stream._on_release = None
        stream.stop()

    def refs(self, stream: TradeUpdatesStream) -> int:
        with self._lock:
            return next((n for s, n in self._streams.values() if s is stream), 0)


_REGISTRY = _Registry()


def shared_stream(
    key_id: str,
    secret_key: str,
    base_url: str | None = None,
    *,
    url: str | None = None,
    start: bool = True,
    **options: Any,
) -> TradeUpdatesStream:
    """This process's one trade_updates stream for the account (key id and stream URL).

    The first caller creates it (``options`` go to :class:`TradeUpdatesStream`: ``config``,
    ``observer``, ``clock``...; later callers' options are ignored) and, with ``start=True``,
    starts it on its own thread. Every caller gets the same object and calls
    :meth:`TradeUpdatesStream.release` once when done; the last release stops it. Asking for
    the same key id and URL with a different secret is refused (:class:`InvalidInputError`).
    """
    stream_url = check_stream_url(url) if url is not None else stream_url_for(str(base_url))
    stream, created = _REGISTRY.acquire((key_id, stream_url), secret_key, options)
    if created and start:
        stream.start()
    return stream


def shared_refs(stream: TradeUpdatesStream) -> int:
    """How many holders a shared stream has (0: not, or no longer, shared)."""
    return _REGISTRY.refs(stream)
