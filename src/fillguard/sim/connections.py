"""The simulator's connections as a server should treat them: deadlines, caps, no Nagle.

uvicorn's h11 protocol with the transport in every request's ASGI scope (the reset fault needs
it), ``TCP_NODELAY`` set, and a deadline for a request to arrive whole; the body read with a
cap; and whether a bind address is loopback only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import MutableMapping
from typing import Any

import h11
from starlette.requests import Request
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from fillguard.sim.stream import TRANSPORT_SCOPE_KEY

__all__ = ["H11ProtocolWithDeadline", "WebSocketProtocol", "is_loopback", "read_body"]

log = logging.getLogger("fillguard.sim.server")

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` serves this machine only."""
    return host in _LOOPBACK or host.startswith("127.")


def _set_nodelay(transport: Any) -> None:
    # asyncio only sets TCP_NODELAY when the socket's proto is IPPROTO_TCP; without it a
    # response written as headers then body waits out the client's delayed ACK (40 ms).
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _with_transport(app: Any, transport: Any) -> Any:
    async def app_with_transport(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        scope[TRANSPORT_SCOPE_KEY] = transport
        await app(scope, receive, send)

    return app_with_transport


class H11ProtocolWithDeadline(H11Protocol):
    """uvicorn's h11 protocol, putting the transport into every request's ASGI scope.

    uvicorn holds a connection that sends nothing, or half a request, forever: here a request
    must arrive whole within ``request_timeout_seconds`` of its first byte (or of the
    connection opening), else the connection is closed. A request being answered (a hang
    fault, a trickled body) is not cut.
    """

    request_timeout_seconds = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        _set_nodelay(transport)
        self.app = _with_transport(self.app, transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._arm()

    def _arm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self.loop.call_later(self.request_timeout_seconds, self._expire)

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE and not self.conn.trailing_data[0]:
            self._arm()  # the first bytes of a new request
        super().data_received(data)

    def _expire(self) -> None:
        self._deadline = None
        transport = self.transport
        if transport.is_closing() or transport.get_protocol() is not self:
            return  # gone, or upgraded to a websocket
        if self.conn.their_state is h11.DONE:
            self._arm()  # received whole; being answered
            return
        log.info(
            "closing a connection whose request did not arrive within %s s",
            self.request_timeout_seconds,
        )
        transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        super().connection_lost(exc)


class WebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets protocol, putting the transport into the websocket's ASGI scope."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.app = _with_transport(self.app, transport)


async def read_body(request: Request, limit_bytes: int) -> bytes | None:
    """The request body, or None when it is over ``limit_bytes`` (read no further)."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit_bytes:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit_bytes:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
