"""The simulator's broker core: pure paper-broker state on an injected clock and seeded RNG.

No sockets here. The core holds the account, orders, executions and positions, and plays
Alpaca's order lifecycle: ``accepted`` at submit, ``pending_new`` and ``new`` after a routing
latency, fills after a fill latency (in several executions when the partial-fill fault fires),
limit orders filling when the seeded price path crosses, and cancel as a *request*
(``pending_cancel`` first, ``canceled`` after a cancel latency unless a fill lands first).

Time only moves when the caller says so: :meth:`Broker.advance` applies every scheduled
action that is due at the clock's current time, in order. Every public method advances first,
so a reader always sees the state as of "now". Every transition emits one trade event.
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
from fillguard.sim.faults import CALM, FaultProfile, FaultRng, Latency
from fillguard.sim.orders import (
    CANCELABLE,
    QTY_QUANTUM,
    TRANSITIONS,
    Execution,
    SimOrder,
    SimPosition,
)
from fillguard.sim.prices import PricePath, round_price

__all__ = ["Broker", "BrokerConfig", "OrderRequest", "SimError", "TradeEventRecord"]


@dataclass(frozen=True, kw_only=True, slots=True)
class BrokerConfig:
    """Behaviour of the paper broker (not faults: those live in :class:`FaultProfile`)."""

    starting_cash: Decimal = Decimal("1000000")
    route_latency: Latency = Latency("uniform", 0.002, 0.01)
    fill_latency: Latency = Latency("uniform", 0.02, 0.12)
    partial_gap: Latency = Latency("uniform", 0.01, 0.08)
    cancel_latency: Latency = Latency("uniform", 0.03, 0.15)
    market_slippage_bps: float = 5.0
    price_tick_seconds: float = 1.0
    price_volatility: float = 0.001
    initial_prices: tuple[tuple[str, Decimal], ...] = ()
    allow_shorting: bool = True
    # Day orders expire this many seconds after the broker starts (None: the session never ends).
    session_seconds: float | None = None
    account_id: str = "a1b2c3d4-0000-4000-8000-00000000f111"
    account_number: str = "PA3FILLGUARD"


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderRequest:
    """A validated order submission."""

    symbol: str
    side: str
    type: str
    time_in_force: str
    qty: Decimal
    limit_price: Decimal | None = None
    client_order_id: str | None = None
    extended_hours: bool = False


class SimError(Exception):
    """A request the broker refuses: HTTP status, Alpaca code, message, extra body fields."""

    def __init__(self, status: int, code: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """Alpaca's error body."""
        return {**self.extra, "code": self.code, "message": self.message}


@dataclass(frozen=True, slots=True)
class TradeEventRecord:
    """One trade_updates event: the full order plus per-execution values on fills."""

    seq: int
    event: str
    mono: float
    timestamp: datetime
    order: dict[str, Any]
    execution_id: str | None = None
    qty: Decimal | None = None
    price: Decimal | None = None
    position_qty: Decimal | None = None

    def message(self) -> dict[str, Any]:
        """The wire message ``{"stream": "trade_updates", "data": {...}}``."""
        data: dict[str, Any] = {
            "event": self.event,
            "timestamp": wire.ts(self.timestamp),
            "order": self.order,
        }
        if self.execution_id is not None:
            data["execution_id"] = self.execution_id
            data["qty"] = wire.num(self.qty)
            data["price"] = wire.num(self.price)
            data["position_qty"] = wire.num(self.position_qty)
        return {"stream": "trade_updates", "data": data}


@dataclass(order=True, slots=True)
class _Action:
    due: float
    seq: int
    kind: str = field(compare=False)
    order_id: str = field(compare=False, default="")
    qty: Decimal = field(compare=False, default=Decimal(0))


def asset_id_for(symbol: str) -> str:
    """A stable asset UUID per symbol."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"fillguard/asset/{symbol}"))


class Broker:
    """The paper broker. Thread-safe: every public method holds one re-entrant lock."""

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
        self._mono0 = self.clock.monotonic()
        self.prices = PricePath(
            self.seed,
            tick_seconds=self.config.price_tick_seconds,
            volatility=self.config.price_volatility,
            initial=dict(self.config.initial_prices),
        )
        self.cash = self.config.starting_cash
        self.orders: dict[str, SimOrder] = {}
        self.by_client_id: dict[str, str] = {}
        self.positions: dict[str, SimPosition] = {}
        self._position_history: dict[str, list[tuple[float, Decimal, Decimal]]] = {}
        self.executions: list[Execution] = []
        self.posts: dict[str, list[dict[str, Any]]] = {}
        self.events: list[TradeEventRecord] = []
        self._queue: list[_Action] = []
        self._seq = 0
        self._tick_scheduled = False
        self._fills_pending: dict[str, int] = {}
        # Order number per order id: the key of the per-order fault draws.
        self._order_no: dict[str, int] = {}

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

    def _mint_client_order_id(self) -> str:
        # From the seed (not uuid4), so a run without client_order_ids replays identically.
        while True:
            coid = str(uuid.UUID(int=self._coids.getrandbits(128), version=4))
            if coid not in self.by_client_id:
                return coid

    def _schedule(
        self, due: float, kind: str, order_id: str = "", qty: Decimal = Decimal(0)
    ) -> None:
        self._seq += 1
        heapq.heappush(self._queue, _Action(due, self._seq, kind, order_id, qty))

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

    def _run(self, action: _Action) -> None:
        order = self.orders.get(action.order_id)
        if action.kind == "tick":
            self._tick_scheduled = False
            self._check_limits(action.due)
        elif order is None:
            return
        elif action.kind == "route":
            self._route(order, action.due)
        elif action.kind == "fill":
            self._fills_pending[order.id] = self._fills_pending.get(order.id, 1) - 1
            self._execute(order, action.qty, action.due)
        elif action.kind == "cancel_done":
            if order.status == "pending_cancel":
                self._transition(order, "canceled", action.due)
        elif action.kind == "ioc_cancel":
            if order.status in CANCELABLE:
                self._transition(order, "canceled", action.due)
        elif action.kind == "expire" and order.is_open and order.status != "pending_cancel":
            self._transition(order, "expired", action.due)

    # ------------------------------------------------------------------ events
    def _wall(self, t: float) -> datetime:
        # Wall time of broker time t (actions run "late" when advanced lazily; stamp them
        # with when they were due, so timestamps are reproducible under a fake clock).
        return self.clock.now() - timedelta(seconds=self.t() - t)

    def _emit(
        self, order: SimOrder, event: str, t: float, execution: Execution | None = None
    ) -> None:
        snapshot = wire.order_json(order)
        # Every version is kept (the snapshot is shared with the event record, so this costs
        # a list slot): a stale read must find the version current at its cutoff.
        order.versions.append((t, snapshot))
        record = TradeEventRecord(
            seq=len(self.events) + 1,
            event=event,
            mono=t,
            timestamp=self._wall(t),
            order=snapshot,
            execution_id=execution.execution_id if execution else None,
            qty=execution.qty if execution else None,
            price=execution.price if execution else None,
            position_qty=execution.position_qty if execution else None,
        )
        self.events.append(record)
        for listener in list(self._listeners):
            listener(record)

    def _transition(self, order: SimOrder, status: str, t: float, event: str | None = None) -> None:
        if status != order.status or status == "partially_filled":
            allowed = TRANSITIONS[order.status]
            if status not in allowed:
                raise AssertionError(f"illegal transition {order.status} -> {status}")
        order.status = status
        when = self._wall(t)
        order.updated_at = when
        if status == "canceled":
            order.canceled_at = when
        elif status == "expired":
            order.expired_at = when
        elif status == "rejected":
            order.failed_at = when
        self._emit(order, event or status, t)

    # ------------------------------------------------------------------ submit
    def submit(self, req: OrderRequest) -> SimOrder:
        """Accept an order or raise :class:`SimError` (403 funds/qty, 422 duplicate id)."""
        with self.lock:
            self.advance()
            t = self.t()
            coid = req.client_order_id or self._mint_client_order_id()
            if coid in self.by_client_id:
                raise SimError(422, 40010001, "client_order_id must be unique")
            self._check_funds(req)
            now = self._wall(t)
            order = SimOrder(
                id=self._new_id(),
                client_order_id=coid,
                asset_id=asset_id_for(req.symbol),
                symbol=req.symbol,
                side=req.side,
                type=req.type,
                time_in_force=req.time_in_force,
                qty=req.qty,
                limit_price=req.limit_price,
                extended_hours=req.extended_hours,
                created_at=now,
                created_mono=t,
                updated_at=now,
            )
            self._order_no[order.id] = len(self.orders)
            self.orders[order.id] = order
            self.by_client_id[coid] = order.id
            self._emit(order, "accepted", t)
            self._schedule(
                t + self.config.route_latency.sample(self.rng.stream("route")), "route", order.id
            )
            session = self.config.session_seconds
            if req.time_in_force == "day" and session is not None:
                self._schedule(max(session, t), "expire", order.id)
            return order

    def record_post(self, client_order_id: str | None, body: Any, outcome: str) -> None:
        """Ground truth: remember every POST /v2/orders received, per client_order_id."""
        with self.lock:
            key = client_order_id or ""
            self.posts.setdefault(key, []).append(
                {
                    "t": self.t(),
                    "received_at": wire.ts(self.clock.now()),
                    "body": body,
                    "outcome": outcome,
                }
            )

    def _held(self, symbol: str, side: str) -> Decimal:
        return sum(
            (
                o.remaining_qty
                for o in self.orders.values()
                if o.is_open and o.symbol == symbol and o.side == side
            ),
            Decimal(0),
        )

    def buying_power(self) -> Decimal:
        """Cash less what open buy orders hold (at their limit, or the price plus 3 %)."""
        with self.lock:
            held = Decimal(0)
            t = self.t()
            for o in self.orders.values():
                if o.is_open and o.side == "buy":
                    ref = o.limit_price or self.prices.price(o.symbol, t) * Decimal("1.03")
                    held += o.remaining_qty * ref
            return max(Decimal(0), self.cash - held).quantize(Decimal("0.01"))

    def _check_funds(self, req: OrderRequest) -> None:
        t = self.t()
        price = req.limit_price or self.prices.price(req.symbol, t) * Decimal("1.03")
        position = self.positions.get(req.symbol)
        pos_qty = position.qty if position else Decimal(0)
        if (req.side == "sell" and pos_qty > 0) or (req.side == "buy" and pos_qty < 0):
            # Closing side: Alpaca refuses to flip a position in one order.
            available = abs(pos_qty) - self._held(req.symbol, req.side)
            if req.qty > available:
                raise SimError(
                    403,
                    40310000,
                    f"insufficient qty available for order (requested: {wire.num(req.qty)}, "
                    f"available: {wire.num(max(available, Decimal(0)))})",
                    available=wire.num(max(available, Decimal(0))),
                    existing_qty=wire.num(abs(pos_qty)),
                    held_for_orders=wire.num(self._held(req.symbol, req.side)),
                    symbol=req.symbol,
                )
            return
        if req.side == "sell":
            if not self.config.allow_shorting:
                raise SimError(403, 40310000, "account is not allowed to short")
            if req.qty != req.qty.to_integral_value():
                raise SimError(403, 40310000, "fractional orders cannot be sold short")
        cost = (req.qty * price).quantize(Decimal("0.01"))
        bp = self.buying_power()
        if cost > bp:
            raise SimError(
                403,
                40310000,
                "insufficient buying power",
                buying_power=wire.num(bp),
                cost_basis=wire.num(cost),
            )

    # ------------------------------------------------------------------ routing and fills
    def _route(self, order: SimOrder, t: float) -> None:
        if order.status != "accepted":
            return  # canceled before routing
        self._transition(order, "pending_new", t)
        if self.rng.chance_for("reject", self.faults.reject_rate, self._order_no[order.id]):
            self._transition(order, "rejected", t)
            return
        self._transition(order, "new", t)
        crosses = self._crosses(order, t)
        if order.type == "market" or crosses:
            self._plan_fills(order, t)
        elif order.time_in_force in ("ioc", "fok"):
            self._schedule(t, "ioc_cancel", order.id)
        else:
            self._ensure_tick(t)

    def _crosses(self, order: SimOrder, t: float) -> bool:
        if order.limit_price is None:
            return True
        price = self.prices.price(order.symbol, t)
        return price <= order.limit_price if order.side == "buy" else price >= order.limit_price

    def _ensure_tick(self, t: float) -> None:
        if not self._tick_scheduled:
            tick = self.config.price_tick_seconds
            self._schedule((int(t // tick) + 1) * tick, "tick")
            self._tick_scheduled = True

    def _check_limits(self, t: float) -> None:
        resting = [
            o
            for o in self.orders.values()
            if o.type == "limit"
            and o.status in ("new", "partially_filled")
            and not self._fills_pending.get(o.id)
        ]
        for order in resting:
            if self._crosses(order, t):
                self._plan_fills(order, t)
        if any(
            o.type == "limit" and o.status in ("new", "partially_filled")
            for o in self.orders.values()
        ):
            self._ensure_tick(t)

    def _plan_fills(self, order: SimOrder, t: float) -> None:
        remaining = order.remaining_qty
        due = t + self.config.fill_latency.sample(self.rng.stream("fill_latency"))
        n = self._order_no[order.id]
        partial = order.time_in_force != "fok" and self.rng.chance_for(
            "partial_fill", self.faults.partial_fill_rate, n
        )
        parts = [remaining]
        if partial:
            split_rng = self.rng.keyed("partial_split", n)
            k = split_rng.randint(2, self.faults.max_partial_fills)
            parts = split_qty(remaining, k, split_rng)
        if order.time_in_force == "ioc" and len(parts) > 1:
            # IOC takes what is there now and cancels the rest.
            self._schedule(due, "fill", order.id, parts[0])
            self._fills_pending[order.id] = self._fills_pending.get(order.id, 0) + 1
            self._schedule(due, "ioc_cancel", order.id)
            return
        for part in parts:
            self._schedule(due, "fill", order.id, part)
            self._fills_pending[order.id] = self._fills_pending.get(order.id, 0) + 1
            due += self.config.partial_gap.sample(self.rng.stream("partial_gap"))

    def _fill_price(self, order: SimOrder, t: float) -> Decimal:
        price = self.prices.price(order.symbol, t)
        bps = self.rng.stream("slippage").uniform(0, self.config.market_slippage_bps)
        adverse = (
            Decimal(repr(1 + bps / 10_000))
            if order.side == "buy"
            else Decimal(repr(1 - bps / 10_000))
        )
        fill = round_price(price * adverse)
        if order.limit_price is not None:
            fill = (
                min(fill, order.limit_price)
                if order.side == "buy"
                else max(fill, order.limit_price)
            )
        return fill

    def _execute(self, order: SimOrder, qty: Decimal, t: float) -> None:
        if order.status not in ("new", "partially_filled", "pending_cancel"):
            return  # canceled, expired or rejected first: the fill never happens
        qty = min(qty, order.remaining_qty)
        if qty <= 0:
            return
        price = self._fill_price(order, t)
        position = self.positions.get(order.symbol)
        if position is None:
            position = self.positions[order.symbol] = SimPosition(order.symbol, order.asset_id)
        position.apply(order.side, qty, price)
        history = self._position_history.setdefault(order.symbol, [])
        history.append((t, position.qty, position.avg_entry_price))
        value = qty * price
        self.cash += -value if order.side == "buy" else value
        cum = order.filled_qty + qty
        complete = cum >= order.qty
        # A partial fill during pending_cancel leaves the cancel pending; the rest still cancels.
        status = (
            "filled"
            if complete
            else ("pending_cancel" if order.status == "pending_cancel" else "partially_filled")
        )
        execution = Execution(
            execution_id=self._new_id(),
            order_id=order.id,
            symbol=order.symbol,
            side=order.side,
            qty=qty,
            price=price,
            timestamp=self._wall(t),
            mono=t,
            cum_qty=cum,
            leaves_qty=order.qty - cum,
            order_status=status,
            position_qty=position.qty,
        )
        order.executions.append(execution)
        self.executions.append(execution)
        if complete:
            order.filled_at = execution.timestamp
            order.filled_mono = t
            if self.rng.chance_for(
                "missing_price", self.faults.missing_price_rate, self._order_no[order.id]
            ):
                order.hide_price_until = t + self.faults.missing_price_seconds
        order.status = status
        order.updated_at = execution.timestamp
        self._emit(order, "fill" if complete else "partial_fill", t, execution)

    # ------------------------------------------------------------------ cancel and expiry
    def cancel(self, order_id: str) -> None:
        """Request a cancel: ``pending_cancel`` now, ``canceled`` later unless a fill lands first."""
        with self.lock:
            self.advance()
            order = self.orders.get(order_id)
            if order is None:
                raise SimError(404, 40410000, "order not found")
            if order.status not in CANCELABLE:
                raise SimError(422, 42210000, f'order is already in "{order.status}" state')
            t = self.t()
            latency = self.config.cancel_latency.sample(self.rng.stream("cancel_latency"))
            # Only a routed order that the market can fill may race its cancel: an order
            # still being accepted, or a limit the price has not reached, cannot fill.
            can_fill = order.status in ("new", "partially_filled") and self._crosses(order, t)
            self._transition(order, "pending_cancel", t)
            n = self._order_no[order.id]
            race = self.rng.chance_for("cancel_race", self.faults.cancel_race_rate, n)
            if race and can_fill and order.status == "pending_cancel":
                race_at = t + self.rng.keyed("cancel_race_at", n).uniform(0, latency * 0.9)
                self._schedule(race_at, "fill", order.id, order.remaining_qty)
                self._fills_pending[order.id] = self._fills_pending.get(order.id, 0) + 1
            self._schedule(t + latency, "cancel_done", order.id)

    def cancel_all(self) -> list[tuple[str, int]]:
        """Request a cancel of every open order: (order id, HTTP status) per order."""
        with self.lock:
            self.advance()
            out: list[tuple[str, int]] = []
            for order in list(self.orders.values()):
                if order.status in CANCELABLE:
                    self.cancel(order.id)
                    out.append((order.id, 200))
            return out

    def close_session(self) -> int:
        """End the trading day: every open day order expires now. Returns how many."""
        with self.lock:
            self.advance()
            t = self.t()
            n = 0
            for order in list(self.orders.values()):
                if order.time_in_force == "day" and order.status in CANCELABLE:
                    self._transition(order, "expired", t)
                    n += 1
            return n

    # ------------------------------------------------------------------ reads
    def get_order(self, order_id: str, *, stale: bool = False) -> dict[str, Any]:
        """The order as JSON; ``stale`` shows it as it was ``stale_read_seconds`` ago (404 if new)."""
        with self.lock:
            self.advance()
            order = self.orders.get(order_id)
            if order is None:
                raise SimError(404, 40410000, "order not found")
            return self._view(order, stale=stale)

    def get_order_by_client_id(
        self, client_order_id: str, *, stale: bool = False
    ) -> dict[str, Any]:
        """The order with this client_order_id as JSON (404 if none)."""
        with self.lock:
            self.advance()
            order_id = self.by_client_id.get(client_order_id)
            if order_id is None:
                raise SimError(404, 40410000, "order not found")
            return self._view(self.orders[order_id], stale=stale)

    def _view(self, order: SimOrder, *, stale: bool) -> dict[str, Any]:
        t = self.t()
        if stale and self.faults.stale_read_seconds > 0:
            cutoff = t - self.faults.stale_read_seconds
            for vt, snap in reversed(order.versions):
                if vt <= cutoff:
                    return dict(snap)
            raise SimError(404, 40410000, "order not found")
        return wire.order_json(
            order, hide_price=order.hide_price_until is not None and t < order.hide_price_until
        )

    def list_orders(self) -> list[SimOrder]:
        """Every order, oldest first."""
        with self.lock:
            self.advance()
            return list(self.orders.values())

    def order_view(self, order: SimOrder) -> dict[str, Any]:
        """An order as the REST API shows it now (with the missing-price fault applied)."""
        with self.lock:
            return self._view(order, stale=False)

    def position_rows(self) -> list[tuple[SimPosition, Decimal]]:
        """Open positions as REST shows them (lagging by ``position_lag_seconds``), with prices."""
        with self.lock:
            self.advance()
            t = self.t()
            lag = self.faults.position_lag_seconds
            rows: list[tuple[SimPosition, Decimal]] = []
            for symbol, position in self.positions.items():
                qty, avg = position.qty, position.avg_entry_price
                if lag > 0:
                    qty, avg = Decimal(0), Decimal(0)
                    for ht, q, a in reversed(self._position_history.get(symbol, [])):
                        if ht <= t - lag:
                            qty, avg = q, a
                            break
                if qty != 0:
                    view = SimPosition(symbol, position.asset_id, qty, avg)
                    rows.append((view, self.prices.price(symbol, t)))
            return rows

    def price(self, symbol: str) -> Decimal:
        """The current price of ``symbol``."""
        with self.lock:
            return self.prices.price(symbol, self.t())

    def set_price(self, symbol: str, price: Decimal) -> None:
        """Pin ``symbol``'s price from now on; resting limit orders are checked at once."""
        with self.lock:
            self.advance()
            t = self.t()
            self.prices.set_price(symbol, t, price)
            self._check_limits(t)

    def account_view(self) -> dict[str, Any]:
        """The account as JSON."""
        with self.lock:
            self.advance()
            t = self.t()
            market_value = sum(
                (p.qty * self.prices.price(s, t) for s, p in self.positions.items()), Decimal(0)
            )
            long_mv = sum(
                (p.qty * self.prices.price(s, t) for s, p in self.positions.items() if p.qty > 0),
                Decimal(0),
            )
            return wire.account_json(
                self.config,
                cash=self.cash,
                buying_power=self.buying_power(),
                long_market_value=long_mv,
                short_market_value=market_value - long_mv,
            )

    def ledger(self) -> dict[str, Any]:
        """Ground truth: every order with its POSTs and executions, positions and cash."""
        with self.lock:
            self.advance()
            orders = []
            for order in self.orders.values():
                orders.append(
                    {
                        "order": wire.order_json(order),
                        "posts": self.posts.get(order.client_order_id, []),
                        "executions": [wire.execution_json(e) for e in order.executions],
                    }
                )
            unmatched = {k: v for k, v in self.posts.items() if k not in self.by_client_id}
            return {
                "t": self.t(),
                "cash": wire.num(self.cash),
                "starting_cash": wire.num(self.config.starting_cash),
                "orders": orders,
                "posts_without_order": unmatched,
                "positions": {
                    s: {"qty": wire.num(p.qty), "avg_entry_price": wire.num(p.avg_entry_price)}
                    for s, p in self.positions.items()
                },
                "events": len(self.events),
            }


def split_qty(qty: Decimal, parts: int, rng: random.Random) -> list[Decimal]:
    """Split ``qty`` into up to ``parts`` positive pieces that sum to it exactly.

    Whole quantities split into whole shares; fractional ones to 9 decimal places.
    """
    quantum = Decimal(1) if qty == qty.to_integral_value() and qty >= parts else QTY_QUANTUM
    units = int(qty / quantum)
    parts = max(1, min(parts, units))
    if parts == 1:
        return [qty]
    cuts = sorted(rng.sample(range(1, units), parts - 1))
    bounds = [0, *cuts, units]
    pieces = [Decimal(bounds[i + 1] - bounds[i]) * quantum for i in range(parts)]
    pieces[-1] += qty - sum(pieces, Decimal(0))  # exact remainder (fractional dust)
    return pieces
