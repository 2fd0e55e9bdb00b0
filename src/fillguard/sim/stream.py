"""The trade_updates websocket (``/stream``) with Alpaca's handshake and stream faults.

Protocol, as the paper endpoint plays it (see the reference notes, section 7): the server sends
nothing first; the client authenticates (``{"action":"authenticate","data":{"key_id",
"secret_key"}}``, or the older ``{"action":"auth","key":..,"secret":..}``) and gets an
``authorization`` reply (``unauthorized`` closes the connection); then
``{"action":"listen","data":{"streams":["trade_updates"]}}`` gets a ``listening`` ack, and from
then on every new trade event arrives as ``{"stream":"trade_updates","data":{...}}``. Every
frame the server sends is JSON in a binary frame. Events from before the listen are not
replayed, as on Alpaca.

Stream faults come from the broker's fault profile, each drawn once per event from its own
seeded stream (``stream_drop``, ``stream_duplicate``, ``stream_delay``, ``stream_disconnect``,
``stream_gap``, ``stream_silence``): an event may be dropped, sent twice, sent late (without
holding back later events, so the order can change), and the connection may be cut abruptly
right after an event. A gap cuts the connection and keeps the account's slot held for
``stream_gap_seconds`` (upgrades get HTTP 429; every event in it is lost); a silence keeps the
socket open but sends and reads nothing (pings go unanswered) for ``stream_silence_seconds``.

One connection per account (``StreamHub.single_connection``, on by default). Alpaca allows one
trade_updates connection per account (an Alpaca engineer in alpacahq/alpaca-py#740). While a
socket holds the slot, even a stale half-open one, a new connection is refused at the
websocket upgrade with HTTP 429 ("The server returned status code '429' when status code '101'
was expected": QuantConnect/Lean.Brokerages.Alpaca#37, alpacahq/alpaca-trade-api-csharp#518).
The simulator accepts one key pair, so any authenticated open connection holds the slot. Two
connections that both upgrade before either authenticated are told apart at the second
``authorization``: it gets Alpaca's documented data-stream error for the same case (``406
connection limit exceeded``, docs "Real-time stock pricing data", control messages; quoted in
Lean.Brokerages.Alpaca PR #39) as ``{"stream":"error","data":{"code":406,"error":"connection
limit exceeded"}}`` and the connection is closed (1008).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import json
import logging
import socket
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.responses import Response
from starlette.websockets import WebSocket

from fillguard.sim.core import TradeEventRecord

if TYPE_CHECKING:
    from fillguard.sim.api import SimApi

__all__ = ["TRANSPORT_SCOPE_KEY", "ConnectionStats", "StreamHub", "reset_connection"]

log = logging.getLogger("fillguard.sim.stream")

TRADE_UPDATES = "trade_updates"

# Where the ASGI scope carries the connection's asyncio transport (set by the server's protocols).
TRANSPORT_SCOPE_KEY = "fillguard.transport"


def reset_connection(transport: Any) -> None:
    """Drop the connection with a TCP reset and no bytes written (``SO_LINGER`` on, 0 s)."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def _frame(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def _authorization(status: str, action: str) -> bytes:
    return _frame({"stream": "authorization", "data": {"status": status, "action": action}})


_LIMIT_EXCEEDED = _frame(
    {"stream": "error", "data": {"code": 406, "error": "connection limit exceeded"}}
)


@dataclass
class ConnectionStats:
    """What one websocket connection did (for tests and the benchmark)."""

    id: int
    authenticated: bool = False
    listening: bool = False
    events: int = 0  # trade events handed to this connection while listening
    sent: int = 0  # trade_updates frames written (a duplicate counts twice)
    dropped: int = 0
    duplicated: int = 0
    delayed: int = 0
    disconnected: bool = False  # cut by the stream_disconnect fault
    closed: bool = False
    event_seqs: list[int] = field(default_factory=list)  # seq of each event sent, in send order
    silenced: int = 0  # events lost to a silence on this connection
    gapped: bool = False  # cut by the stream_gap fault
    limit_exceeded: bool = False  # refused at authorization: another connection holds the slot


class _Connection:
    def __init__(self, websocket: WebSocket, stats: ConnectionStats) -> None:
        self.websocket = websocket
        self.stats = stats
        self.queue: asyncio.Queue[TradeEventRecord] = asyncio.Queue()
        self.unsubscribe: Any = None
        self.pump: asyncio.Task[None] | None = None
        self.later: set[asyncio.Task[None]] = set()
        self.dead = False
        self.silent_until = 0.0  # loop time until which nothing is sent or read


class StreamHub:
    """Serves ``/stream`` for one :class:`SimApi` (its broker and key pair)."""

    def __init__(self, api: SimApi) -> None:
        self.api = api
        self.broker = api.broker
        self.stats: list[ConnectionStats] = []
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connections: set[_Connection] = set()
        #: One trade_updates connection per account, as on Alpaca (see the module docs).
        self.single_connection = True
        self.upgrades = 0  # websocket upgrade requests, refused ones included
        self.refused_upgrades = 0  # answered HTTP 429: the slot was held
        self._held_until = 0.0  # loop time: the stream_gap fault holds the slot until then
        #: A connection that has not authenticated this long after opening is closed.
        self.auth_timeout_seconds = 10.0
        self.auth_timeouts = 0

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The event loop the websocket connections run on."""
        self._loop = loop

    def listening(self) -> int:
        """How many open connections currently listen to trade_updates."""
        return sum(1 for s in self.stats if s.listening and not s.closed)

    def close(self) -> None:
        """Stop feeding every connection (server shutdown)."""
        for conn in list(self._connections):
            self._stop_listening(conn)

    def slot_held(self) -> bool:
        """Whether the account's one stream slot is taken (a live authenticated connection,
        or a gap's stale slot)."""
        return self._slot_holder(None) or self._now() < self._held_until

    def _slot_holder(self, other_than: _Connection | None) -> bool:
        return any(
            c is not other_than and c.stats.authenticated and not c.dead for c in self._connections
        )

    def _now(self) -> float:
        return self._loop.time() if self._loop is not None else 0.0

    def reset(self) -> None:
        """Test helper: free a gap's held slot and end every silence now (thread-safe)."""
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # loop closed
            asyncio.run_coroutine_threadsafe(self._reset(), loop).result(5)

    async def _reset(self) -> None:
        self._held_until = 0.0
        for conn in list(self._connections):
            if conn.silent_until:
                self._end_silence(conn)

    def inject(self, *frames: str | bytes, timeout: float = 30.0) -> int:
        """Test helper: send raw frames (``str`` as text, ``bytes`` as binary frames) to every
        listening connection, in order; returns how many connections got them."""
        loop = self._loop
        if loop is None:
            return 0
        future = asyncio.run_coroutine_threadsafe(self._inject(frames), loop)
        return future.result(timeout)

    async def _inject(self, frames: tuple[str | bytes, ...]) -> int:
        targets = [c for c in self._connections if c.stats.listening and not c.dead]
        for conn in targets:
            for frame in frames:
                if conn.dead:
                    break
                try:
                    if isinstance(frame, str):
                        await conn.websocket.send_text(frame)
                    else:
                        await conn.websocket.send_bytes(frame)
                except Exception as exc:
                    log.debug("stream connection %s: inject failed: %r", conn.stats.id, exc)
                    self._cut(conn)
        return len(targets)

    # ------------------------------------------------------------------ the endpoint
    async def endpoint(self, websocket: WebSocket) -> None:
        """One websocket connection, from accept to close."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        self.upgrades += 1
        if self.single_connection and self.slot_held():
            self.refused_upgrades += 1
            body = _frame({"code": 42910000, "message": "connection limit exceeded"})
            await websocket.send_denial_response(
                Response(body, status_code=429, media_type="application/json")
            )
            return
        await websocket.accept()
        conn = _Connection(websocket, ConnectionStats(next(self._ids)))
        self.stats.append(conn.stats)
        self._connections.add(conn)
        auth_deadline = asyncio.get_running_loop().time() + self.auth_timeout_seconds
        try:
            while not conn.dead:
                message = await self._receive(conn, auth_deadline)
                if message is None:
                    break
                if message["type"] == "websocket.disconnect":
                    break
                raw = message.get("bytes") or message.get("text") or ""
                if not await self._on_message(conn, raw):
                    break
        except Exception as exc:  # a client vanishing mid-send, mostly
            log.debug("stream connection %s ended: %r", conn.stats.id, exc)
        finally:
            await self._finish(conn)

    async def _receive(self, conn: _Connection, auth_deadline: float) -> Any:
        """The next client message; None when the connection is closed for never authenticating."""
        if conn.stats.authenticated:
            return await conn.websocket.receive()
        remaining = auth_deadline - asyncio.get_running_loop().time()
        try:
            return await asyncio.wait_for(conn.websocket.receive(), max(0.0, remaining))
        except TimeoutError:
            self.auth_timeouts += 1
            await self._send(conn, _authorization("unauthorized", "authenticate"))
            await conn.websocket.close(code=1008)
            return None

    async def _on_message(self, conn: _Connection, raw: str | bytes) -> bool:
        """Handle one client message; False closes the connection."""
        try:
            msg = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            msg = None
        if not isinstance(msg, dict):
            await self._send(conn, _frame({"stream": "error", "data": {"error": "invalid syntax"}}))
            return True
        action = msg.get("action")
        data: dict[str, Any] = msg["data"] if isinstance(msg.get("data"), dict) else {}
        if action in ("authenticate", "auth"):
            if action == "authenticate":
                key, secret = data.get("key_id"), data.get("secret_key")
            else:
                key, secret = msg.get("key"), msg.get("secret")
            ok = self._authorized(key, secret)
            if ok and self.single_connection and self._slot_holder(conn):
                conn.stats.limit_exceeded = True
                await self._send(conn, _LIMIT_EXCEEDED)
                await conn.websocket.close(code=1008)
                return False
            conn.stats.authenticated = ok
            await self._send(
                conn, _authorization("authorized" if ok else "unauthorized", "authenticate")
            )
            if not ok:
                await conn.websocket.close(code=1008)
            return ok
        if action == "listen":
            if not conn.stats.authenticated:
                await self._send(conn, _authorization("unauthorized", "listen"))
                return True
            streams = data.get("streams")
            streams = (
                [s for s in streams if s == TRADE_UPDATES] if isinstance(streams, list) else []
            )
            if streams:
                self._start_listening(conn)
            else:
                self._stop_listening(conn)
            await self._send(conn, _frame({"stream": "listening", "data": {"streams": streams}}))
            return True
        await self._send(
            conn, _frame({"stream": "error", "data": {"error": f"unrecognized action: {action}"}})
        )
        return True

    def _authorized(self, key: Any, secret: Any) -> bool:
        if not isinstance(key, str) or not isinstance(secret, str):
            return False
        key_ok = hmac.compare_digest(key.encode(), self.api.key_id.encode())
        secret_ok = hmac.compare_digest(secret.encode(), self.api.secret_key.encode())
        return key_ok and secret_ok

    # ------------------------------------------------------------------ events
    def _start_listening(self, conn: _Connection) -> None:
        if conn.unsubscribe is not None:
            return
        loop = self._loop
        assert loop is not None
        queue = conn.queue

        def listener(record: TradeEventRecord) -> None:
            # Called under the broker lock, possibly from another thread: hand over, never raise.
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(queue.put_nowait, record)

        conn.unsubscribe = self.broker.subscribe(listener)
        conn.stats.listening = True
        if conn.pump is None:
            conn.pump = asyncio.create_task(self._pump(conn))

    def _stop_listening(self, conn: _Connection) -> None:
        if conn.unsubscribe is not None:
            conn.unsubscribe()
            conn.unsubscribe = None
        conn.stats.listening = False

    async def _pump(self, conn: _Connection) -> None:
        while not conn.dead:
            record = await conn.queue.get()
            if not conn.stats.listening:
                continue
            await self._deliver(conn, record)

    async def _deliver(self, conn: _Connection, record: TradeEventRecord) -> None:
        faults = self.broker.faults
        rng = self.broker.rng
        # Every knob draws once per event, whatever the others do, so knobs stay independent.
        drop = rng.chance("stream_drop", faults.stream_drop_rate)
        duplicate = rng.chance("stream_duplicate", faults.stream_duplicate_rate)
        delay = rng.chance("stream_delay", faults.stream_delay_rate)
        disconnect = rng.chance("stream_disconnect", faults.stream_disconnect_rate)
        gap = rng.chance("stream_gap", faults.stream_gap_rate)
        silence = rng.chance("stream_silence", faults.stream_silence_rate)
        stats = conn.stats
        stats.events += 1
        if conn.silent_until or silence:
            stats.silenced += 1
            if silence and not conn.silent_until:
                self._start_silence(conn, faults.stream_silence_seconds)
            return
        if gap:
            stats.gapped = True
            self._held_until = max(self._held_until, self._now() + faults.stream_gap_seconds)
            self._cut(conn)
            return
        copies = 2 if duplicate else 1
        if drop:
            stats.dropped += 1
        else:
            if duplicate:
                stats.duplicated += 1
            frame = _frame(record.message())
            if delay:
                stats.delayed += 1
                task = asyncio.create_task(
                    self._send_later(conn, record.seq, frame, copies, faults.stream_delay_seconds)
                )
                conn.later.add(task)
                task.add_done_callback(conn.later.discard)
            else:
                for _ in range(copies):
                    await self._send_event(conn, record.seq, frame)
        if disconnect and not conn.dead:
            stats.disconnected = True
            self._cut(conn)

    async def _send_later(
        self, conn: _Connection, seq: int, frame: bytes, copies: int, seconds: float
    ) -> None:
        await asyncio.sleep(seconds)
        for _ in range(copies):
            await self._send_event(conn, seq, frame)

    def _start_silence(self, conn: _Connection, seconds: float) -> None:
        conn.silent_until = self._now() + seconds
        transport = conn.websocket.scope.get(TRANSPORT_SCOPE_KEY)
        if transport is not None:
            # Nothing is read, so a ping is never answered (and a close never seen).
            transport.pause_reading()
        loop = self._loop
        assert loop is not None
        loop.call_later(seconds, self._end_silence, conn)

    def _end_silence(self, conn: _Connection) -> None:
        if not conn.silent_until:
            return
        conn.silent_until = 0.0
        transport = conn.websocket.scope.get(TRANSPORT_SCOPE_KEY)
        if transport is not None and not transport.is_closing():
            transport.resume_reading()

    async def _send_event(self, conn: _Connection, seq: int, frame: bytes) -> None:
        if conn.dead or conn.silent_until:
            if conn.silent_until:
                conn.stats.silenced += 1
            return
        await self._send(conn, frame)
        if not conn.dead:
            conn.stats.sent += 1
            conn.stats.event_seqs.append(seq)

    async def _send(self, conn: _Connection, frame: bytes) -> None:
        if conn.dead:
            return
        try:
            await conn.websocket.send_bytes(frame)
        except Exception as exc:
            log.debug("stream connection %s: send failed: %r", conn.stats.id, exc)
            self._cut(conn)

    def _cut(self, conn: _Connection) -> None:
        """Drop the connection abruptly (TCP reset, no close frame)."""
        conn.dead = True
        self._stop_listening(conn)
        transport = conn.websocket.scope.get(TRANSPORT_SCOPE_KEY)
        if transport is not None:
            reset_connection(transport)

    async def _finish(self, conn: _Connection) -> None:
        conn.dead = True
        self._stop_listening(conn)
        conn.stats.closed = True
        self._connections.discard(conn)
        tasks = [
            t for t in (conn.pump, *conn.later) if t is not None and t is not asyncio.current_task()
        ]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
