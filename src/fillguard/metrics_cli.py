"""``--metrics-port`` and ``--metrics-linger`` for ``fillguard demo``, ``execute`` and ``watch``.

:func:`metrics_options` adds both options to a click command; :func:`metrics_session` builds a
:class:`~fillguard.metrics.PrometheusMetrics` on its own ``CollectorRegistry`` (never the global
one), serves it on 127.0.0.1 while the command runs and hands it to the command as its observer.
``--metrics-linger SECONDS`` keeps serving after the run, so that a scraper (Prometheus scrapes
every 15 s by default) still gets the final figures of a short command.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from fillguard.metrics import MetricsServer, PrometheusMetrics

__all__ = ["metrics_options", "metrics_session"]

F = TypeVar("F", bound=Callable[..., Any])


def metrics_options(command: F) -> F:
    """Add ``--metrics-port`` and ``--metrics-linger`` (parameters ``metrics_port`` and
    ``metrics_linger``) to a click command."""
    command = click.option(
        "--metrics-linger",
        type=click.FloatRange(min=0),
        default=0.0,
        show_default=True,
        help="With --metrics-port: keep serving this many seconds after the run.",
    )(command)
    return click.option(
        "--metrics-port",
        type=click.IntRange(0, 65535),
        default=None,
        help="Serve Prometheus metrics on 127.0.0.1:PORT/metrics while running (0: any port).",
    )(command)


def _note(text: str) -> None:
    # stderr: stdout may be --json output that a script reads.
    click.echo(text, err=True)


@contextmanager
def metrics_session(
    port: int | None,
    linger_seconds: float = 0.0,
    *,
    sleep: Callable[[float], None] = time.sleep,
    on_serving: Callable[[MetricsServer], None] | None = None,
) -> Iterator[PrometheusMetrics | None]:
    """Yield the observer to run with: None without a port, else metrics served on loopback.

    After the body ends normally (a ``SystemExit`` included, as click commands exit with their
    code), the server keeps serving ``linger_seconds``, then stops; after any other exception
    it stops at once. A port that cannot be bound is a usage error, not a traceback.
    """
    if port is None:
        yield None
        return
    from fillguard.metrics import PrometheusMetrics, serve  # prometheus_client only when asked

    metrics = PrometheusMetrics()
    try:
        server = serve(port, registry=metrics)
    except OSError as err:
        raise click.UsageError(f"--metrics-port {port}: cannot serve there ({err})") from None
    _note(f"metrics: serving {server.url}")
    if on_serving is not None:
        on_serving(server)
    linger = False
    try:
        yield metrics
        linger = True
    except SystemExit:
        linger = True
        raise
    finally:
        try:
            if linger and linger_seconds > 0:
                _note(f"metrics: serving the final figures {linger_seconds:g} s more")
                sys.stderr.flush()
                sleep(linger_seconds)
        finally:
            server.stop()
