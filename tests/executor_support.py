"""Shared set-up for the SmartOrderExecutor tests: a fake-time simulator, log capture, faults.

Everything here runs the REAL alpaca-py ``TradingClient`` over the in-process transport, on a
:class:`FakeClock`, so a whole trade (latency, hangs, read timeouts, position lag) takes no
real time. The transport is wrapped to record every HTTP exchange and its outcome, so tests can
compare what the executor logged and reported with what really happened on the wire.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import requests

from fillguard.clock import FakeClock
from fillguard.config import FillDetectionConfig
from fillguard.executor import OrderConfig, SmartOrderExecutor
from fillguard.logs import event_fields, event_name
from fillguard.sim.api import ApiRequest, ApiResponse, SimApi
from fillguard.sim.core import Broker, BrokerConfig, OrderRequest
from fillguard.sim.faults import FaultProfile, profile_from
from fillguard.sim.inprocess import IN_PROCESS_URL, SimAdapter
from fillguard.sim.orders import SimOrder

KEY = "EXEC-TEST-KEY"
SECRET = "EXEC-TEST-SECRET"

#: Error events of the retry manager: every failed exchange through it logs one (a "retry"
#: whose wait runs into the deadline is followed by "retries_exhausted" for the same failure).
ERROR_EVENTS = frozenset({"retry", "call_failed", "retries_exhausted"})

#: One sequence for exchanges and log records, to tell which came first.
_timeline = itertools.count()


# ---------------------------------------------------------------------------------- wire log
@dataclass(frozen=True, slots=True)
class Exchange:
    """One HTTP exchange as the client saw it."""

    method: str
    path: str
    status: int | None  # None when no response arrived (reset, read timeout)
    error: str | None  # the exception type name, when one was raised
    seq: int = 0  # position on the shared timeline (see LogCapture.seq)

    @property
    def failed(self) -> bool:
        """No 2xx answer."""
        return self.status is None or self.status >= 400


class RecordingAdapter(SimAdapter):
    """The in-process transport, remembering every exchange."""

    def __init__(self, api: SimApi) -> None:
        super().__init__(api)
        self.exchanges: list[Exchange] = []

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        path = (request.url or "").removeprefix(IN_PROCESS_URL).split("?")[0]
        method = (request.method or "GET").upper()
        try:
            response = super().send(request, *args, **kwargs)
        except requests.RequestException as exc:
            self.exchanges.append(Exchange(method, path, None, type(exc).__name__, next(_timeline)))
            raise
        self.exchanges.append(Exchange(method, path, response.status_code, None, next(_timeline)))
        return response


# ---------------------------------------------------------------------------------- scripting
Rule = Callable[[ApiRequest], ApiResponse | None]


def answer_with(
    status: int,
    *,
    method: str,
    path: str,
    times: int = 1,
    body: bytes = b'{"code":50310000,"message":"service unavailable"}',
    reset: bool = False,
    delay: float = 0.0,
) -> Rule:
    """A rule answering the first ``times`` ``method`` requests to ``path`` with ``status``.

    ``reset`` drops the connection instead; ``delay`` longer than the client's read timeout
    makes it a hang. Nothing reaches the broker for those requests (a failure BEFORE apply).
    """
    left = [times]

    def rule(req: ApiRequest) -> ApiResponse | None:
        if left[0] > 0 and req.method == method and req.path.rstrip("/") == path:
            left[0] -= 1
            return ApiResponse(
                status,
                body,
                (("content-type", "application/json"),),
                delay=delay,
                fault="reset" if reset else None,
            )
        return None

    return rule


def script(api: SimApi, *rules: Rule) -> None:
    """Let ``rules`` answer requests before the simulator does (first rule that answers wins)."""
    inner = api.handle

    def handle(req: ApiRequest) -> ApiResponse:
        for rule in rules:
            answer = rule(req)
            if answer is not None:
                api.requests_total += 1
                if req.method == "POST" and req.path.rstrip("/") == "/v2/orders":
                    api.broker.record_post(_coid(req), None, f"scripted:{answer.status}")
                return answer
        return inner(req)

    api.handle = handle  # type: ignore[method-assign]


def _coid(req: ApiRequest) -> str | None:
    import json

    try:
        data = json.loads(req.body)
    except ValueError:
        return None
    value = data.get("client_order_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


# ---------------------------------------------------------------------------------- the rig
def fast_config(*, use_engine: bool = True, timeout: float = 5.0, **overrides: Any) -> OrderConfig:
    """An OrderConfig with short intervals (fake time makes them free anyway)."""
    detection: dict[str, Any] = {
        "timeout_seconds": timeout,
        "request_timeout_seconds": 2.0,
        "initial_poll_interval": 0.05,
        "poll_interval_increase": 0.05,
        "max_poll_interval": 0.5,
        "retry_base_delay": 0.05,
        "retry_max_delay": 0.5,
        "final_verification_seconds": 5.0,
        "not_found_grace_seconds": 2.0,
        # The request budget has its own tests; here it would only add fake-time waits.
        "rate_limit_per_minute": None,
    }
    for name in list(overrides):
        if name in FillDetectionConfig.__dataclass_fields__:
            detection[name] = overrides.pop(name)
    settings: dict[str, Any] = {
        "consistency_timeout_seconds": 3.0,
        "consistency_initial_delay": 0.05,
        "consistency_max_delay": 0.5,
        "lookup_spacing_seconds": 0.3,
    }
    settings.update(overrides)
    return OrderConfig(
        fill_detection=FillDetectionConfig(**detection),
        use_fill_detection_engine=use_engine,
        **settings,
    )


@dataclass
class Rig:
    """A broker on a fake clock, the real SDK client over it, and an executor."""

    clock: FakeClock
    broker: Broker
    api: SimApi
    client: Any
    adapter: RecordingAdapter
    executor: SmartOrderExecutor
    coids: list[str] = field(default_factory=list)

    def advance(self, seconds: float) -> None:
        """Move fake time and let the broker apply what is due."""
        self.clock.advance(seconds)
        self.broker.advance()

    def trade(self, symbol: str, side: str, qty: Any, **kwargs: Any) -> Any:
        """``executor.execute_trade`` remembering the client_order_id of the trade."""
        result = self.executor.execute_trade(symbol, side, qty, **kwargs)
        self.coids.append(result.client_order_id)
        return result

    def outside_fill(self, symbol: str, side: str, qty: Decimal) -> SimOrder:
        """A trade the executor does not know about, straight into the broker, filled."""
        order = self.broker.submit(
            OrderRequest(symbol=symbol, side=side, type="market", time_in_force="day", qty=qty)
        )
        self.advance(2.0 + self.broker.faults.position_lag_seconds)
        return order

    def orders_of(self, coid: str) -> list[SimOrder]:
        """Every broker order with this client_order_id (more than one would be a duplicate)."""
        return [o for o in self.broker.list_orders() if o.client_order_id == coid]

    def position(self, symbol: str) -> Decimal:
        """The broker's true (not lagged) position."""
        position = self.broker.positions.get(symbol)
        return position.qty if position is not None else Decimal(0)

    def posts(self, coid: str) -> list[dict[str, Any]]:
        """Every POST /v2/orders the simulator received for ``coid``."""
        return list(self.broker.posts.get(coid, []))


def make_rig(
    *,
    faults: FaultProfile | str | Mapping[str, Any] | None = None,
    seed: int = 0,
    config: OrderConfig | None = None,
    key: str = KEY,
    secret: str = SECRET,
    server_key: str | None = None,
    server_secret: str | None = None,
    broker_config: BrokerConfig | None = None,
) -> Rig:
    """A fresh fake-time simulator and an executor with the real SDK client over it.

    ``server_key`` / ``server_secret`` (default: the client's) let a test make auth fail.
    """
    from alpaca.trading.client import TradingClient

    clock = FakeClock()
    broker = Broker(
        clock=clock,
        seed=seed,
        config=broker_config,
        faults=profile_from(dict(faults) if isinstance(faults, Mapping) else faults),
    )
    api = SimApi(
        broker,
        key_id=server_key or key,
        secret_key=server_secret or secret,
        rate_limit=None,
    )
    client = TradingClient(key, secret, url_override=IN_PROCESS_URL)
    adapter = RecordingAdapter(api)
    client._session.mount(IN_PROCESS_URL, adapter)
    executor = SmartOrderExecutor(client, config or fast_config(), clock=clock)
    return Rig(clock, broker, api, client, adapter, executor)


# ---------------------------------------------------------------------------------- logs
class LogCapture(logging.Handler):
    """Keeps every record it sees."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        record.fg_seq = next(_timeline)
        self.records.append(record)

    @staticmethod
    def seq(record: logging.LogRecord) -> int:
        """The record's position on the timeline shared with :class:`Exchange`."""
        value = getattr(record, "fg_seq", 0)
        return value if isinstance(value, int) else 0

    def clear(self) -> None:
        """Forget what was captured."""
        self.records.clear()

    def events(self, name: str | None = None) -> list[logging.LogRecord]:
        """fillguard event records, all or those called ``name``."""
        return [
            r
            for r in self.records
            if event_name(r) is not None and (name is None or event_name(r) == name)
        ]

    def fields(self, name: str) -> list[dict[str, Any]]:
        """The fields of every ``name`` event, in order."""
        return [event_fields(r) for r in self.events(name)]

    def names(self) -> list[str]:
        """Event names in order."""
        return [n for r in self.records if (n := event_name(r)) is not None]


@contextmanager
def capture_logs(*handlers: logging.Handler) -> Iterator[LogCapture]:
    """Capture every record under the ``fillguard`` logger at DEBUG (plus extra ``handlers``)."""
    logger = logging.getLogger("fillguard")
    capture = LogCapture()
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    for handler in (capture, *handlers):
        logger.addHandler(handler)
    try:
        yield capture
    finally:
        for handler in (capture, *handlers):
            logger.removeHandler(handler)
        logger.setLevel(old_level)
