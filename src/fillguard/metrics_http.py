"""Serve a metrics registry over HTTP on loopback: :func:`serve` (also ``fillguard.metrics.serve``)."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

if TYPE_CHECKING:
    from fillguard.metrics import PrometheusMetrics

__all__ = ["MetricsServer", "serve"]


@dataclass(frozen=True, slots=True)
class MetricsServer:
    """A running metrics endpoint: ``url`` serves the text format; :meth:`stop` ends it."""

    host: str
    port: int
    _server: Any
    _thread: threading.Thread

    @property
    def url(self) -> str:
        """``http://HOST:PORT/metrics``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving, close the port and join the thread (idempotent)."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _QuietHandler(WSGIRequestHandler):
    """No access log on stderr for every scrape."""

    def log_message(self, format: str, *args: Any) -> None:
        """Log nothing."""


class _Server6(ThreadingWSGIServer):
    address_family = socket.AF_INET6


def serve(
    port: int,
    host: str = "127.0.0.1",
    *,
    registry: CollectorRegistry | PrometheusMetrics,
) -> MetricsServer:
    """Serve ``registry`` (or a :class:`~fillguard.metrics.PrometheusMetrics`' registry) on
    ``host:port``; ``port`` 0 picks a free port (see ``.port``).

    The server runs on a daemon thread until ``.stop()``; any path answers the Prometheus text
    format. There is no authentication: keep it on loopback.
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be an integer from 0 to 65535, got {port!r}")
    target = registry if isinstance(registry, CollectorRegistry) else registry.registry
    server_class: type[ThreadingWSGIServer] = _Server6 if ":" in host else ThreadingWSGIServer
    server = make_server(host, port, make_wsgi_app(target), server_class, handler_class=_QuietHandler)
    actual_port = int(server.server_port)
    # A short poll interval: stop() returns within ~50 ms instead of serve_forever's 0.5 s.
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name=f"fillguard-metrics:{actual_port}",
        daemon=True,
    )
    thread.start()
    return MetricsServer(host, actual_port, server, thread)
