"""SmartOrderExecutor: execute one trade and tell the truth about it.

1. Validate every argument before any request (a bad one raises :class:`InvalidInputError`,
   which is also a ``ValueError``, naming the field).
2. Mint the ``client_order_id`` before the first attempt. It keys every log line and result.
3. Submit idempotently. alpaca-py's own 429/504 re-POST is switched off. After an ambiguous
   outcome (read timeout, reset, 5xx) the order is looked up by ``client_order_id`` first:
   found means placed; "not found", confirmed by several lookups spaced apart, means not
   placed, so the same id is sent again; a 422 ``client_order_id must be unique`` means
   already placed, so that order is fetched. One trade never becomes two orders.
4. Wait for the fill with :class:`FillDetectionEngine` (or the legacy loop, behind a flag).
5. Check that the broker's position equals the expected one (the position before the first
   trade in the symbol plus every confirmed fill); on a mismatch, log it, sync to the broker
   and report the delta.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from fillguard.clock import Clock, SystemClock
from fillguard.config import FillDetectionConfig, finite_number
from fillguard.consistency import ConsistencyResult, StateConsistencyValidator
from fillguard.engine import FillDetectionEngine
from fillguard.errors import (
    BrokerError,
    InvalidInputError,
    OutcomeUnknownError,
    RefusedError,
    TransientError,
)
from fillguard.logs import log_context, log_event, register_secret
from fillguard.results import FillResult, FillStatus
from fillguard.retry import RetryStats
from fillguard.snapshot import OrderSnapshot, to_decimal

__all__ = ["OrderConfig", "SmartOrderExecutor", "TradeResult"]

_logger = logging.getLogger("fillguard.executor")

_SYMBOL = re.compile(r"^[A-Z][A-Z0-9.]{0,9}$")
_SIDES = ("buy", "sell")
_TYPES = ("market", "limit")
_TIFS = ("day", "gtc", "ioc", "fok")
_MAX_COID = 128
ENV_FLAG = "FILLGUARD_FILL_DETECTION"


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderConfig:
    """How :class:`SmartOrderExecutor` submits, waits and checks.

    Attributes:
        fill_detection: settings of the fill detection engine.
        use_fill_detection_engine: the feature flag; False runs the legacy polling loop.
        consistency_check: compare the broker's position after every fill.
        consistency_timeout_seconds: how long a position may lag a fill before it is a mismatch.
        consistency_initial_delay / consistency_max_delay: backoff between position re-checks.
        submit_attempts: POSTs allowed for one trade (each after a confirmed "not placed").
        lookup_attempts: lookups by client_order_id that must all say "not found" before a
            resubmit; they are ``lookup_spacing_seconds`` apart, to outlast eventual consistency.
        legacy_poll_interval: the legacy loop's fixed interval.
    """

    fill_detection: FillDetectionConfig = field(default_factory=FillDetectionConfig)
    use_fill_detection_engine: bool = True
    consistency_check: bool = True
    consistency_timeout_seconds: float = 3.0
    consistency_initial_delay: float = 0.1
    consistency_max_delay: float = 1.0
    submit_attempts: int = 3
    lookup_attempts: int = 3
    lookup_spacing_seconds: float = 0.5
    legacy_poll_interval: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.fill_detection, FillDetectionConfig):
            raise InvalidInputError("fill_detection", "must be a FillDetectionConfig")
        for name in (
            "consistency_timeout_seconds",
            "consistency_initial_delay",
            "consistency_max_delay",
            "lookup_spacing_seconds",
            "legacy_poll_interval",
        ):
            value = finite_number(name, getattr(self, name))
            if value < 0 or (value == 0 and name == "legacy_poll_interval"):
                raise InvalidInputError(
                    name, f"must be >= 0 (legacy_poll_interval > 0), got {value}"
                )
        for name in ("submit_attempts", "lookup_attempts"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 20:
                raise InvalidInputError(name, f"must be an integer from 1 to 20, got {value!r}")


@dataclass(frozen=True, slots=True)
class TradeResult:
    """What happened to one trade. ``order_id`` is None if the broker never accepted it."""

    client_order_id: str
    order_id: str | None
    fill: FillResult | None
    consistency: ConsistencyResult | None
    error: str | None = None
    submit_attempts: int = 0
    api_calls: int = 0

    @property
    def filled(self) -> bool:
        """True only for a complete, confirmed fill."""
        return self.fill is not None and self.fill.filled

    @property
    def filled_qty(self) -> Decimal:
        """Quantity that really executed (partial fills count)."""
        return self.fill.filled_qty if self.fill is not None else Decimal(0)

    @property
    def fill_price(self) -> Decimal | None:
        """Average fill price, if anything filled."""
        return self.fill.fill_price if self.fill is not None else None

    @property
    def status(self) -> FillStatus | None:
        """The fill status, or None when no order was placed."""
        return self.fill.status if self.fill is not None else None


@dataclass(frozen=True, slots=True)
class _Intent:
    symbol: str
    side: str
    qty: Decimal
    order_type: str
    limit_price: Decimal | None
    time_in_force: str
    expected_price: Decimal | None
    client_order_id: str


class SmartOrderExecutor:
    """Executes trades idempotently and reports the broker's truth about each one.

    Thread-safe: trades may run from many threads. Trades in the same symbol at the same time
    are tracked too, but the position check is made only when a trade is the symbol's only
    one in flight (otherwise another order's fill could look like a mismatch).
    """

    def __init__(
        self,
        alpaca_client: Any,
        config: OrderConfig | None = None,
        *,
        clock: Clock | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.client = alpaca_client
        self.config = config or OrderConfig()
        self.clock: Clock = clock or SystemClock()
        self._logger = logger or _logger
        for attr in ("_api_key", "_secret_key", "_oauth_token"):
            secret = getattr(alpaca_client, attr, None)
            register_secret(secret if isinstance(secret, str) else None)
        # The engine takes over the client's transport (timeout, no hidden SDK retries)
        # whichever path runs, so a legacy submit is never re-POSTed by the SDK either.
        self.engine = FillDetectionEngine(
            alpaca_client, self.config.fill_detection, clock=self.clock
        )
        self.recovery = self.engine.recovery
        self.validator = StateConsistencyValidator(
            alpaca_client,
            clock=self.clock,
            timeout_seconds=self.config.consistency_timeout_seconds,
            initial_delay=self.config.consistency_initial_delay,
            max_delay=self.config.consistency_max_delay,
            recovery=self.recovery,
        )
        env = os.environ.get(ENV_FLAG, "").strip().lower()
        self.fill_detection_enabled = self.config.use_fill_detection_engine and env != "legacy"
        self._lock = threading.Lock()
        self._expected: dict[str, Decimal] = {}
        self._inflight: dict[str, int] = {}
        # Our orders that may still fill: symbol -> order id -> (side, qty already booked).
        self._open_orders: dict[str, dict[str, tuple[str, Decimal]]] = {}
        self._symbol_locks: dict[str, threading.Lock] = {}

    # ------------------------------------------------------------------ public API
    def expected_position(self, symbol: str) -> Decimal | None:
        """The position the executor expects in ``symbol`` (None before its first trade)."""
        with self._lock:
            return self._expected.get(symbol.upper())

    def execute_trade(
        self,
        symbol: str,
        side: Any,
        qty: Any,
        *,
        order_type: Any = "market",
        limit_price: Any = None,
        time_in_force: Any = "day",
        expected_price: Any = None,
        client_order_id: str | None = None,
    ) -> TradeResult:
        """Submit one order, wait for the broker's final word, check the position.

        Raises :class:`InvalidInputError` for bad arguments (nothing is sent) and
        :class:`RefusedError` when the broker refuses to let us read the order (401/403).
        A broker refusal of the order itself (403 funds, 422) is returned in ``error``.
        """
        intent = _validate(
            symbol,
            side,
            qty,
            order_type,
            limit_price,
            time_in_force,
            expected_price,
            client_order_id,
        )
        with log_context(client_order_id=intent.client_order_id):
            return self._trade(intent)

    def _trade(self, intent: _Intent) -> TradeResult:
        coid = intent.client_order_id
        log_event(
            self._logger,
            logging.INFO,
            "trade_started",
            client_order_id=coid,
            symbol=intent.symbol,
            side=intent.side,
            qty=intent.qty,
            order_type=intent.order_type,
            limit_price=intent.limit_price,
            time_in_force=intent.time_in_force,
            fill_detection="engine" if self.fill_detection_enabled else "legacy",
        )
        stats = RetryStats()
        if self.config.consistency_check:
            self._ensure_baseline(intent.symbol, stats)
        with self._lock:
            self._inflight[intent.symbol] = self._inflight.get(intent.symbol, 0) + 1
        try:
            return self._execute(intent, stats)
        finally:
            with self._lock:
                self._inflight[intent.symbol] -= 1

    def _execute(self, intent: _Intent, stats: RetryStats) -> TradeResult:
        coid = intent.client_order_id
        order, attempts, error = self._submit(intent, stats)
        if order is None:
            result = TradeResult(coid, None, None, None, error, attempts, stats.calls)
            log_event(
                self._logger,
                logging.ERROR,
                "trade_finished",
                client_order_id=coid,
                order_id=None,
                status=None,
                error=error,
                submit_attempts=attempts,
            )
            return result
        order_id = str(order.order_id)
        fill = self._wait_for_fill(
            order_id,
            expected_price=intent.expected_price,
            client_order_id=coid,
            submitted_at=order.submitted_at,
        )
        consistency = self._after_fill(intent, fill)
        result = TradeResult(
            coid,
            order_id,
            fill,
            consistency,
            fill.error if not fill.filled else None,
            attempts,
            stats.calls + fill.api_calls,
        )
        log_event(
            self._logger,
            logging.INFO,
            "trade_finished",
            client_order_id=coid,
            order_id=order_id,
            status=fill.status,
            filled=fill.filled,
            filled_qty=fill.filled_qty,
            fill_price=fill.fill_price,
            consistent=consistency.consistent if consistency else None,
            submit_attempts=attempts,
            api_calls=result.api_calls,
        )
        return result

    # ------------------------------------------------------------------ submission
    def _request(self, intent: _Intent) -> Any:
        from alpaca.trading.enums import OrderSide, TimeInForce
        from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest

        common: dict[str, Any] = {
            "symbol": intent.symbol,
            "qty": float(intent.qty),
            "side": OrderSide(intent.side),
            "time_in_force": TimeInForce(intent.time_in_force),
            "client_order_id": intent.client_order_id,
        }
        if intent.order_type == "limit":
            return LimitOrderRequest(limit_price=float(intent.limit_price or 0), **common)
        return MarketOrderRequest(**common)

    def _submit(
        self, intent: _Intent, stats: RetryStats
    ) -> tuple[OrderSnapshot | None, int, str | None]:
        coid = intent.client_order_id
        request = self._request(intent)
        attempts = 0
        while attempts < self.config.submit_attempts:
            attempts += 1
            try:
                raw = self.recovery.call(
                    lambda: self.client.submit_order(request),
                    is_write=True,
                    client_order_id=coid,
                    stats=stats,
                )
                order = OrderSnapshot.from_any(raw)
                log_event(
                    self._logger,
                    logging.INFO,
                    "order_submitted",
                    client_order_id=coid,
                    order_id=order.order_id,
                    status=order.status,
                    attempt=attempts,
                )
                if order.order_id:
                    return order, attempts, None
                # A 2xx without an id says nothing: find the order by its client id.
                found = self._lookup(coid, stats)
            except RefusedError as err:
                if (
                    err.status_code == 422
                    and "client_order_id must be unique" in err.message.lower()
                ):
                    log_event(
                        self._logger,
                        logging.WARNING,
                        "duplicate_client_order_id",
                        client_order_id=coid,
                        attempt=attempts,
                    )
                    found = self._lookup(coid, stats)
                    if isinstance(found, OrderSnapshot):
                        return found, attempts, None
                    # The broker has an order with this id: never report it as not placed.
                    return (
                        None,
                        attempts,
                        f"outcome unknown: client_order_id {coid} is already used at the "
                        "broker, but that order could not be read",
                    )
                log_event(
                    self._logger,
                    logging.ERROR,
                    "order_refused",
                    client_order_id=coid,
                    status_code=err.status_code,
                    code=err.code,
                    message=err.message,
                )
                return None, attempts, f"refused by broker: {err.message} (HTTP {err.status_code})"
            except TransientError as err:
                # Surely not applied (429, connection refused), and retries ran out.
                log_event(
                    self._logger,
                    logging.ERROR,
                    "submit_failed",
                    client_order_id=coid,
                    error=str(err),
                    attempt=attempts,
                )
                return None, attempts, f"not submitted: {err}"
            except OutcomeUnknownError as err:
                log_event(
                    self._logger,
                    logging.WARNING,
                    "submit_outcome_unknown",
                    client_order_id=coid,
                    error=str(err),
                    attempt=attempts,
                )
                found = self._lookup(coid, stats)
            if isinstance(found, OrderSnapshot):
                log_event(
                    self._logger,
                    logging.INFO,
                    "order_found_after_ambiguous_submit",
                    client_order_id=coid,
                    order_id=found.order_id,
                    status=found.status,
                )
                return found, attempts, None
            if found == "unknown":
                return (
                    None,
                    attempts,
                    (f"outcome unknown: the order {coid} may exist; it could not be looked up"),
                )
            if attempts < self.config.submit_attempts:
                log_event(
                    self._logger,
                    logging.WARNING,
                    "resubmitting",
                    client_order_id=coid,
                    attempt=attempts + 1,
                    reason="confirmed not placed",
                )
        return None, attempts, f"not placed after {attempts} attempts (confirmed by lookups)"

    def _lookup(self, coid: str, stats: RetryStats) -> OrderSnapshot | str:
        """The order by client id; ``"absent"`` if every lookup says 404; ``"unknown"`` else."""
        not_found = 0
        for i in range(self.config.lookup_attempts):
            if i:
                self.clock.sleep(self.config.lookup_spacing_seconds)
            try:
                raw = self.recovery.call(
                    lambda: self.client.get_order_by_client_id(coid),
                    client_order_id=coid,
                    stats=stats,
                    expected_statuses=frozenset({404}),  # "not placed" is an answer here
                )
            except RefusedError as err:
                if err.status_code != 404:
                    raise
                not_found += 1
                log_event(
                    self._logger,
                    logging.INFO,
                    "order_lookup",
                    client_order_id=coid,
                    found=False,
                    lookup=i + 1,
                )
                continue
            except (TransientError, OutcomeUnknownError) as err:
                log_event(
                    self._logger,
                    logging.WARNING,
                    "order_lookup_failed",
                    client_order_id=coid,
                    error=str(err),
                    lookup=i + 1,
                )
                continue
            order = OrderSnapshot.from_any(raw)
            if order.order_id:
                log_event(
                    self._logger,
                    logging.INFO,
                    "order_lookup",
                    client_order_id=coid,
                    found=True,
                    order_id=order.order_id,
                    lookup=i + 1,
                )
                return order
        return "absent" if not_found == self.config.lookup_attempts else "unknown"

    # ------------------------------------------------------------------ fill detection
    def _wait_for_fill(
        self,
        order_id: str,
        timeout: float | None = None,
        expected_price: Decimal | None = None,
        *,
        client_order_id: str | None = None,
        submitted_at: Any = None,
    ) -> FillResult:
        """Wait for the order's outcome: the engine, or the legacy loop when the flag is off."""
        if self.fill_detection_enabled:
            return self.engine.monitor_order_fill(
                order_id,
                expected_price=expected_price,
                timeout=timeout,
                submitted_at=submitted_at,
                client_order_id=client_order_id,
            )
        return self._legacy_wait_for_fill(order_id, timeout, client_order_id)

    def _legacy_wait_for_fill(
        self, order_id: str, timeout: float | None, client_order_id: str | None
    ) -> FillResult:
        """The old loop, kept as the rollback path: poll until status is filled or time is up."""
        timeout = self.config.fill_detection.timeout_seconds if timeout is None else timeout
        start = self.clock.monotonic()
        calls = 0
        snap = OrderSnapshot(order_id=order_id)
        while True:
            calls += 1
            try:
                snap = OrderSnapshot.from_any(self.client.get_order_by_id(order_id))
            except Exception as exc:  # the legacy loop's policy: log and poll again
                log_event(
                    self._logger,
                    logging.WARNING,
                    "legacy_poll_error",
                    order_id=order_id,
                    error_type=type(exc).__name__,
                )
            if snap.status == "filled" and snap.filled_avg_price is not None:
                status = FillStatus.FILLED
                break
            if self.clock.monotonic() - start >= timeout:
                status = FillStatus.TIMEOUT
                break
            self.clock.sleep(self.config.legacy_poll_interval)
        return FillResult(
            filled=status is FillStatus.FILLED,
            status=status,
            order_id=order_id,
            client_order_id=snap.client_order_id or client_order_id,
            symbol=snap.symbol,
            side=snap.side,
            requested_qty=snap.qty,
            filled_qty=snap.filled_qty,
            fill_price=snap.filled_avg_price if snap.filled_qty > 0 else None,
            filled_at=snap.filled_at,
            detection_method="legacy_polling",
            verification=None,
            elapsed_seconds=self.clock.monotonic() - start,
            api_calls=calls,
            retries=0,
            slippage_pct=None,
            slippage_exceeded=False,
        )

    # ------------------------------------------------------------------ consistency
    def _symbol_lock(self, symbol: str) -> threading.Lock:
        with self._lock:
            return self._symbol_locks.setdefault(symbol, threading.Lock())

    def _ensure_baseline(self, symbol: str, stats: RetryStats) -> None:
        with self._symbol_lock(symbol):
            if self.expected_position(symbol) is not None:
                return
            try:
                qty = self.validator.get_broker_position(symbol, stats=stats)
            except BrokerError as err:
                log_event(
                    self._logger,
                    logging.WARNING,
                    "baseline_unavailable",
                    symbol=symbol,
                    error=str(err),
                )
                return
            with self._lock:
                self._expected.setdefault(symbol, qty)
            log_event(self._logger, logging.INFO, "position_baseline", symbol=symbol, qty=qty)

    def _after_fill(self, intent: _Intent, fill: FillResult) -> ConsistencyResult | None:
        """Book the fill, catch up on our orders still open, then check the broker's position."""
        symbol = intent.symbol
        if not self.config.consistency_check:
            return None
        with self._symbol_lock(symbol):
            with self._lock:
                if symbol not in self._expected:
                    return None  # no baseline: nothing to compare against
                if fill.filled_qty > 0:
                    self._expected[symbol] += _signed(intent.side, fill.filled_qty)
                if fill.order_open:
                    # It may fill more after we stopped watching: remember what we counted.
                    self._open_orders.setdefault(symbol, {})[fill.order_id] = (
                        intent.side,
                        fill.filled_qty,
                    )
            caught_up = self.reconcile_open_orders(symbol)
            if fill.filled_qty <= 0 and not caught_up:
                return None
            with self._lock:
                expected = self._expected[symbol]
                alone = self._inflight.get(symbol, 0) <= 1
                still_open = len(self._open_orders.get(symbol, {}))
            if not alone or still_open:
                # Another order could fill during the check and look like a mismatch; a sync
                # then would count that fill twice. Check when the symbol is quiet.
                log_event(
                    self._logger,
                    logging.INFO,
                    "consistency_deferred",
                    symbol=symbol,
                    order_id=fill.order_id,
                    reason="other orders in flight" if not alone else "orders still open",
                    open_orders=still_open,
                )
                return None
            result = self.validator.validate_fill_consistency(symbol, expected)
            if not result.consistent and result.broker_qty is not None:
                with self._lock:
                    self._expected[symbol] = result.broker_qty
                log_event(
                    self._logger,
                    logging.ERROR,
                    "position_synced",
                    symbol=symbol,
                    old_expected=expected,
                    broker_qty=result.broker_qty,
                    delta=result.broker_qty - expected,
                )
            return result

    def open_orders(self, symbol: str) -> dict[str, Decimal]:
        """Our orders in ``symbol`` that may still fill, with the quantity booked for each."""
        with self._lock:
            return {
                oid: qty for oid, (_side, qty) in self._open_orders.get(symbol.upper(), {}).items()
            }

    def reconcile_open_orders(self, symbol: str) -> bool:
        """Read our orders in ``symbol`` that were still open and book any fill they gained.

        Cumulative ``filled_qty`` only grows, so the new part is the difference from what was
        booked (a stale read showing less is ignored). Orders now terminal are forgotten.
        Returns whether the book changed.
        """
        symbol = symbol.upper()
        with self._lock:
            tracked = dict(self._open_orders.get(symbol, {}))
        changed = False
        for order_id, (side, booked) in tracked.items():
            deadline = self.clock.monotonic() + self.config.consistency_timeout_seconds
            try:
                snap = self.engine.gateway.read(
                    order_id, deadline=deadline, stats=RetryStats(), grace_until=math.inf
                )
            except BrokerError as err:
                log_event(
                    self._logger,
                    logging.WARNING,
                    "open_order_unreadable",
                    symbol=symbol,
                    order_id=order_id,
                    error=str(err),
                )
                continue
            gained = snap.filled_qty - booked
            with self._lock:
                orders = self._open_orders.setdefault(symbol, {})
                if gained > 0:
                    self._expected[symbol] = self._expected.get(symbol, Decimal(0)) + _signed(
                        side, gained
                    )
                    orders[order_id] = (side, snap.filled_qty)
                    changed = True
                if snap.is_terminal:
                    orders.pop(order_id, None)
            if gained > 0 or snap.is_terminal:
                log_event(
                    self._logger,
                    logging.INFO,
                    "open_order_reconciled",
                    symbol=symbol,
                    order_id=order_id,
                    status=snap.status,
                    booked_qty=booked,
                    filled_qty=snap.filled_qty,
                    gained=max(gained, Decimal(0)),
                )
        return changed


def _signed(side: str, qty: Decimal) -> Decimal:
    return qty if side == "buy" else -qty


def _validate(
    symbol: Any,
    side: Any,
    qty: Any,
    order_type: Any,
    limit_price: Any,
    time_in_force: Any,
    expected_price: Any,
    client_order_id: Any,
) -> _Intent:
    """Check every argument; raise InvalidInputError naming the field. No I/O."""
    if not isinstance(symbol, str) or not _SYMBOL.match(symbol.strip().upper()):
        raise InvalidInputError(
            "symbol", f"must be a ticker like 'AAPL' (letters, digits, '.'), got {symbol!r}"
        )
    side_s = _enum_text(side)
    if side_s not in _SIDES:
        raise InvalidInputError("side", f"must be 'buy' or 'sell', got {side!r}")
    qty_d = _positive(qty, "qty")
    if qty_d != qty_d.quantize(Decimal("0.000000001")):
        raise InvalidInputError("qty", f"at most 9 decimal places, got {qty!r}")
    type_s = _enum_text(order_type)
    if type_s not in _TYPES:
        raise InvalidInputError("order_type", f"must be 'market' or 'limit', got {order_type!r}")
    tif_s = _enum_text(time_in_force)
    if tif_s not in _TIFS:
        raise InvalidInputError(
            "time_in_force", f"must be one of {', '.join(_TIFS)}, got {time_in_force!r}"
        )
    limit: Decimal | None = None
    if type_s == "limit":
        if limit_price is None:
            raise InvalidInputError("limit_price", "a limit order needs a limit_price")
        limit = _positive(limit_price, "limit_price")
    elif limit_price is not None:
        raise InvalidInputError("limit_price", "a market order takes no limit_price")
    if qty_d != qty_d.to_integral_value() and tif_s != "day":
        raise InvalidInputError("time_in_force", "fractional quantities must be 'day' orders")
    expected = None if expected_price is None else _positive(expected_price, "expected_price")
    if client_order_id is None:
        coid = str(uuid.uuid4())
    elif not isinstance(client_order_id, str) or not 0 < len(client_order_id) <= _MAX_COID:
        raise InvalidInputError(
            "client_order_id", f"must be a string of 1 to {_MAX_COID} characters"
        )
    else:
        coid = client_order_id
    return _Intent(symbol.strip().upper(), side_s, qty_d, type_s, limit, tif_s, expected, coid)


def _enum_text(value: Any) -> str:
    text = getattr(value, "value", value)
    return text.strip().lower() if isinstance(text, str) else ""


def _positive(value: Any, name: str) -> Decimal:
    if isinstance(value, bool):
        raise InvalidInputError(name, f"must be a number, got {value!r}")
    number = to_decimal(value)
    if number is None:
        raise InvalidInputError(name, f"must be a finite number, got {value!r}")
    if number <= 0:
        raise InvalidInputError(name, f"must be > 0, got {value!r}")
    return number


def _is_duplicate_id(message: str) -> bool:
    # Alpaca says "client_order_id must be unique"; a variant spells "client order id".
    text = message.lower().replace("_", " ")
    return "client order id" in text and "unique" in text
