"""The trade_updates client itself: :class:`TradeUpdatesStream` (see :mod:`fillguard.stream`).

One connection at a time: connect, authenticate, listen, consume; on any failure wait as
:class:`~fillguard.stream_policy.ReconnectPlan` says and start over. A keepalive task pings and
closes a socket on which neither a frame nor a pong arrived within ``silence_seconds``. Every
time listening (re)starts, subscribers get the :class:`~fillguard.stream_parse.Gap` in which
events may have been missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from fillguard.clock import Clock, SystemClock
from fillguard.errors import InvalidInputError
from fillguard.logs import log_event, register_secret
from fillguard.observer import NULL_OBSERVER, Observer
from fillguard.stream_parse import TRADE_UPDATES, Control, Gap, Skipped, TradeEvent, parse_frame
from fillguard.stream_policy import (
    FailureKind,
    ReconnectPlan,
    StreamConfig,
    check_stream_url,
    stream_url_for,
)
from fillguard.stream_state import StreamState, StreamStats, StreamStatus

__all__ = ["AsyncSleep", "TradeUpdatesStream"]

log = logging.getLogger("fillguard.stream")

AsyncSleep = Callable[[float], Awaitable[None]]
EventCallback = Callable[[TradeEvent], None]
GapCallback = Callable[[Gap], None]
StateCallback = Callable[[StreamStatus], None]
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class _Subscriber:
    on_event: EventCallback
    on_gap: GapCallback | None
    on_state: StateCallback | None


class _Failure(Exception):
    """One connection attempt or session ended: ``kind`` says how."""

    def __init__(self, kind: FailureKind, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


# How observers see a skipped frame (a bounded label set).
_OBSERVED_SKIP = {
    "malformed": "malformed",
    "no_order": "malformed",
    "null": "null",
    "unknown": "unknown",
    "other_stream": "unknown",
}
# Per failure kind: the state while waiting, the counter, the log event and its level.
_AFTER: dict[str, tuple[StreamState, str | None, str, int]] = {
    "auth": (StreamState.AUTH_FAILED, "auth_failures", "stream_auth_failed", logging.ERROR),
    "refused": (StreamState.REFUSED, "refused", "stream_refused", logging.WARNING),
    "silence": (StreamState.WAITING, "silences", "stream_reconnect", logging.WARNING),
    "closed": (StreamState.WAITING, None, "stream_reconnect", logging.WARNING),
    "error": (StreamState.WAITING, None, "stream_reconnect", logging.WARNING),
}
_LOUD_SKIPS_PER_KIND = 5  # the first few skipped frames of a kind are warnings, then debug


class TradeUpdatesStream:
    """One trade_updates connection, kept up, fanned out to every subscriber."""

    def __init__(
        self,
        key_id: str,
        secret_key: str,
        base_url: str | None = None,
        *,
        url: str | None = None,
        config: StreamConfig | None = None,
        observer: Observer = NULL_OBSERVER,
        clock: Clock | None = None,
        sleep: AsyncSleep | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not isinstance(key_id, str) or not key_id:
            raise InvalidInputError("key_id", "must be a non-empty string")
        if not isinstance(secret_key, str) or not secret_key:
            raise InvalidInputError("secret_key", "must be a non-empty string")
        if url is None and base_url is None:
            raise InvalidInputError("base_url", "give the REST base URL, or url (the stream URL)")
        register_secret(secret_key)
        register_secret(key_id)
        self.key_id = key_id
        self._secret_key = secret_key
        self.url = check_stream_url(url) if url is not None else stream_url_for(str(base_url))
        self.config = config or StreamConfig()
        self.observer = observer
        self.clock: Clock = clock or SystemClock()
        self._sleep: AsyncSleep = sleep or asyncio.sleep
        self._plan = ReconnectPlan(self.config, rng or random.Random())
        self._lock = threading.Lock()
        self._subscribers: tuple[_Subscriber, ...] = ()
        self._counters = StreamStats()
        self._status = StreamStatus(StreamState.IDLE)
        self._listening = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._stop_requested = False
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._ran = False
        # Set by the shared-stream registry while it holds this stream.
        self._on_release: Callable[[TradeUpdatesStream], None] | None = None
        # Per session: last frame or pong (monotonic), whether trade_updates data arrived.
        self._last_activity = 0.0
        self._last_frame_mono: float | None = None
        self._last_event_time: datetime | None = None  # the broker's timestamp of the last event
        self._data_received = False
        self._gap_since: datetime | None = None
        self._ever_listened = False

    def __repr__(self) -> str:
        return f"TradeUpdatesStream({self.url!r}, state={self._status.state.value})"

    # ------------------------------------------------------------------ subscribers and state
    def subscribe(
        self,
        on_event: EventCallback,
        on_gap: GapCallback | None = None,
        on_state: StateCallback | None = None,
    ) -> Callable[[], None]:
        """Deliver every event (and gap, and state change) to these callbacks; returns the
        function that unsubscribes them (idempotent)."""
        subscriber = _Subscriber(on_event, on_gap, on_state)
        with self._lock:
            self._subscribers = (*self._subscribers, subscriber)

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = tuple(s for s in self._subscribers if s is not subscriber)

        return unsubscribe

    @property
    def status(self) -> StreamStatus:
        """The current state and the failure that led to it."""
        return self._status

    @property
    def listening(self) -> bool:
        """Whether events are being delivered now."""
        return self._status.state is StreamState.LISTENING

    def wait_listening(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds (real time) until the stream listens."""
        return self._listening.wait(max(0.0, timeout))

    def stats(self) -> StreamStats:
        """A snapshot of the counters."""
        with self._lock:
            return self._counters.copy()

    def _count(self, name: str) -> None:
        # Counters change on the loop thread only; the lock guards the dicts for stats().
        setattr(self._counters, name, getattr(self._counters, name) + 1)

    def _set_status(self, status: StreamStatus) -> None:
        self._status = status
        if status.state is StreamState.LISTENING:
            self._listening.set()
        else:
            self._listening.clear()
        for sub in self._subscribers:
            if sub.on_state is not None:
                self._call(sub.on_state, status, "on_state")

    def _call(self, callback: Callable[[Any], None], value: Any, what: str) -> None:
        try:
            callback(value)
        except Exception:
            self._count("callback_errors")
            log.exception("stream subscriber %s raised; other subscribers still get it", what)

    # ------------------------------------------------------------------ running
    def start(self) -> None:
        """Run the stream on a background thread owned by the stream (for blocking users)."""
        with self._lock:
            if self._thread is not None or self._ran:
                raise RuntimeError("this stream was already started")
            self._thread = threading.Thread(
                target=self._thread_main, name="fillguard-stream", daemon=True
            )
        self._thread.start()

    def _thread_main(self) -> None:
        # A fresh loop on this thread: never asyncio.run inside someone else's running loop.
        try:
            asyncio.run(self.run())
        except Exception:  # a bug: say so, the thread ends either way
            log.exception("stream thread failed")
            self._done.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the stream (thread-safe, idempotent); joins the thread :meth:`start` made."""
        with self._lock:
            self._stop_requested = True
            loop, stop_event, thread = self._loop, self._stop_event, self._thread
        if loop is not None and stop_event is not None:
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                loop.call_soon_threadsafe(stop_event.set)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("stream thread did not stop within %s s", timeout)

    async def aclose(self) -> None:
        """Stop the stream from inside a running loop and wait until :meth:`run` returned."""
        self.stop(timeout=0)
        while self._ran and not self._done.is_set():
            await asyncio.sleep(0.01)

    def release(self) -> None:
        """Give back a stream from ``shared_stream`` (the last release stops it); for a
        stream made directly this is :meth:`stop`."""
        on_release = self._on_release
        if on_release is not None:
            on_release(self)
        else:
            self.stop()

    async def run(self) -> None:
        """Keep the connection up and deliver events until :meth:`stop` (or cancellation)."""
        with self._lock:
            if self._ran:
                raise RuntimeError("this stream already ran; make a new one")
            self._ran = True
            self._loop = asyncio.get_running_loop()
            self._stop_event = asyncio.Event()
            if self._stop_requested:
                self._stop_event.set()
        stop_event = self._stop_event
        self._gap_since = self.clock.now()
        log_event(log, logging.INFO, "stream_started", url=self.url)
        try:
            while not stop_event.is_set():
                try:
                    await self._session()
                except _Failure as failure:
                    if not stop_event.is_set():
                        await self._after_failure(failure)
        finally:
            self._set_status(StreamStatus(StreamState.STOPPED))
            log_event(log, logging.INFO, "stream_stopped", url=self.url)
            self._done.set()

    async def _after_failure(self, failure: _Failure) -> None:
        delay = self._plan.after(failure.kind, data_received=self._data_received)
        self._count("reconnects")
        self.observer.stream_reconnect(failure.kind)
        # An auth failure is an operator's problem (wrong keys): ERROR. The rest heal alone.
        state, counter, event, level = _AFTER[failure.kind]
        if counter is not None:
            self._count(counter)
        log_event(
            log,
            level,
            event,
            url=self.url,
            reason=failure.kind,
            detail=failure.detail,
            retry_in_seconds=round(delay, 3),
        )
        self._set_status(StreamStatus(state, failure.kind, failure.detail, delay))
        await self._pause(delay)

    async def _pause(self, seconds: float) -> None:
        """Sleep through the injected sleep; :meth:`stop` cuts it short."""
        stop_event = self._stop_event
        assert stop_event is not None
        if seconds <= 0 or stop_event.is_set():
            return
        sleeper = asyncio.ensure_future(self._sleep(seconds))
        stopper = asyncio.ensure_future(stop_event.wait())
        try:
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, stopper):
                task.cancel()
            await asyncio.gather(sleeper, stopper, return_exceptions=True)

    # ------------------------------------------------------------------ one connection
    async def _session(self) -> None:
        """Connect, authenticate, listen and consume until the connection ends (raises
        :class:`_Failure` saying how)."""
        self._data_received = False
        self._set_status(StreamStatus(StreamState.CONNECTING))
        self._count("connect_attempts")
        config = self.config
        try:
            ws = await self._or_stop(
                connect(
                    self.url,
                    open_timeout=config.open_timeout_seconds,
                    close_timeout=config.close_timeout_seconds,
                    ping_interval=None,  # our own keepalive: pings plus the silence watchdog
                    ping_timeout=None,
                    max_queue=256,
                    user_agent_header="fillguard",
                )
            )
        except InvalidStatus as exc:
            code = exc.response.status_code
            kind: FailureKind = "refused" if 400 <= code < 500 else "error"
            raise _Failure(kind, f"upgrade refused with HTTP {code}") from None
        except (OSError, TimeoutError, WebSocketException) as exc:
            raise _Failure("error", f"connect failed: {exc!r}") from None
        if ws is None:
            return  # stopped
        silent = False
        try:
            self._last_activity = self.clock.monotonic()
            self._last_frame_mono = None
            self._last_event_time = None
            try:
                handshake = asyncio.wait_for(self._handshake(ws), config.handshake_timeout_seconds)
                if not await self._or_stop(handshake):
                    return  # stopped
            except TimeoutError:
                raise _Failure("error", "no handshake reply in time") from None
            except ConnectionClosed as exc:
                raise _Failure("error", f"closed during handshake: {exc}") from None
            try:
                await self._consume(ws)
            except _Failure as exc:
                silent = exc.kind == "silence"
                raise
        finally:
            await self._close(ws, abort=silent)
            self._leave_listening()

    async def _or_stop(self, awaitable: Awaitable[_T]) -> _T | None:
        """Await ``awaitable`` unless :meth:`stop` comes first (then cancel it: None)."""
        stop_event = self._stop_event
        assert stop_event is not None
        task = asyncio.ensure_future(awaitable)
        stopper = asyncio.ensure_future(stop_event.wait())
        try:
            await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            if not task.done():
                task.cancel()
            await asyncio.gather(stopper, task, return_exceptions=True)
        if task.cancelled():
            return None
        return task.result()

    async def _close(self, ws: ClientConnection, *, abort: bool) -> None:
        # A silent peer will not answer a close frame: drop the socket instead of waiting.
        if abort:
            ws.transport.abort()
            return
        with contextlib.suppress(Exception):
            await ws.close()

    def _leave_listening(self) -> None:
        if self._status.state is not StreamState.LISTENING:
            return
        self.observer.stream_connected(False)
        # The next gap starts at the last frame this connection received.
        last = self._last_frame_mono
        now_mono = self.clock.monotonic()
        back = 0.0 if last is None else max(0.0, now_mono - last)
        since = self.clock.now() - timedelta(seconds=back)
        # An event the broker sent just after the last one we got was still in flight when the
        # connection dropped: its timestamp is before our receipt of the last frame.
        last_event = self._last_event_time
        self._gap_since = last_event if last_event is not None and last_event < since else since

    async def _handshake(self, ws: ClientConnection) -> bool:
        auth = {
            "action": "authenticate",
            "data": {"key_id": self.key_id, "secret_key": self._secret_key},
        }
        await ws.send(json.dumps(auth))
        reply = await self._next_control(ws)
        self._raise_refusal(reply)
        if reply.stream != "authorization":
            raise _Failure("error", f"expected an authorization reply, got {reply.stream!r}")
        if reply.data.get("status") != "authorized":
            raise _Failure("auth", f"not authorized: {dict(reply.data)}")
        await ws.send(json.dumps({"action": "listen", "data": {"streams": [TRADE_UPDATES]}}))
        while True:
            frame = await ws.recv()
            parsed = parse_frame(frame, self.clock.monotonic())
            self._touch_frame()
            if isinstance(parsed, Control):
                self._count("control_frames")
                if parsed.stream == "listening":
                    streams = parsed.data.get("streams")
                    if not isinstance(streams, list) or TRADE_UPDATES not in streams:
                        raise _Failure("error", f"listen not acknowledged: {dict(parsed.data)}")
                    self._now_listening()
                    return True
                self._raise_refusal(parsed)
                if parsed.stream == "authorization":  # unauthorized for listen
                    raise _Failure("auth", f"listen refused: {dict(parsed.data)}")
                continue
            # An event ahead of the ack: the server listens already.
            self._now_listening()
            self._deliver(parsed)
            return True

    async def _next_control(self, ws: ClientConnection) -> Control:
        while True:
            frame = await ws.recv()
            parsed = parse_frame(frame, self.clock.monotonic())
            self._touch_frame()
            if isinstance(parsed, Control):
                self._count("control_frames")
                return parsed
            self._deliver(parsed)  # counted and skipped (nothing is subscribed yet)

    def _raise_refusal(self, reply: Control) -> None:
        if reply.stream == "error":
            text = str(reply.data.get("error") or reply.data.get("msg") or dict(reply.data))
            if "limit" in text.lower() or reply.data.get("code") in (406, 429):
                raise _Failure("refused", f"server: {text}")
            raise _Failure("error", f"server error: {text}")

    def _now_listening(self) -> None:
        now = self.clock.now()
        since = self._gap_since or now
        gap = Gap(since_wall=since, until_wall=now, reconnect=self._ever_listened)
        self._ever_listened = True
        self._count("connections")
        self._count("gaps")
        self._set_status(StreamStatus(StreamState.LISTENING))
        self.observer.stream_connected(True)
        log_event(
            log,
            logging.INFO,
            "stream_listening",
            url=self.url,
            gap_seconds=round(gap.seconds, 3),
            reconnect=gap.reconnect,
        )
        for sub in self._subscribers:
            if sub.on_gap is not None:
                self._call(sub.on_gap, gap, "on_gap")

    def _touch_frame(self) -> None:
        now = self.clock.monotonic()
        self._last_activity = now
        self._last_frame_mono = now
        self._counters.frames += 1

    def _touch_pong(self, _: Any = None) -> None:
        self._last_activity = self.clock.monotonic()

    async def _consume(self, ws: ClientConnection) -> None:
        stop_event = self._stop_event
        assert stop_event is not None
        tasks = {
            asyncio.ensure_future(self._receive(ws)),
            asyncio.ensure_future(self._watch(ws)),
            asyncio.ensure_future(stop_event.wait()),
        }
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            exc = task.exception()
            if exc is not None:
                raise exc

    async def _receive(self, ws: ClientConnection) -> None:
        try:
            async for frame in ws:
                self._touch_frame()
                self._deliver(parse_frame(frame, self._last_activity))
        except ConnectionClosed as exc:
            raise _Failure("closed", f"connection closed: {exc}") from None
        raise _Failure("closed", "connection closed by the server")

    async def _watch(self, ws: ClientConnection) -> None:
        """Ping every ``ping_interval_seconds``; fail with ``silence`` once neither a frame nor
        a pong arrived for ``silence_seconds``."""
        config = self.config
        clock = self.clock
        next_ping = clock.monotonic() + config.ping_interval_seconds
        while True:
            now = clock.monotonic()
            quiet = now - self._last_activity
            if quiet >= config.silence_seconds:
                raise _Failure("silence", f"no frame or pong for {quiet:.1f} s")
            if now >= next_ping:
                try:
                    waiter = await ws.ping()
                except ConnectionClosed as exc:
                    raise _Failure("closed", f"connection closed: {exc}") from None
                asyncio.ensure_future(waiter).add_done_callback(self._on_pong)
                next_ping = now + config.ping_interval_seconds
            wake = min(next_ping, self._last_activity + config.silence_seconds)
            await self._sleep(max(0.001, wake - now))

    def _on_pong(self, waiter: asyncio.Future[Any]) -> None:
        if not waiter.cancelled() and waiter.exception() is None:
            self._touch_pong()

    # ------------------------------------------------------------------ delivery
    def _deliver(self, parsed: TradeEvent | Control | Skipped) -> None:
        if isinstance(parsed, TradeEvent):
            self._data_received = True
            if parsed.timestamp is not None:
                self._last_event_time = parsed.timestamp
            with self._lock:
                c = self._counters
                c.events += 1
                c.events_by_type[parsed.event] = c.events_by_type.get(parsed.event, 0) + 1
                subscribers = self._subscribers
            self.observer.stream_event(parsed.event)
            for sub in subscribers:
                self._call(sub.on_event, parsed, "on_event")
        elif isinstance(parsed, Skipped):
            with self._lock:
                seen = self._counters.skipped_by_kind.get(parsed.kind, 0)
                self._counters.skipped_by_kind[parsed.kind] = seen + 1
            self.observer.stream_event(_OBSERVED_SKIP[parsed.kind])
            level = logging.WARNING if seen < _LOUD_SKIPS_PER_KIND else logging.DEBUG
            log_event(log, level, "stream_frame_skipped", kind=parsed.kind, reason=parsed.reason)
        else:
            self._count("control_frames")
            if parsed.stream == "error":
                log_event(log, logging.WARNING, "stream_server_error", data=dict(parsed.data))
