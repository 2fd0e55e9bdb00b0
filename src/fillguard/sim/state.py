"""The broker core's state, time and events: what every part of the paper broker shares.

:class:`BrokerState` holds the account, orders, executions, positions and the action queue on
an injected clock and seeded RNG; the lifecycle, replace and read parts of the broker build on
it (:mod:`fillguard.sim.lifecycle`, :mod:`fillguard.sim.replace`, :mod:`fillguard.sim.views`).
Time only moves when the caller says so: :meth:`BrokerState.advance` applies every scheduled
action that is due at the clock's current time, in order. Every transition emits one trade event.
"""

from __future__ import annotations

import heapq
import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from fillguard.clock import Clock
from fillguard.sim import wire
from fillguard.sim.assets import DEFAULT_UNIVERSE, AssetUniverse, asset_id_for
from fillguard.sim.faults import CALM, FaultProfile, FaultRng, Latency
from fillguard.sim.orders import TRANSITIONS, Execution, SimOrder, SimPosition
from fillguard.sim.prices import PricePath
from fillguard.sim.store import EventLog, OrderStore

__all__ = [
    "BrokerConfig",
    "BrokerState",
    "OrderRequest",
    "SimError",
    "TradeEventRecord",
    "asset_id_for",
]

FILL_EVENTS = frozenset({"fill", "partial_fill"})
ACCOUNT_CONFIG_DEFAULTS: dict[str, Any] = {
    "dtbp_check": "entry",
    "trade_confirm_email": "all",
    "suspend_trade": False,
    "no_shorting": False,
    "fractional_trading": True,
    "max_margin_multiplier": "1",
    "max_options_trading_level": 0,
    "pdt_check": "entry",
    "ptp_no_exception_entry": False,
}


@dataclass(frozen=True, kw_only=True, slots=True)
class BrokerConfig:
    """Behaviour of the paper broker (not faults: those live in :class:`FaultProfile`)."""

    starting_cash: Decimal = Decimal("1000000")
    route_latency: Latency = Latency("uniform", 0.002, 0.01)
    fill_latency: Latency = Latency("uniform", 0.02, 0.12)
    partial_gap: Latency = Latency("uniform", 0.01, 0.08)
    cancel_latency: Latency = Latency("uniform", 0.03, 0.15)
    # From a PATCH to the original order becoming replaced (and its replacement routing).
    replace_latency: Latency = Latency("uniform", 0.03, 0.15)
    market_slippage_bps: float = 5.0
    price_tick_seconds: float = 1.0
    price_volatility: float = 0.001
    initial_prices: tuple[tuple[str, Decimal], ...] = ()
    allow_shorting: bool = True
    # Day orders expire this many seconds after the broker starts (None: the session never ends).
    session_seconds: float | None = None
    # New York sessions (pre, regular, after-hours; holidays) on the broker's clock; False: the
    # market never closes (the tests' default, and today's behaviour).
    market_hours: bool = False
    assets: AssetUniverse = DEFAULT_UNIVERSE
    # Memory bounds: trade events kept in memory (between this and twice this; None: all),
    # and how long a finished order keeps its version history (stale reads look back).
    retain_events: int | None = 20_000
    retain_versions_seconds: float = 60.0
    account_id: str = "a1b2c3d4-0000-4000-8000-00000000f111"
    account_number: str = "PA3FILLGUARD"


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderRequest:
    """A validated order submission."""

    symbol: str
    side: str
    type: str
    time_in_force: str
    qty: Decimal  # 0 for a notional order until it fills
    limit_price: Decimal | None = None
    client_order_id: str | None = None
    extended_hours: bool = False
    stop_price: Decimal | None = None
    trail_price: Decimal | None = None
    trail_percent: Decimal | None = None
    notional: Decimal | None = None
    order_class: str = ""  # "", bracket, oco or oto
    take_profit: Decimal | None = None  # the take-profit leg's limit_price
    stop_loss: tuple[Decimal, Decimal | None] | None = None  # the stop leg's stop and limit
    position_intent: str | None = None


class SimError(Exception):
    """A request the broker refuses: HTTP status, Alpaca code, message, extra body fields.

    ``fault`` names the fault knob that made the refusal, if one did (for logs and tests).
    """

    def __init__(
        self, status: int, code: int, message: str, *, fault: str | None = None, **extra: Any
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fault = fault
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """Alpaca's error body."""
        return {**self.extra, "code": self.code, "message": self.message}


class DuplicateClientOrderIdError(SimError):
    """422 40010001: the client_order_id is taken (by ``existing``, still known to the broker)."""

    def __init__(self, existing: SimOrder) -> None:
        super().__init__(422, 40010001, "client_order_id must be unique")
        self.existing = existing


@dataclass(frozen=True, slots=True)
class TradeEventRecord:
    """One trade_updates event: the full order plus per-execution values on fills.

    ``style`` is how the event's timestamps are written on the wire (``micro``, ``nanos`` or
    ``offset``), fixed when the event happens.
    """

    seq: int
    event: str
    mono: float
    timestamp: datetime
    order: dict[str, Any]
    execution_id: str | None = None
    qty: Decimal | None = None
    price: Decimal | None = None
    position_qty: Decimal | None = None
    style: str = "micro"

    def message(self) -> dict[str, Any]:
        """The wire message ``{"stream": "trade_updates", "data": {...}}``."""
        data: dict[str, Any] = {
            "event": self.event,
            "timestamp": wire.ts_styled(self.timestamp, self.style),
            "order": wire.restyle(self.order, self.style),
        }
        if self.execution_id is not None:
            data["execution_id"] = self.execution_id
            data["qty"] = wire.num(self.qty)
            data["price"] = wire.num(self.price)
            data["position_qty"] = wire.num(self.position_qty)
        return {"stream": "trade_updates", "data": data}


@dataclass(order=True, slots=True)
class Action:
    """A scheduled broker action: due time, tie-break sequence, kind and its arguments."""

    due: float
    seq: int
    kind: str = field(compare=False)
    order_id: str = field(compare=False, default="")
    qty: Decimal = field(compare=False, default=Decimal(0))
    gen: int = field(compare=False, default=0)  # the order's fill or session generation


@dataclass(slots=True)
class PositionEntry:
    """A position after one execution; ``extra_lag`` delays it on REST (position_long_lag)."""

    t: float
    qty: Decimal
    avg_entry_price: Decimal
    extra_lag: float = 0.0


class BrokerState:
    """State, time and events of the paper broker. Every public method holds one re-entrant lock."""

    def __init__(
        self,
        *,
        clock: Clock,
        seed: int = 0,
        config: BrokerConfig | None = None,
        faults: FaultProfile | None = None,
    ) -> None:
        self.clock = clock
        self.seed = seed
        self.config = config or BrokerConfig()
        self.lock = threading.RLock()
        self._listeners: list[Callable[[TradeEventRecord], None]] = []
        self._reset_state(faults or CALM)

    # ------------------------------------------------------------------ state and time
    def _reset_state(self, faults: FaultProfile) -> None:
        self.faults = faults
        self.rng = FaultRng(self.seed)
        self._ids = random.Random(f"fillguard-ids/{self.seed}")
        self._coids = random.Random(f"fillguard-client-order-ids/{self.seed}")
        # Orders made by "another client" (external_replace) mint their client_order_ids here,
        # so the knob never shifts the ids minted for the client's own orders.
        self._external_coids = random.Random(f"fillguard-external-client-order-ids/{self.seed}")
        self._mono0 = self.clock.monotonic()
        self.prices = PricePath(
            self.seed,
            tick_seconds=self.config.price_tick_seconds,
            volatility=self.config.price_volatility,
            initial=dict(self.config.initial_prices),
        )
        self.cash = self.config.starting_cash
        # Every order by id, plus the open-order index and running buy holds (O(result) reads).
        self.orders = OrderStore()
        self.by_client_id: dict[str, str] = {}
        self.positions: dict[str, SimPosition] = {}
        self._position_history: dict[str, list[PositionEntry]] = {}
        self.executions: list[Execution] = []
        self.posts: dict[str, list[dict[str, Any]]] = {}
        # Every PATCH /v2/orders/{id} received (and every external replace), per order id.
        self.patches: dict[str, list[dict[str, Any]]] = {}
        self.events: EventLog = EventLog(self.config.retain_events)
        self._queue: list[Action] = []
        self._seq = 0
        self._tick_scheduled = False
        self._fills_pending: dict[str, int] = {}
        # Key of the per-order fault draws: the client's orders are numbered 0, 1, 2...;
        # orders of "another client" get keys of their own, so they never shift the numbers.
        self._order_no: dict[str, int | str] = {}
        self._client_orders = 0
        self._external_orders = 0
        # The read faults that shaped the current request's answer (the API names them).
        self.read_faults: set[str] = set()
        # GET|PATCH /v2/account/configurations (no_shorting, fractional_trading, suspend_trade
        # are enforced; the rest is kept and echoed).
        self.account_config: dict[str, Any] = dict(ACCOUNT_CONFIG_DEFAULTS)

    def reset(self, faults: FaultProfile | None = None) -> None:
        """Forget everything (orders, positions, cash) and restart the price path at tick 0."""
        with self.lock:
            self._reset_state(faults or self.faults)

    def set_faults(self, faults: FaultProfile) -> None:
        """Switch the fault profile; state is kept."""
        with self.lock:
            self.faults = faults

    def subscribe(self, listener: Callable[[TradeEventRecord], None]) -> Callable[[], None]:
        """Call ``listener`` with every new trade event; returns an unsubscribe function."""
        with self.lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self.lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def t(self) -> float:
        """Seconds since the broker started, on its clock."""
        return self.clock.monotonic() - self._mono0

    def _new_id(self) -> str:
        return str(uuid.UUID(int=self._ids.getrandbits(128), version=4))

    def _mint_client_order_id(self, rng: random.Random | None = None) -> str:
        # From the seed (not uuid4), so a run without client_order_ids replays identically.
        source = rng or self._coids
        while True:
            coid = str(uuid.UUID(int=source.getrandbits(128), version=4))
            if coid not in self.by_client_id:
                return coid

    def _number(self, order_id: str, *, external: bool = False) -> None:
        if external:
            self._order_no[order_id] = f"external/{self._external_orders}"
            self._external_orders += 1
        else:
            self._order_no[order_id] = self._client_orders
            self._client_orders += 1

    def draw(self, order: SimOrder, name: str) -> random.Random:
        """The keyed stream of knob ``name`` for ``order`` (see :meth:`FaultRng.keyed`)."""
        return self.rng.keyed(name, self._order_no[order.id])

    def hits(self, order: SimOrder, name: str, rate: float) -> bool:
        """Whether per-order knob ``name`` at ``rate`` hits ``order`` (its draw is cached)."""
        if rate <= 0.0:
            return False
        if rate >= 1.0:
            return True
        value = order.draws.get(name)
        if value is None:
            value = order.draws[name] = self.draw(order, name).random()
        return value < rate

    def _schedule(
        self,
        due: float,
        kind: str,
        order_id: str = "",
        qty: Decimal = Decimal(0),
        gen: int = 0,
    ) -> None:
        self._seq += 1
        heapq.heappush(self._queue, Action(due, self._seq, kind, order_id, qty, gen))

    def next_due(self) -> float | None:
        """Broker time of the next scheduled action, or None."""
        with self.lock:
            return self._queue[0].due if self._queue else None

    def advance(self) -> None:
        """Apply every scheduled action due by now, in time order."""
        with self.lock:
            now = self.t()
            while self._queue and self._queue[0].due <= now:
                action = heapq.heappop(self._queue)
                self._run(action)

    def _run(self, action: Action) -> None:
        raise NotImplementedError  # the lifecycle plays the actions

    # ------------------------------------------------------------------ events
    def _wall(self, t: float) -> datetime:
        # Wall time of broker time t (actions run "late" when advanced lazily; stamp them
        # with when they were due, so timestamps are reproducible under a fake clock).
        wall_at = getattr(self.clock, "wall_at", None)
        if wall_at is not None:  # a scaled clock: wall time is a function of monotonic time
            when: datetime = wall_at(self._mono0 + t)
            return when
        return self.clock.now() - timedelta(seconds=self.t() - t)

    def _event_style(self) -> str:
        style = self.faults.timestamp_style
        if style != "mixed":
            return style
        return wire.pick_style(style, self.rng.stream("timestamp_style_event"))

    def _emit(
        self, order: SimOrder, event: str, t: float, execution: Execution | None = None
    ) -> None:
        snapshot = wire.order_json(order)
        if execution is not None:
            # The half-update fault shows a mix of this version and the one before it.
            previous = order.versions[-1][1] if order.versions else snapshot
            order.half_base = (t, previous)
        else:
            order.half_base = None  # a later write completes the half-written record
        # Every version is kept (the snapshot is shared with the event record, so this costs
        # a list slot): a stale read must find the version current at its cutoff.
        order.versions.append((t, snapshot))
        record = TradeEventRecord(
            seq=self.events.total + 1,
            event=event,
            mono=t,
            timestamp=self._wall(t),
            order=snapshot,
            execution_id=execution.execution_id if execution else None,
            qty=execution.qty if execution else None,
            price=execution.price if execution else None,
            position_qty=execution.position_qty if execution else None,
            style=self._event_style(),
        )
        self.events.append(record)
        horizon = max(self.config.retain_versions_seconds, self.faults.stale_read_seconds)
        self.orders.retire(t, horizon)
        for listener in list(self._listeners):
            listener(record)

    def _transition(self, order: SimOrder, status: str, t: float, event: str | None = None) -> None:
        if status != order.status or status == "partially_filled":
            allowed = TRANSITIONS[order.status]
            if status not in allowed:
                raise AssertionError(f"illegal transition {order.status} -> {status}")
        order.status = status
        when = self._wall(t)
        if order.updated_at is not None and when < order.updated_at:
            # Wall time is derived from "now" at each call: two versions due at the same
            # broker instant may come out a microsecond apart in either order. An order's
            # versions are stamped in order, as Alpaca's are.
            when = order.updated_at
        order.updated_at = when
        if status == "canceled":
            order.canceled_at = when
        elif status == "expired":
            order.expired_at = when
        elif status == "rejected":
            order.failed_at = when
        elif status == "replaced":
            order.replaced_at = when
        self._emit(order, event or status, t)
