"""The fill detection engine: monitor orders until the broker says how each ended.

:meth:`FillDetectionEngine.monitor_order_fill` (and ``monitor_order_fill_async``) starts a
:class:`~fillguard.monitor.MonitorMachine` for the order on the account's
:class:`~fillguard.tracker.OrderTracker` and waits for its answer. The tracker listens to
trade_updates (one connection per account, shared by every engine) and reads REST only where
the stream is silent, batching reads into sweeps; one driver runs every monitor, so no thread is
held per order and many callers may wait at once.

Reads that prove nothing are read again, never believed: failing or refused requests, garbage
bodies, stale versions and half-written records. At the deadline the last check is made and, if
the order is still open, it is canceled and read until the broker's final word: a fill that
raced the cancel is returned as a fill, and when the final state cannot be learned the result
is ``UNKNOWN``, never a guess of "not filled".

Once :meth:`FillDetectionEngine.monitor_order_fill` has a valid order id, it never raises:
whatever the broker does, the answer is a :class:`FillResult`.
"""

from __future__ import annotations

import logging
import math
import random
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from fillguard.accounts import account_budget, tracker_for
from fillguard.broker import ENGINE_METHODS, BrokerClient
from fillguard.clock import Clock, SystemClock
from fillguard.config import FillDetectionConfig
from fillguard.errors import InvalidInputError
from fillguard.final import FinalVerificationHandler
from fillguard.gateway import OrderGateway
from fillguard.logs import log_event
from fillguard.monitor import MonitorMachine
from fillguard.monitoring import Monitor, build_result
from fillguard.observer import NULL_OBSERVER, Observer
from fillguard.results import FillResult, FillStatus
from fillguard.retry import ErrorRecoveryManager
from fillguard.snapshot import OrderSnapshot, to_decimal
from fillguard.tracker import OrderTracker
from fillguard.transport import own_transport
from fillguard.verify import MultiMethodVerifier

__all__ = ["FillDetectionEngine", "stream_credentials", "validate_order_id"]

_logger = logging.getLogger("fillguard.engine")

_ENDED_BY_OTHERS = {"canceled": FillStatus.CANCELED, "expired": FillStatus.EXPIRED}
#: How many replacements one run follows before it stops and says UNKNOWN.
_MAX_CHAIN = 20


def validate_order_id(order_id: object) -> str:
    """``order_id`` as Alpaca's canonical UUID text, or :class:`InvalidInputError`."""
    text = str(order_id).strip() if isinstance(order_id, str | uuid.UUID) else ""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise InvalidInputError(
            "order_id", f"must be an Alpaca order id (a UUID), got {order_id!r}"
        ) from None


class FillDetectionEngine:
    """Monitors orders until they fill, fail or time out, and reports the broker's truth.

    Args:
        alpaca_client: alpaca-py's ``TradingClient`` or any object with its methods
            (``get_order_by_id``, ``cancel_order_by_id``; ``get`` for activities, optional).
        config: timing, retry, stream and policy settings.
        clock: time source (a ``FakeClock`` in tests: the driver then runs in fake time).
        rng: random source for retry jitter.
        observer: receives fill detection, request and retry reports (metrics).

    Engines on the same account (key id and base URL) share one tracker, one trade_updates
    connection and one request budget. A client with bad credentials (whitespace, control
    characters) or without the needed methods is refused here with :class:`InvalidInputError`,
    before any request.
    """

    def __init__(
        self,
        alpaca_client: Any,
        config: FillDetectionConfig | None = None,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        logger: logging.Logger | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.client = alpaca_client
        self.config = config or FillDetectionConfig()
        self.clock: Clock = clock or SystemClock()
        self._logger = logger or _logger
        self.observer: Observer = observer or NULL_OBSERVER
        self.broker = BrokerClient(alpaca_client, needs=ENGINE_METHODS)
        # The SDK has no request timeout and retries 429/504 itself with blocking sleeps:
        # take both over so that our policy is the only one.
        self.transport_owned = own_transport(
            alpaca_client,
            request_timeout=self.config.request_timeout_seconds,
            observer=observer,
            budget=account_budget(alpaca_client, self.config, self.clock, self.observer),
        )
        self.verifier = MultiMethodVerifier()
        self.recovery = ErrorRecoveryManager(
            self.config, clock=self.clock, rng=rng, observer=self.observer
        )
        self.gateway = OrderGateway(alpaca_client, self.recovery, self.clock, broker=self.broker)
        self.final = FinalVerificationHandler(
            self.gateway, self.config, self.clock, verifier=self.verifier
        )
        self.tracker = tracker_for(alpaca_client, clock=self.clock, make=self._make_tracker)
        credentials = stream_credentials(alpaca_client)
        if self.config.use_stream and credentials is not None:
            self.tracker.use_stream(*credentials)

    def _make_tracker(self) -> OrderTracker:
        return OrderTracker(
            clock=self.clock,
            sweeper=self.broker if self.broker.raw else None,
            recovery=self.recovery,
            observer=self.observer,
        )

    # ------------------------------------------------------------------ wake-ups
    def notify(self, order_id: str) -> bool:
        """Read ``order_id`` soon (e.g. your own stream handler saw an event). False if no
        monitor of it is running."""
        order_id = str(order_id)
        watched = bool(self.tracker._by_order.get(order_id))
        self.tracker.poke(order_id)
        return watched

    # ------------------------------------------------------------------ public API
    def monitor_order_fill(
        self,
        order_id: str,
        *,
        expected_price: Decimal | float | str | None = None,
        timeout: float | None = None,
        submitted_at: datetime | None = None,
        client_order_id: str | None = None,
    ) -> FillResult:
        """Watch ``order_id`` until the broker says how it ended, within the time budget.

        Returns within ``timeout + final_verification_seconds`` (each request is cut to the
        time left). Raises only :class:`InvalidInputError`, for bad arguments, before any
        request; from then on every outcome is a :class:`FillResult` (``UNKNOWN`` with
        ``refusal`` set when the broker refused to tell: 401, 403, a 404 that never ended).
        """
        machine = self._machine(order_id, expected_price, timeout, submitted_at, client_order_id)
        future = self.tracker.submit(machine, self.gateway)
        try:
            result = self.tracker.wait(future)
        except Exception as exc:  # the last guard: an order we watch never makes us raise
            self._logger.exception("monitoring failed inside fillguard for %s", order_id)
            result = self._unknown(machine, f"internal error: {type(exc).__name__}: {exc}")
        log_event(self._logger, logging.INFO, "monitoring_finished", **result.to_log_dict())
        return result

    def monitor_orders(
        self, order_ids: list[str], *, timeout: float | None = None
    ) -> list[FillResult]:
        """Watch many orders at once (one driver, no thread each); results in the same order.

        Raises only :class:`InvalidInputError` for a bad argument, before any request.
        """
        machines = [self._machine(oid, None, timeout, None, None) for oid in order_ids]
        futures = [self.tracker.submit(m, self.gateway) for m in machines]
        results: list[FillResult] = []
        for machine, future in zip(machines, futures, strict=True):
            try:
                result = self.tracker.wait(future)
            except Exception as exc:
                self._logger.exception("monitoring failed inside fillguard")
                result = self._unknown(machine, f"internal error: {type(exc).__name__}: {exc}")
            log_event(self._logger, logging.INFO, "monitoring_finished", **result.to_log_dict())
            results.append(result)
        return results

    async def monitor_order_fill_async(
        self,
        order_id: str,
        *,
        expected_price: Decimal | float | str | None = None,
        timeout: float | None = None,
        submitted_at: datetime | None = None,
        client_order_id: str | None = None,
    ) -> FillResult:
        """:meth:`monitor_order_fill` for asyncio: awaits the driver, holds no thread."""
        import asyncio

        machine = self._machine(order_id, expected_price, timeout, submitted_at, client_order_id)
        future = self.tracker.submit(machine, self.gateway)
        try:
            if self.tracker.driver.inline:
                result = await asyncio.to_thread(self.tracker.wait, future)
            else:
                result = await asyncio.wrap_future(future)
        except Exception as exc:
            self._logger.exception("monitoring failed inside fillguard for %s", order_id)
            result = self._unknown(machine, f"internal error: {type(exc).__name__}: {exc}")
        log_event(self._logger, logging.INFO, "monitoring_finished", **result.to_log_dict())
        return result

    def _machine(
        self,
        order_id: Any,
        expected_price: Any,
        timeout: Any,
        submitted_at: datetime | None,
        client_order_id: str | None,
    ) -> MonitorMachine:
        order_id = validate_order_id(order_id)
        timeout = self.config.timeout_seconds if timeout is None else timeout
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not math.isfinite(timeout)
            or not timeout > 0
        ):
            raise InvalidInputError("timeout", f"must be > 0 seconds, got {timeout!r}")
        price = None if expected_price is None else to_decimal(expected_price)
        if expected_price is not None and (price is None or price <= 0):
            raise InvalidInputError(
                "expected_price", f"must be a positive number, got {expected_price!r}"
            )
        start = self.clock.monotonic()
        mon = Monitor(
            order_id=order_id,
            start=start,
            deadline=start + timeout,
            final_deadline=start + timeout + self.config.final_verification_seconds,
            grace_until=start + self.config.not_found_grace_seconds,
            expected_price=price,
            submitted_at=submitted_at,
            client_order_id=client_order_id,
        )
        log_event(
            self._logger,
            logging.INFO,
            "monitoring_started",
            order_id=order_id,
            client_order_id=client_order_id,
            timeout=timeout,
            expected_price=price,
            config=self.config.to_log_dict(),
        )
        return MonitorMachine(
            mon,
            self.config,
            stream_live=self.config.use_stream and self.tracker.stream_live,
            stream_silence_seconds=self.config.stream_silence_seconds,
            uses_stream=self.config.use_stream,
            verifier=self.verifier,
            observer=self.observer,
            logger=self._logger,
        )

    def _unknown(self, machine: MonitorMachine, reason: str) -> FillResult:
        mon = machine.mon
        snap = mon.last or OrderSnapshot(order_id=mon.current_id)
        return build_result(
            mon,
            snap,
            FillStatus.UNKNOWN,
            "final_check",
            None,
            config=self.config,
            now=self.clock.monotonic(),
            logger=self._logger,
            observer=self.observer,
            error=reason,
        )


def stream_credentials(client: Any) -> tuple[str, str, str] | None:
    """(key id, secret, base URL) when ``client`` can use trade_updates, else None.

    Needs an API key pair (no OAuth) and an ``http(s)`` base URL; a client wired to the
    in-process simulator (no sockets) has no stream.
    """
    key = getattr(client, "_api_key", None)
    secret = getattr(client, "_secret_key", None)
    base = getattr(client, "_base_url", None)
    base_url = str(getattr(base, "value", base) or "")
    host = urlsplit(base_url).hostname or ""
    if getattr(client, "_fillguard_in_process", False) or host.endswith(".invalid"):
        return None  # no sockets behind it (RFC 2606: .invalid never resolves)
    if not (isinstance(key, str) and isinstance(secret, str) and key and secret):
        return None
    if not base_url.startswith(("http://", "https://")):
        return None
    return key, secret, base_url
