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
seeded stream (``stream_drop``, ``stream_duplicate``, ``stream_delay``, ``stream_disconnect``):
an event may be dropped, sent twice, sent late (without holding back later events, so the
order can change), and the connection may be cut abruptly right after an event.
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


class _Connection:
    def __init__(self, websocket: WebSocket, stats: ConnectionStats) -> None:
        self.websocket = websocket
        self.stats = stats
        self.queue: asyncio.Queue[TradeEventRecord] = asyncio.Queue()
        self.unsubscribe: Any = None
        self.pump: asyncio.Task[None] | None = None
        self.later: set[asyncio.Task[None]] = set()
        self.dead = False


class StreamHub:
    """Serves ``/stream`` for one :class:`SimApi` (its broker and key pair)."""

    def __init__(self, api: SimApi) -> None:
        self.api = api
        self.broker = api.broker
        self.stats: list[ConnectionStats] = []
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connections: set[_Connection] = set()

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

    # ------------------------------------------------------------------ the endpoint
    async def endpoint(self, websocket: WebSocket) -> None:
        """One websocket connection, from accept to close."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        await websocket.accept()
        conn = _Connection(websocket, ConnectionStats(next(self._ids)))
        self.stats.append(conn.stats)
        self._connections.add(conn)
        try:
            while not conn.dead:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                raw = message.get("bytes") or message.get("text") or ""
                if not await self._on_message(conn, raw):
                    break
        except Exception as exc:  # a client vanishing mid-send, mostly
            log.debug("stream connection %s ended: %r", conn.stats.id, exc)
        finally:
            await self._finish(conn)

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
        stats = conn.stats
        stats.events += 1
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

    async def _send_event(self, conn: _Connection, seq: int, frame: bytes) -> None:
        if conn.dead:
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
