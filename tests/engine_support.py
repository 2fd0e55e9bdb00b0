"""Shared set-up for the fill detection engine tests: scripted clients, log capture, sim rigs."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from fillguard import FillDetectionConfig, FillDetectionEngine, FillResult, FillStatus
from fillguard.clock import Clock, FakeClock
from fillguard.logs import event_fields, event_name
from fillguard.sim.api import SimApi
from fillguard.sim.core import Broker, BrokerConfig, OrderRequest
from fillguard.sim.faults import FaultProfile, profile_from
from fillguard.sim.inprocess import in_process_client
from fillguard.sim.orders import SimOrder

ORDER_ID = "00000000-0000-0000-0000-000000000001"


def fast_config(**overrides: Any) -> FillDetectionConfig:
    """Small, quick settings for tests (fake or real time); ``overrides`` win."""
    values: dict[str, Any] = {
        "timeout_seconds": 2.0,
        "initial_poll_interval": 0.1,
        "poll_interval_increase": 0.1,
        "max_poll_interval": 0.5,
        "max_retries": 3,
        "retry_base_delay": 0.05,
        "retry_max_delay": 0.4,
        "request_timeout_seconds": 1.0,
        "final_verification_seconds": 1.0,
        "not_found_grace_seconds": 0.5,
        # The request budget has its own tests; here it would only add fake-time waits.
        "rate_limit_per_minute": None,
    }
    values.update(overrides)
    return FillDetectionConfig(**values)


# ---------------------------------------------------------------------------------- clients
Step = Any  # an order (dict, model, object), an exception to raise, or a callable giving one


def _play(step: Step) -> Any:
    if callable(step) and not isinstance(step, type):
        step = step()
    if isinstance(step, BaseException):
        raise step
    return step


class ScriptedClient:
    """A TradingClient-shaped fake that answers from scripts, in order.

    ``reads`` answer ``get_order_by_id`` one by one; the last one repeats once the script is
    used up. ``cancels`` answer ``cancel_order_by_id`` the same way (default: None, a 204).
    A step is an order in any shape, an exception (raised), or a zero-argument callable
    returning either. ``activities`` (if given) answers ``get`` on the FILL activities path;
    without it the client has no ``get`` attribute at all. ``read_cost`` advances a FakeClock
    per read (network time). Every call is recorded with the clock time it was made at.
    """

    def __init__(
        self,
        reads: Sequence[Step],
        *,
        cancels: Sequence[Step] = (),
        clock: FakeClock | None = None,
        read_cost: float = 0.0,
        on_cancel: Callable[[], None] | None = None,
    ) -> None:
        if not reads:
            raise ValueError("a script needs at least one read")
        self._reads = list(reads)
        self._cancels = list(cancels)
        self.clock = clock
        self.read_cost = read_cost
        self.on_cancel = on_cancel
        self.calls: list[tuple[str, float | None]] = []
        self._lock = threading.Lock()

    def _now(self) -> float | None:
        return self.clock.monotonic() if self.clock is not None else None

    def _next(self, script: list[Step], default: Step) -> Step:
        with self._lock:
            if not script:
                return default
            return script.pop(0) if len(script) > 1 else script[0]

    def get_order_by_id(self, order_id: str) -> Any:
        """The next scripted read."""
        self.calls.append(("get_order_by_id", self._now()))
        if self.clock is not None and self.read_cost:
            self.clock.advance(self.read_cost)
        return _play(self._next(self._reads, None))

    def cancel_order_by_id(self, order_id: str) -> Any:
        """The next scripted cancel answer (None: accepted)."""
        self.calls.append(("cancel_order_by_id", self._now()))
        if self.on_cancel is not None:
            self.on_cancel()
        return _play(self._next(self._cancels, None))

    def count(self, name: str) -> int:
        """How many calls of ``name`` were made."""
        return sum(1 for n, _ in self.calls if n == name)

    def times(self, name: str) -> list[float]:
        """Clock times of the calls of ``name``."""
        return [t for n, t in self.calls if n == name and t is not None]


class ActivitiesClient(ScriptedClient):
    """A :class:`ScriptedClient` that also lists FILL activities through ``get``."""

    def __init__(self, reads: Sequence[Step], *, activities: Step, **kwargs: Any) -> None:
        super().__init__(reads, **kwargs)
        self.activities = activities
        self.get_paths: list[str] = []

    def get(self, path: str, data: Any = None) -> Any:
        """``RESTClient.get``: only the FILL activities are scripted."""
        self.calls.append(("get", self._now()))
        self.get_paths.append(path)
        return _play(self.activities)


class Timeline:
    """Reads that depend on fake time: ``[(t, order), ...]``, the latest with ``t <= now``.

    ``t`` is seconds since the timeline was made (the test's start).
    """

    def __init__(self, clock: FakeClock, points: Sequence[tuple[float, Step]]) -> None:
        self.clock = clock
        self.t0 = clock.monotonic()
        self.points = sorted(points, key=lambda p: p[0])

    def __call__(self) -> Any:
        now = self.clock.monotonic() - self.t0
        current: Step = self.points[0][1]
        for t, value in self.points:
            if t <= now + 1e-12:
                current = value
        return _play(current)


# ---------------------------------------------------------------------------------- logs
class LogCapture(logging.Handler):
    """Keeps every record under the ``fillguard`` logger."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._lock_records = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._lock_records:
            self.records.append(record)

    def clear(self) -> None:
        """Forget everything captured so far."""
        with self._lock_records:
            self.records.clear()

    def names(self) -> list[str]:
        """fillguard event names, in order."""
        return [n for r in list(self.records) if (n := event_name(r)) is not None]

    def fields(self, name: str) -> list[dict[str, Any]]:
        """Fields of every ``name`` event, in order."""
        return [event_fields(r) for r in list(self.records) if event_name(r) == name]

    def levels(self, name: str) -> list[int]:
        """Log levels of every ``name`` event."""
        return [r.levelno for r in list(self.records) if event_name(r) == name]


@contextmanager
def capture_logs(level: int = logging.DEBUG) -> Iterator[LogCapture]:
    """Capture fillguard records at ``level`` and above for the ``with`` block."""
    logger = logging.getLogger("fillguard")
    capture = LogCapture()
    old = logger.level
    logger.setLevel(level)
    logger.addHandler(capture)
    try:
        yield capture
    finally:
        logger.removeHandler(capture)
        logger.setLevel(old)


# ---------------------------------------------------------------------------------- sim rigs
@dataclass
class FakeRig:
    """A broker core on a FakeClock, its API, the real alpaca-py client in-process, an engine."""

    clock: FakeClock
    broker: Broker
    api: SimApi
    client: Any
    engine: FillDetectionEngine
    config: FillDetectionConfig
    submitted: dict[str, float] = field(default_factory=dict)

    def submit(
        self,
        *,
        qty: str | Decimal = "3",
        side: str = "buy",
        type: str = "market",
        limit_price: str | Decimal | None = None,
        symbol: str = "AAPL",
        time_in_force: str = "day",
    ) -> SimOrder:
        """Place an order straight on the broker core (no faults on the submit)."""
        order = self.broker.submit(
            OrderRequest(
                symbol=symbol,
                side=side,
                type=type,
                time_in_force=time_in_force,
                qty=Decimal(qty),
                limit_price=None if limit_price is None else Decimal(limit_price),
            )
        )
        self.submitted[order.id] = self.broker.t()
        return order

    def truth(self, order_id: str) -> SimOrder:
        """The broker's own record of the order as of now."""
        self.broker.advance()
        return self.broker.orders[order_id]


def make_rig(
    *,
    seed: int = 0,
    faults: FaultProfile | str | dict[str, Any] | None = None,
    config: FillDetectionConfig | None = None,
    raw_data: bool = False,
    broker_config: BrokerConfig | None = None,
    rate_limit: int | None = None,
) -> FakeRig:
    """A :class:`FakeRig` with the given faults and engine settings."""
    clock = FakeClock()
    broker = Broker(clock=clock, seed=seed, faults=profile_from(faults), config=broker_config)
    api = SimApi(broker, key_id="K", secret_key="S", rate_limit=rate_limit)
    client = in_process_client(api, raw_data=raw_data)
    cfg = config or fast_config()
    engine = FillDetectionEngine(client, cfg, clock=clock, rng=random.Random(seed))
    return FakeRig(clock, broker, api, client, engine, cfg)


def qty_at(order: SimOrder, t: float) -> Decimal:
    """Filled quantity of ``order`` as of broker time ``t``."""
    return sum((e.qty for e in order.executions if e.mono <= t), Decimal(0))


def assert_matches_ledger(result: FillResult, order: SimOrder) -> None:
    """A settled result agrees with the broker's record: status, quantity, average price."""
    assert result.order_id == order.id
    assert result.filled_qty == order.filled_qty, (result, order.status, order.filled_qty)
    expected_price = order.filled_avg_price if order.filled_qty > 0 else None
    assert result.fill_price == expected_price, (result.fill_price, expected_price)
    if result.status is FillStatus.FILLED:
        assert order.status == "filled"
        assert result.filled
    else:
        assert not result.filled


def wall_clock() -> Clock:
    """The real clock (for the tests that need threads to really wait)."""
    from fillguard.clock import SystemClock

    return SystemClock()
