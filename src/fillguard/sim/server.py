"""The simulator over real sockets: REST and the trade_updates websocket on one port.

A Starlette app on uvicorn. Every HTTP request becomes an :class:`ApiRequest` for the pure
:class:`SimApi`, and its :class:`ApiResponse` is carried out literally: wait ``delay`` seconds,
then either answer or, for ``fault="reset"``, reset the TCP connection without writing a byte
(``SO_LINGER`` 0 and abort: the client sees ``ConnectionResetError``). ``/stream`` is the
trade_updates websocket (:mod:`fillguard.sim.stream`). A ticker task advances the broker core
every few milliseconds, so orders fill and cancels complete with no REST traffic at all.

:func:`run_simulator` runs it all in a background thread for tests and embedding;
``fillguard sim`` runs it from the command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import requests
import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute

from fillguard.clock import SystemClock
from fillguard.sim.api import ApiRequest, SimApi
from fillguard.sim.assets import AssetUniverse, load_symbols
from fillguard.sim.connections import (
    H11ProtocolWithDeadline,
    WebSocketProtocol,
    is_loopback,
    read_body,
)
from fillguard.sim.control import CONTROL_TOKEN_HEADER, new_control_token
from fillguard.sim.core import Broker, BrokerConfig
from fillguard.sim.faults import FaultProfile, profile_from
from fillguard.sim.messages import body_too_large
from fillguard.sim.metrics import CONTENT_TYPE_LATEST, SimMetrics
from fillguard.sim.sim_clock import ScaledClock, parse_clock
from fillguard.sim.stream import TRANSPORT_SCOPE_KEY, StreamHub, reset_connection
from fillguard.sim.trickle import trickle_body

__all__ = [
    "CONTROL_TOKEN_HEADER",
    "DEFAULT_KEY_ID",
    "DEFAULT_SECRET_KEY",
    "TRANSPORT_SCOPE_KEY",
    "SimServer",
    "build_app",
    "reset_connection",
    "run_simulator",
]

log = logging.getLogger("fillguard.sim.server")

# The public default key pair: printed and documented, useless anywhere but the simulator.
DEFAULT_KEY_ID = "FILLGUARD-SIM-KEY"
DEFAULT_SECRET_KEY = "FILLGUARD-SIM-SECRET"

_TICK_SECONDS = 0.005
_HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _collapse_slashes(path: str) -> str:
    # alpaca-py builds base_url + "/v2" + path, so a trailing slash in url_override gives //v2.
    while path.startswith("//"):
        path = path[1:]
    return path


class _ErrorCounter:
    """Exceptions raised by :meth:`SimApi.handle` (each answered 500): none without a bug."""

    def __init__(self) -> None:
        self.count = 0
        self.last: str | None = None


def build_app(
    api: SimApi,
    hub: StreamHub,
    errors: _ErrorCounter | None = None,
    metrics: SimMetrics | None = None,
) -> Starlette:
    """The Starlette app: ``/stream`` websocket, ``GET /metrics`` (the simulator's own
    Prometheus metrics, no auth) and one catch-all HTTP route into ``api``."""
    counter = errors or _ErrorCounter()
    sim_metrics = metrics or SimMetrics(lambda: hub.stats, lambda: counter.count)

    async def metrics_endpoint(request: Request) -> Response:
        return Response(sim_metrics.exposition(), headers={"content-type": CONTENT_TYPE_LATEST})

    async def http_endpoint(request: Request) -> Response:
        scope = request.scope
        raw_path = scope.get("raw_path") or scope["path"].encode()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            body = await read_body(request, api.max_body_bytes)
        except ClientDisconnect:
            return Response(b"", status_code=400)  # nobody left to answer: no traceback
        if body is None:
            refusal = body_too_large(api.max_body_bytes)
            # The rest of the body is never read: close the connection after answering.
            return Response(
                refusal.body,
                status_code=413,
                headers={**dict(refusal.headers), "connection": "close"},
            )
        api_request = ApiRequest(
            method=scope["method"].upper(),
            path=_collapse_slashes(raw_path.decode("latin-1")),
            query=parse_qs(scope["query_string"].decode("latin-1"), keep_blank_values=True),
            body=body,
            headers=headers,
        )
        try:
            answer = api.handle(api_request)
        except Exception as exc:
            counter.count += 1
            counter.last = repr(exc)
            log.exception("simulator bug answering %s %s", api_request.method, api_request.path)
            payload = {"code": 50010000, "message": f"internal server error: {exc!r}"}
            return Response(
                json.dumps(payload, separators=(",", ":")).encode(),
                status_code=500,
                headers={"content-type": "application/json"},
            )
        sim_metrics.served(api_request.method, api_request.path, answer)
        if answer.delay > 0:
            await asyncio.sleep(answer.delay)
        if answer.fault == "reset":
            transport = scope.get(TRANSPORT_SCOPE_KEY)
            if transport is not None:
                reset_connection(transport)
                await asyncio.sleep(0)  # let uvicorn see the connection lost: nothing is sent
            return Response(b"", status_code=500)
        if answer.trickle_seconds > 0 and answer.body:
            # Status and headers now, then the body byte by byte (the trickle fault).
            headers = {**dict(answer.headers), "content-length": str(len(answer.body))}
            return StreamingResponse(
                trickle_body(answer.body, answer.trickle_seconds, api.trickles),
                status_code=answer.status,
                headers=headers,
            )
        return Response(answer.body, status_code=answer.status, headers=dict(answer.headers))

    return Starlette(
        routes=[
            WebSocketRoute("/stream", hub.endpoint),
            # The legacy SDK dials base_url + "/stream/" (alpaca-trade-api, stream.py TradingStream).
            WebSocketRoute("/stream/", hub.endpoint),
            Route("/metrics", metrics_endpoint, methods=["GET", "HEAD"]),
            Route("/{path:path}", http_endpoint, methods=_HTTP_METHODS),
        ]
    )


class SimServer:
    """The simulator on a loopback port, served from a background thread.

    Use :func:`run_simulator`, or :meth:`start` and :meth:`stop` (also a context manager).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: str | dict[str, Any] | FaultProfile | None = "calm",
        seed: int = 0,
        key_id: str = DEFAULT_KEY_ID,
        secret_key: str = DEFAULT_SECRET_KEY,
        rate_limit: int | None = 200,
        config: BrokerConfig | None = None,
        clock: str = "open",
        symbols: str | AssetUniverse | None = None,
        control_token: str | None = None,
        max_body_bytes: int = 1 << 20,
        request_timeout_seconds: float = 10.0,
        stream_auth_timeout_seconds: float = 10.0,
    ) -> None:
        self.host = host
        self.key_id = key_id
        self.secret_key = secret_key
        # clock: open (never closes: the default for tests), real, accelerated:N[@ISO] or
        # fixed:ISO (see fillguard.sim.sim_clock); symbols: "AAPL,BTC/USD", "@file" or a universe.
        spec = parse_clock(clock)
        config = config or BrokerConfig()
        changes: dict[str, Any] = {"market_hours": spec.market_hours}
        if symbols is not None:
            changes["assets"] = load_symbols(symbols) if isinstance(symbols, str) else symbols
        config = dataclasses.replace(config, **changes)
        sim_clock = (
            SystemClock()
            if spec.rate == 1.0 and spec.start is None
            else ScaledClock(spec.rate, spec.start)
        )
        self.clock_spec = spec
        #: Required on every /_sim/ call over HTTP (header X-Fillguard-Sim-Token).
        self.control_token = control_token or new_control_token()
        self.request_timeout_seconds = request_timeout_seconds
        self.broker = Broker(clock=sim_clock, seed=seed, config=config, faults=profile_from(faults))
        self.api = SimApi(
            self.broker,
            key_id=key_id,
            secret_key=secret_key,
            rate_limit=rate_limit,
            control_token=self.control_token,
            max_body_bytes=max_body_bytes,
        )
        self.hub = StreamHub(self.api)
        self.hub.auth_timeout_seconds = stream_auth_timeout_seconds
        self.errors = _ErrorCounter()
        self.metrics = SimMetrics(lambda: self.hub.stats, lambda: self.errors.count)
        self.app = build_app(self.api, self.hub, self.errors, self.metrics)
        self._requested_port = port
        self._sock: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None
        self.port = 0

    # ------------------------------------------------------------------ addresses
    @property
    def base_url(self) -> str:
        """``http://HOST:PORT``, the ``url_override`` for ``TradingClient``."""
        return f"http://{self._url_host}:{self.port}"

    @property
    def stream_url(self) -> str:
        """``ws://HOST:PORT/stream``, the ``url_override`` for ``TradingStream``."""
        return f"ws://{self._url_host}:{self.port}/stream"

    @property
    def _url_host(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"[{host}]" if ":" in host else host

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 10.0) -> SimServer:
        """Bind, start serving in a background thread, and wait until it accepts connections."""
        if self._thread is not None:
            raise RuntimeError("simulator already started")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self._requested_port))
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self.port = sock.getsockname()[1]
        if not is_loopback(self.host):
            log.warning(
                "the simulator listens on %s:%s, beyond loopback: other hosts can reach it",
                self.host,
                self.port,
            )
        protocol = type(
            "_H11Protocol",
            (H11ProtocolWithDeadline,),
            {"request_timeout_seconds": self.request_timeout_seconds},
        )
        config = uvicorn.Config(
            self.app,
            host=self.host,
            port=self.port,
            http=protocol,
            ws=WebSocketProtocol,
            ws_per_message_deflate=False,
            lifespan="off",
            log_level="warning",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._run, name=f"fillguard-sim:{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"simulator did not start on {self.host}:{self.port}: {self._failure!r}"
                )
            time.sleep(0.005)
        return self

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by start()
            self._failure = exc
            log.exception("simulator server thread failed")

    async def _main(self) -> None:
        assert self._server is not None
        assert self._sock is not None
        self.hub.bind(asyncio.get_running_loop())
        ticker = asyncio.create_task(self._tick(), name="fillguard-sim-ticker")
        try:
            await self._server.serve(sockets=[self._sock])
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            self.hub.close()

    async def _tick(self) -> None:
        broker = self.broker
        while True:
            try:
                broker.advance()
                due = broker.next_due()
            except Exception:
                log.exception("simulator broker failed to advance")
                due = None
            wait = _TICK_SECONDS
            if due is not None:
                wait = min(wait, max(0.0005, due - broker.t()))
            await asyncio.sleep(wait)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving, close the port and join the thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("simulator thread did not stop within %s s", timeout)
        if self._sock is not None:
            self._sock.close()
        self._thread = None
        self._server = None
        self._sock = None

    def __enter__(self) -> SimServer:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ helpers
    def trading_client(self, raw_data: bool = False) -> Any:
        """A real alpaca-py ``TradingClient`` pointed at this simulator."""
        from alpaca.trading.client import TradingClient

        return TradingClient(
            self.key_id, self.secret_key, raw_data=raw_data, url_override=self.base_url
        )

    def trading_stream(self, raw_data: bool = False) -> Any:
        """A real alpaca-py ``TradingStream`` pointed at this simulator (not started)."""
        from alpaca.trading.stream import TradingStream

        return TradingStream(
            self.key_id, self.secret_key, raw_data=raw_data, url_override=self.stream_url
        )

    @property
    def control_headers(self) -> dict[str, str]:
        """The header every ``/_sim/`` call over HTTP needs."""
        return {CONTROL_TOKEN_HEADER: self.control_token}

    def _sim(self, method: str, path: str, body: Any = None) -> Any:
        response = requests.request(
            method,
            f"{self.base_url}/_sim/{path}",
            json=body,
            headers=self.control_headers,
            timeout=30,
        )
        response.raise_for_status()
        return response.json()

    def ledger(self) -> dict[str, Any]:
        """Ground truth: ``GET /_sim/ledger``."""
        result: dict[str, Any] = self._sim("GET", "ledger")
        return result

    def events(self) -> list[dict[str, Any]]:
        """Every trade event so far as wire messages: ``GET /_sim/events``."""
        result: list[dict[str, Any]] = self._sim("GET", "events")
        return result

    def set_faults(self, faults: str | dict[str, Any] | FaultProfile) -> FaultProfile:
        """Switch the fault profile (a name, a dict of knobs, or a profile); state is kept."""
        profile = profile_from(faults)
        self.broker.set_faults(profile)
        return profile

    def reset(self, faults: str | dict[str, Any] | FaultProfile | None = None) -> None:
        """Forget every order, position and execution (``POST /_sim/reset``), optionally
        switching the fault profile, and restart the rate-limit window."""
        body = None if faults is None else {"faults": profile_from(faults).to_dict()}
        self._sim("POST", "reset", body)


@contextlib.contextmanager
def run_simulator(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    faults: str | dict[str, Any] | FaultProfile | None = "calm",
    seed: int = 0,
    key_id: str = DEFAULT_KEY_ID,
    secret_key: str = DEFAULT_SECRET_KEY,
    rate_limit: int | None = 200,
    config: BrokerConfig | None = None,
    clock: str = "open",
    symbols: str | AssetUniverse | None = None,
    control_token: str | None = None,
    max_body_bytes: int = 1 << 20,
    request_timeout_seconds: float = 10.0,
    stream_auth_timeout_seconds: float = 10.0,
) -> Iterator[SimServer]:
    """Run the simulator on ``host:port`` (0: a free port) for the ``with`` block.

    Yields the started :class:`SimServer` (``base_url``, ``stream_url``, ``key_id``,
    ``secret_key``, ``broker``, ``api``, ``port``, ``trading_client()``, ``ledger()``, ...).
    ``clock`` and ``symbols`` as for :class:`SimServer` (default: always open, the default
    universe). On exit the server stops, the port is released and the thread is joined.
    """
    server = SimServer(
        host=host,
        port=port,
        faults=faults,
        seed=seed,
        key_id=key_id,
        secret_key=secret_key,
        rate_limit=rate_limit,
        config=config,
        clock=clock,
        symbols=symbols,
        control_token=control_token,
        max_body_bytes=max_body_bytes,
        request_timeout_seconds=request_timeout_seconds,
        stream_auth_timeout_seconds=stream_auth_timeout_seconds,
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()
