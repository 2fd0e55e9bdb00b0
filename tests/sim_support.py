"""Shared set-up and ledger checks for the simulator tests (no sockets, fake time)."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fillguard.clock import FakeClock
from fillguard.sim import wire
from fillguard.sim.api import ApiRequest, ApiResponse, SimApi
from fillguard.sim.core import Broker, BrokerConfig, OrderRequest, TradeEventRecord
from fillguard.sim.faults import FaultProfile, profile_from
from fillguard.sim.inprocess import IN_PROCESS_URL, in_process_client
from fillguard.sim.orders import TERMINAL, TRANSITIONS, Execution, SimOrder, vwap

KEY = "SIMKEY"
SECRET = "SIMSECRET"
AUTH = {"apca-api-key-id": KEY, "apca-api-secret-key": SECRET}
SDK_AUTH = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}
URL = IN_PROCESS_URL
FILL_EVENTS = frozenset({"fill", "partial_fill"})


@dataclass
class Sim:
    """A broker on a fake clock, its request layer and a real alpaca-py client over it."""

    clock: FakeClock
    broker: Broker
    api: SimApi
    client: Any

    def advance(self, seconds: float) -> None:
        """Move fake time and let the broker apply what is due."""
        self.clock.advance(seconds)
        self.broker.advance()

    def handle(
        self,
        method: str,
        path: str,
        body: bytes | str | Mapping[str, Any] | None = None,
        *,
        query: Mapping[str, str | list[str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> ApiResponse:
        """Call ``api.handle`` with an authenticated request (unless ``headers`` say otherwise)."""
        return self.api.handle(request(method, path, body, query=query, headers=headers))


def request(
    method: str,
    path: str,
    body: bytes | str | Mapping[str, Any] | None = None,
    *,
    query: Mapping[str, str | list[str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> ApiRequest:
    """An :class:`ApiRequest`, authenticated by default; dict bodies are sent as JSON."""
    if body is None:
        raw = b""
    elif isinstance(body, bytes):
        raw = body
    elif isinstance(body, str):
        raw = body.encode()
    else:
        raw = json.dumps(body).encode()
    q = {k: ([v] if isinstance(v, str) else list(v)) for k, v in (query or {}).items()}
    return ApiRequest(method, path, q, raw, dict(AUTH if headers is None else headers))


def make_sim(
    *,
    seed: int = 0,
    faults: FaultProfile | str | dict[str, Any] | None = None,
    rate_limit: int | None = None,
    config: BrokerConfig | None = None,
) -> Sim:
    """A fresh simulator. The SDK's own retries (real 3 s sleeps) are switched off."""
    clock = FakeClock()
    broker = Broker(clock=clock, seed=seed, config=config, faults=profile_from(faults))
    api = SimApi(broker, key_id=KEY, secret_key=SECRET, rate_limit=rate_limit)
    client = in_process_client(api)
    client._retry = 0
    return Sim(clock, broker, api, client)


FLAT = BrokerConfig(
    price_volatility=0.0,
    initial_prices=(("AAPL", Decimal("100")), ("MSFT", Decimal("400"))),
)


def flat_sim(seed: int = 1, config: BrokerConfig = FLAT, **knobs: Any) -> Sim:
    """A simulator with flat prices (AAPL 100, MSFT 400), no rate limit and ``knobs`` on."""
    return make_sim(seed=seed, faults=knobs, config=config)


def run_until(sim: Sim, done: Callable[[], bool], limit: float = 30.0) -> None:
    """Step fake time from one scheduled action to the next until ``done()`` (or ``limit`` s)."""
    start = sim.broker.t()
    while not done():
        due = sim.broker.next_due()
        assert due is not None, "nothing left to happen"
        assert due - start <= limit, "condition not reached in time"
        sim.advance(max(0.0, due - sim.broker.t()) + 1e-9)


def with_timeout(client: Any, timeout: float) -> None:
    """Give every request of ``client`` a read timeout, as fillguard's transport does."""
    inner: Callable[..., Any] = client._session.request

    def request_with_timeout(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", timeout)
        return inner(*args, **kwargs)

    client._session.request = request_with_timeout


def order_body(**fields: Any) -> dict[str, Any]:
    """A valid POST /v2/orders body (market buy 1 AAPL day) with ``fields`` overriding."""
    body: dict[str, Any] = {
        "symbol": "AAPL",
        "side": "buy",
        "type": "market",
        "time_in_force": "day",
        "qty": "1",
    }
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


def order_request(**fields: Any) -> OrderRequest:
    """An :class:`OrderRequest` (market buy 1 AAPL day) with ``fields`` overriding."""
    base: dict[str, Any] = {
        "symbol": "AAPL",
        "side": "buy",
        "type": "market",
        "time_in_force": "day",
        "qty": Decimal(1),
    }
    base.update(fields)
    return OrderRequest(**base)


def events_of(broker: Broker, order_id: str) -> list[TradeEventRecord]:
    """The trade events of one order, in order."""
    return [e for e in broker.events if e.order["id"] == order_id]


def signed(side: str, qty: Decimal) -> Decimal:
    """Quantity with the sign of its effect on the position."""
    return qty if side == "buy" else -qty


# ---------------------------------------------------------------------------------- invariants
def check_order_books(order: SimOrder) -> None:
    """An order's cumulative figures equal its executions' sum and volume-weighted price."""
    total = sum((e.qty for e in order.executions), Decimal(0))
    assert total <= order.qty, f"{order.id} filled {total} of {order.qty}"
    assert all(e.qty > 0 for e in order.executions)
    assert order.filled_qty == total
    assert order.remaining_qty == order.qty - total
    if order.executions:
        notional = sum((e.qty * e.price for e in order.executions), Decimal(0))
        expected = (notional / total).quantize(Decimal("0.000000001"))
        assert order.filled_avg_price == expected
        assert vwap(order.executions) == expected
    else:
        assert order.filled_avg_price is None
    truth = wire.order_json(order)
    assert truth["filled_qty"] == wire.num(total)
    assert truth["filled_avg_price"] == wire.num(order.filled_avg_price)
    assert truth["status"] == order.status
    cum = Decimal(0)
    for e in order.executions:
        cum += e.qty
        assert e.cum_qty == cum
        assert e.leaves_qty == order.qty - cum
        assert e.order_id == order.id
        assert e.side == order.side
        assert e.symbol == order.symbol
        if order.limit_price is not None:
            if order.side == "buy":
                assert e.price <= order.limit_price
            else:
                assert e.price >= order.limit_price
    if order.status == "filled":
        assert total == order.qty
    elif order.status in ("canceled", "expired", "rejected", "replaced"):
        # A notional order has no qty until it fills.
        assert total < order.qty or (order.notional is not None and not order.executions)


def check_event_stream(broker: Broker) -> None:
    """Events: one per transition or execution, legal transitions, nothing after a terminal one."""
    executions: dict[str, Execution] = {e.execution_id: e for e in broker.executions}
    assert len(executions) == len(broker.executions), "execution ids are unique"
    seen_exec: set[str] = set()
    per_order: dict[str, list[TradeEventRecord]] = defaultdict(list)
    last_mono = float("-inf")
    for i, ev in enumerate(broker.events, start=1):
        assert ev.seq == i
        assert ev.mono >= last_mono - 1e-9, "events are in time order"
        last_mono = max(last_mono, ev.mono)
        per_order[ev.order["id"]].append(ev)
        if ev.event in FILL_EVENTS:
            assert ev.execution_id is not None
            assert ev.execution_id not in seen_exec
            seen_exec.add(ev.execution_id)
            ex = executions[ev.execution_id]
            assert (ev.qty, ev.price, ev.position_qty) == (ex.qty, ex.price, ex.position_qty)
            assert ex.order_id == ev.order["id"]
            assert ev.order["filled_qty"] == wire.num(ex.cum_qty)
        else:
            assert ev.execution_id is None
            if ev.event == "new" and ev.order["status"] == "partially_filled":
                pass  # a done_for_day order resuming with shares filled
            else:
                assert ev.event == ev.order["status"], "a transition event names the new status"
    assert seen_exec == set(executions), "every execution has exactly one fill event"
    transitions = sum(1 for e in broker.events if e.event not in FILL_EVENTS)
    assert len(broker.events) == transitions + len(broker.executions)
    held = {o.id for o in broker.orders.values() if o.status == "held"}
    assert set(per_order) | held == set(broker.orders)
    for order_id, evs in per_order.items():
        order = broker.orders[order_id]
        status = "accepted"
        later = evs[1:]
        if order.parent_id is not None and evs[0].event != "accepted":
            status = "held"  # a bracket or oto leg: no event until it goes live or is canceled
            later = evs
        else:
            assert evs[0].event == "accepted"
            assert evs[0].order["status"] == "accepted"
        for ev in later:
            assert status not in TERMINAL, f"{ev.event} after terminal {status} on {order_id}"
            new = ev.order["status"]
            if ev.event == "fill":
                assert new == "filled"
            elif ev.event == "partial_fill":
                assert new in ("partially_filled", "pending_cancel", "pending_replace")
            if new != status or ev.event not in FILL_EVENTS:
                assert new in TRANSITIONS[status], f"illegal {status} -> {new} on {order_id}"
            status = new
        assert status == order.status
        assert [e.execution_id for e in evs if e.event in FILL_EVENTS] == [
            e.execution_id for e in order.executions
        ]


def check_replace_chains(broker: Broker) -> None:
    """replaces/replaced_by link both ways; a replacement lives only once its original is
    replaced; a chain that never named a qty fills no more than its first order's qty."""
    for order in broker.orders.values():
        if order.replaced_by is not None:
            assert order.status == "replaced"
            assert broker.orders[order.replaced_by].replaces == order.id
        if order.status == "replaced":
            assert order.replaced_by is not None
            assert order.replaced_at is not None
        if order.replaces is None:
            continue
        original = broker.orders[order.replaces]
        assert original.status in ("pending_replace", "replaced", "filled")
        if original.status == "replaced":
            assert original.replaced_by == order.id
        else:
            # Held in accepted (or canceled by the client, or because the original filled).
            assert not order.executions, "a replacement fills only once its original is replaced"
            assert order.status in ("accepted", "pending_cancel", "canceled", "expired"), (
                order.status,
                original.status,
            )
            if original.status == "filled":
                # Canceled with it; or the client's own cancel of it is still under way.
                assert order.status in ("canceled", "expired", "pending_cancel")
    for head in broker.orders.values():
        if head.replaces is not None:
            continue
        chain = [head]
        while chain[-1].replaced_by is not None:
            chain.append(broker.orders[chain[-1].replaced_by])
        if all(o.qty_defaulted for o in chain[1:]):
            filled = sum((o.filled_qty for o in chain), Decimal(0))
            assert filled <= head.qty, f"chain of {head.id} filled {filled} of {head.qty}"


def check_positions_and_cash(broker: Broker) -> None:
    """Positions equal the signed sum of executions; cash moves exactly by their value."""
    qty: dict[str, Decimal] = defaultdict(Decimal)
    cash = broker.config.starting_cash
    for e in broker.executions:
        qty[e.symbol] += signed(e.side, e.qty)
        assert e.position_qty == qty[e.symbol], "position_qty is the position after the fill"
        cash += -(e.qty * e.price) if e.side == "buy" else e.qty * e.price
    assert broker.cash == cash
    for symbol in set(qty) | set(broker.positions):
        position = broker.positions.get(symbol)
        assert (position.qty if position else Decimal(0)) == qty[symbol]
        if position is not None and position.qty == 0:
            assert position.avg_entry_price == 0
    ordered = [e for o in broker.orders.values() for e in o.executions]
    assert sorted(e.execution_id for e in ordered) == sorted(
        e.execution_id for e in broker.executions
    )


def reference_avg_entry(executions: Iterable[Execution], symbol: str) -> Decimal:
    """Average entry price computed independently: weighted on adds, kept on reduces."""
    qty = Decimal(0)
    avg = Decimal(0)
    for e in executions:
        if e.symbol != symbol:
            continue
        s = signed(e.side, e.qty)
        new = qty + s
        if qty == 0 or (qty > 0) == (s > 0):
            avg = (abs(qty) * avg + e.qty * e.price) / (abs(qty) + e.qty)
        elif new != 0 and (new > 0) != (qty > 0):
            avg = e.price
        if new == 0:
            avg = Decimal(0)
        qty = new
    return avg


def check_ledger(broker: Broker) -> None:
    """Every ledger invariant over the broker's own objects."""
    broker.advance()
    for order in broker.orders.values():
        check_order_books(order)
    check_event_stream(broker)
    check_replace_chains(broker)
    check_positions_and_cash(broker)
    for symbol, position in broker.positions.items():
        ref = reference_avg_entry(broker.executions, symbol)
        assert abs(position.avg_entry_price - ref) < Decimal("0.000001")
    # The open-order index and running buy holds equal a recomputation from every order.
    t = broker.t()
    broker.orders.check(lambda s: broker.prices.price(s, t))
    assert broker.buying_power() == full_walk_buying_power(broker), "running holds drifted"


def full_walk_buying_power(broker: Broker) -> Decimal:
    """Buying power by walking every order (Alpaca's rules as fillguard.sim.funds states
    them), to hold the store's running totals to."""
    t = broker.t()
    held = Decimal(0)
    for o in broker.orders.values():
        opens = o.side == "buy" or o.position_intent == "sell_to_open"
        if not (opens and broker._holds(o, None)):
            continue
        if o.notional is not None and not o.executions:
            held += o.notional
        else:
            held += o.remaining_qty * broker._reference(o, t)
    short_mv = sum(
        (-p.qty * broker.prices.price(s, t) for s, p in broker.positions.items() if p.qty < 0),
        Decimal(0),
    )
    return max(Decimal(0), broker.cash - 2 * short_mv - held).quantize(Decimal("0.01"))


def check_ledger_json(api: SimApi) -> None:
    """GET /_sim/ledger agrees with the broker's objects."""
    broker = api.broker
    resp = api.handle(request("GET", "/_sim/ledger", headers={}))
    assert resp.status == 200
    ledger = resp.json()
    assert ledger["cash"] == wire.num(broker.cash)
    assert ledger["starting_cash"] == wire.num(broker.config.starting_cash)
    assert ledger["events"] == len(broker.events)
    assert [row["order"]["id"] for row in ledger["orders"]] == list(broker.orders)
    for row in ledger["orders"]:
        order = broker.orders[row["order"]["id"]]
        assert row["order"] == json.loads(json.dumps(wire.order_json(order)))
        assert [x["execution_id"] for x in row["executions"]] == [
            e.execution_id for e in order.executions
        ]
        assert sum((Decimal(x["qty"]) for x in row["executions"]), Decimal(0)) == (order.filled_qty)
        for x, e in zip(row["executions"], order.executions, strict=True):
            assert Decimal(x["price"]) == e.price
            assert Decimal(x["position_qty"]) == e.position_qty
    assert ledger["positions"] == {
        s: {"qty": wire.num(p.qty), "avg_entry_price": wire.num(p.avg_entry_price)}
        for s, p in broker.positions.items()
    }


def wait_for(check: Callable[[], Any], timeout: float) -> Any:
    """Poll ``check`` in real time (against a live server) until it is truthy; return its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)
