"""Hypothesis: lifecycle's pure merge converges to the ledger whatever the delivery does.

A random ledger history of one order (executions, then an ending: filled, canceled, a cancel
that a fill raced, expired, replaced, done_for_day and resumed, rejected, or still open) is
turned into what a client could receive: a trade_updates event per version (through the real
frame parser, in any of Alpaca's timestamp styles) and REST reads of any version, also
half-written ones (the simulator's three variants) and other orders' records. A random
interleaving of them, with events duplicated, reordered and dropped and stale reads coming
late, goes through :func:`fillguard.lifecycle.merge`. Along the way and at the end:

* cumulative filled quantity never decreases and a terminal status never reverts;
* nothing is reported that the ledger lacks: every filled quantity is one the ledger had,
  every execution id is the ledger's, a complete view carries the ledger's final price;
* once the order's final version has been seen, the view is the ledger's final state, however
  many stale or duplicated observations follow.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from fillguard.lifecycle import Observation, OrderView, merge, view_of
from fillguard.sim import wire
from fillguard.snapshot import TERMINAL_STATUSES, OrderSnapshot
from fillguard.stream_parse import TradeEvent, parse_message

PROPERTY = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

ORDER_ID = "7d4a3c1e-0b2f-4f6e-9a1d-000000000001"
REPLACEMENT_ID = "7d4a3c1e-0b2f-4f6e-9a1d-000000000002"
COID = "props8-lifecycle"
T0 = datetime(2026, 7, 6, 14, 30, 0, 123456, tzinfo=UTC)
ENDINGS = (
    "filled",
    "canceled",
    "cancel_race",
    "expired",
    "replaced",
    "replace_race",
    "done_for_day",
    "rejected",
    "open",
)


# ---------------------------------------------------------------------------------- the ledger
@dataclass(frozen=True)
class Version:
    """One version of the order as the broker wrote it, and the event that announced it."""

    order: dict[str, Any]
    event: str
    execution: dict[str, Any] | None = None  # execution_id, qty, price, position_qty


@dataclass
class History:
    """An order's versions, oldest first; the last is the ledger's final state."""

    qty: Decimal
    versions: list[Version] = field(default_factory=list)

    @property
    def final(self) -> Version:
        return self.versions[-1]

    @property
    def cumulative(self) -> set[Decimal]:
        return {Decimal(v.order["filled_qty"]) for v in self.versions}

    @property
    def execution_ids(self) -> set[str]:
        return {v.execution["execution_id"] for v in self.versions if v.execution}


def _split(total: Decimal, parts: int, cuts: list[int]) -> list[Decimal]:
    """``total`` (whole shares) in ``parts`` positive amounts, cut where ``cuts`` say."""
    n = int(total)
    points = sorted({1 + c % max(n - 1, 1) for c in cuts[: parts - 1]} - {n})
    bounds = [0, *[p for p in points if 0 < p < n], n]
    return [Decimal(b - a) for a, b in itertools.pairwise(bounds) if b > a]


@st.composite
def histories(draw: st.DrawFn) -> History:
    qty = Decimal(draw(st.integers(1, 30)))
    ending = draw(st.sampled_from(ENDINGS))
    position = Decimal(draw(st.integers(-20, 20)))
    completes = ending in ("filled", "cancel_race", "replace_race") or (
        ending == "done_for_day" and draw(st.booleans())
    )
    if ending == "rejected":
        filled_before = Decimal(0)
    elif completes:
        filled_before = qty
    else:
        filled_before = Decimal(draw(st.integers(0, int(qty) - 1)))
    cuts = draw(st.lists(st.integers(0, 1000), min_size=3, max_size=3))
    amounts = _split(filled_before, draw(st.integers(1, 4)), cuts) if filled_before else []
    prices = [Decimal(draw(st.integers(9000, 11000))) / 100 for _ in range(len(amounts) + 1)]
    history = History(qty)
    state: dict[str, Any] = {
        "t": T0,
        "cum": Decimal(0),
        "notional": Decimal(0),
        "position": position,
        "status": "accepted",
        "n": 0,
    }

    def write(status: str, ev: str, execution: dict[str, Any] | None = None, **extra: Any) -> None:
        state["t"] += timedelta(milliseconds=draw(st.integers(1, 400)))
        state["status"] = status
        cum = state["cum"]
        avg = (state["notional"] / cum).quantize(Decimal("0.000000001")) if cum else None
        order = {
            "id": ORDER_ID,
            "client_order_id": COID,
            "symbol": "AAPL",
            "side": "buy",
            "type": "limit",
            "time_in_force": "gtc",
            "qty": wire.num(qty),
            "limit_price": "120",
            "status": status,
            "filled_qty": wire.num(cum),
            "filled_avg_price": wire.num(avg),
            "submitted_at": wire.ts(T0),
            "updated_at": wire.ts(state["t"]),
            "filled_at": wire.ts(state["t"]) if status == "filled" else None,
            "replaced_by": None,
            "replaces": None,
        }
        order.update(extra)
        if execution is not None:
            execution = {**execution, "timestamp": wire.ts(state["t"])}
        history.versions.append(Version(order, ev, execution))

    def execute(amount: Decimal, price: Decimal, status_after: str | None = None) -> None:
        state["cum"] += amount
        state["notional"] += amount * price
        state["position"] += amount
        state["n"] += 1
        done = state["cum"] == qty
        execution = {
            "execution_id": f"exec-{state['n']}",
            "qty": wire.num(amount),
            "price": wire.num(price),
            "position_qty": wire.num(state["position"]),
        }
        status = "filled" if done else status_after or "partially_filled"
        write(status, "fill" if done else "partial_fill", execution)

    write("accepted", "accepted")
    if ending == "rejected":
        write("rejected", "rejected")
        return history
    write("new", "new")
    last_fill = len(amounts) - 1 if completes and ending != "done_for_day" else len(amounts)
    pause_after = draw(st.integers(0, max(len(amounts) - 1, 0))) if ending == "done_for_day" else -1
    for i, amount in enumerate(amounts):
        if i == last_fill and ending in ("cancel_race", "replace_race"):
            pending = "pending_cancel" if ending == "cancel_race" else "pending_replace"
            write(pending, pending)
            execute(amount, prices[i])  # the fill that raced the cancel (or the replace)
            continue
        execute(amount, prices[i])
        if i == pause_after and state["status"] != "filled":
            write("done_for_day", "done_for_day")
            # The next session: the order resumes (Alpaca sends "new" with shares filled).
            write("partially_filled" if state["cum"] else "new", "new")
    if ending == "done_for_day" and not amounts:
        write("done_for_day", "done_for_day")
    if ending == "canceled":
        write("pending_cancel", "pending_cancel")
        write("canceled", "canceled", canceled_at=wire.ts(state["t"]))
    elif ending == "expired":
        write("expired", "expired", expired_at=wire.ts(state["t"]))
    elif ending == "replaced":
        write("pending_replace", "pending_replace")
        write("replaced", "replaced", replaced_by=REPLACEMENT_ID)
    return history


# ---------------------------------------------------------------------------------- delivery
@dataclass(frozen=True)
class Delivery:
    """One thing the client receives: which version, how, and in which timestamp style."""

    index: int
    kind: str  # stream, rest, half (a half-written read), other (another order's record)
    style: str
    variant: str = "status_first"


def _stream(version: Version, style: str, at: float) -> Observation:
    data: dict[str, Any] = {"event": version.event, "order": version.order}
    timestamp = version.order["updated_at"]
    if version.execution is not None:
        data.update(version.execution)
        timestamp = version.execution["timestamp"]
    data["timestamp"] = timestamp
    message = wire.restyle({"stream": "trade_updates", "data": data}, style)
    parsed = parse_message(message, at)
    assert isinstance(parsed, TradeEvent), parsed
    return Observation(
        snapshot=parsed.order,
        source="stream",
        at=at,
        event=parsed.event,
        execution_id=parsed.execution_id,
        execution_qty=parsed.qty,
        position_qty=parsed.position_qty,
        event_time=parsed.timestamp,
    )


def _rest(order: dict[str, Any], style: str, at: float) -> Observation:
    return Observation(OrderSnapshot.from_any(wire.restyle(order, style)), "rest", at)


def _half_written(history: History, index: int, variant: str) -> dict[str, Any]:
    """A read right after an execution, as the simulator's half_update fault writes it."""
    order = dict(history.versions[index].order)
    previous = history.versions[max(index - 1, 0)].order
    if variant == "status_first":
        order["filled_qty"] = "0" if index % 2 else None
        order["filled_at"] = None
    elif variant == "qty_first":
        for key in ("status", "filled_avg_price", "filled_at"):
            order[key] = previous[key]
    else:
        order["filled_avg_price"] = None
    return order


def observation(history: History, delivery: Delivery, at: float) -> Observation:
    version = history.versions[delivery.index]
    if delivery.kind == "stream":
        return _stream(version, delivery.style, at)
    if delivery.kind == "half":
        return _rest(_half_written(history, delivery.index, delivery.variant), delivery.style, at)
    if delivery.kind == "other":
        other = {**version.order, "id": REPLACEMENT_ID, "replaces": ORDER_ID, "qty": "999"}
        return _rest(other, delivery.style, at)
    return _rest(version.order, delivery.style, at)


styles = st.sampled_from(("micro", "nanos", "offset"))


@st.composite
def deliveries(draw: st.DrawFn, history: History) -> list[Delivery]:
    """A random interleaving: each version's event kept, dropped or duplicated, REST reads
    of random (stale) versions, half-written and foreign records, in a shuffled order; the
    final version is seen at least once (by its event or a read), anything may follow it."""
    last = len(history.versions) - 1
    items: list[Delivery] = []
    for i in range(len(history.versions)):
        copies = draw(st.sampled_from((0, 1, 1, 1, 2, 3)))  # dropped, delivered, duplicated
        items += [Delivery(i, "stream", draw(styles)) for _ in range(copies)]
    reads = draw(st.lists(st.integers(0, last), max_size=8))
    items += [Delivery(i, "rest", draw(styles)) for i in reads]
    executed = [i for i, v in enumerate(history.versions) if v.execution is not None]
    if executed:
        for i in draw(st.lists(st.sampled_from(executed), max_size=3)):
            variant = draw(st.sampled_from(("status_first", "qty_first", "price_last")))
            items.append(Delivery(i, "half", draw(styles), variant))
    if draw(st.booleans()):
        items.append(Delivery(draw(st.integers(0, last)), "other", draw(styles)))
    items = draw(st.permutations(items))
    final = Delivery(last, draw(st.sampled_from(("stream", "rest"))), draw(styles))
    cut = draw(st.integers(0, len(items)))
    # After the final version only earlier ones may come (late, stale, duplicated).
    return _written_in_steps([*items[:cut], final, *items[cut:]])


def _written_in_steps(items: list[Delivery]) -> list[Delivery]:
    """Without half-written reads of a version after a complete read of it (or of a later
    one): a broker writes a record in steps, so once a read sees it whole, none sees it half.
    Stream events and stale reads of older versions may still come in any order."""
    out: list[Delivery] = []
    read_whole = -1
    for item in items:
        if item.kind == "half" and item.index <= read_whole:
            continue
        if item.kind == "rest":
            read_whole = max(read_whole, item.index)
        out.append(item)
    return out


# ---------------------------------------------------------------------------------- the property
def _status(view: OrderView) -> str | None:
    return view.snapshot.status


@PROPERTY
@given(data=st.data())
def test_any_interleaving_converges_to_the_ledger_and_never_invents_a_fill(
    data: st.DataObject,
) -> None:
    history = data.draw(histories(), label="history")
    plan = data.draw(deliveries(history), label="deliveries")
    truth = OrderSnapshot.from_any(history.final.order)
    view = view_of(ORDER_ID)
    seen_final = False
    last_event_time = None
    expected_position = None
    terminal: str | None = None
    for step, delivery in enumerate(plan):
        obs = observation(history, delivery, at=float(step))
        before = view
        view, changed = merge(view, obs)
        assert changed == (view.snapshot != before.snapshot)
        # monotone: filled quantity never decreases; a terminal status never reverts
        assert view.filled_qty >= before.filled_qty
        if terminal is not None:
            assert _status(view) == terminal, (terminal, _status(view))
        if view.is_terminal:
            terminal = _status(view)
        # nothing the ledger lacks
        assert view.filled_qty in history.cumulative, view.filled_qty
        assert view.execution_ids <= history.execution_ids
        assert view.snapshot.order_id in (None, ORDER_ID)
        if view.snapshot.qty is not None:
            assert view.snapshot.qty == history.qty  # another order's record never leaked in
        if view.complete:
            assert view.filled_qty == truth.filled_qty == history.qty
            assert view.snapshot.filled_avg_price == truth.filled_avg_price
        if _status(view) is not None:
            assert _status(view) in {v.order["status"] for v in history.versions}
        executed = obs.execution_id is not None and obs.position_qty is not None
        if executed and (last_event_time is None or obs.event_time >= last_event_time):  # type: ignore[operator]
            last_event_time, expected_position = obs.event_time, obs.position_qty
        assert view.position_qty == expected_position
        if delivery.index == len(history.versions) - 1 and delivery.kind in ("stream", "rest"):
            seen_final = True
        if seen_final:
            # converged: the ledger's final state, whatever comes after it
            assert _status(view) == truth.status
            assert view.filled_qty == truth.filled_qty
            assert view.snapshot.filled_avg_price == truth.filled_avg_price
            assert view.snapshot.replaced_by == truth.replaced_by
            assert view.is_terminal == (truth.status in TERMINAL_STATUSES)
    assert seen_final
    event(f"ending: {truth.status}")
    event(f"executions: {len(history.execution_ids)}")
    if any(d.kind == "half" for d in plan):
        event("half-written reads")


def test_a_terminal_read_stamped_a_microsecond_before_the_open_version_still_ends_it() -> None:
    """Seen in a calm demo: an IOC limit's ``new`` and ``canceled`` versions came out of the
    broker's clock one microsecond apart the wrong way round; the canceled read was ignored as
    stale, and the trade ended UNKNOWN. No version follows an end, so a terminal read with as
    much filled is the newer one."""
    t = datetime(2026, 12, 2, 7, 55, 28, 939000, tzinfo=UTC)
    oid = "95ff0df6-05bc-4d73-8f57-f603ae9adbf5"
    new = OrderSnapshot.from_any(
        {"id": oid, "status": "new", "qty": "2", "filled_qty": "0", "updated_at": t.isoformat()}
    )
    canceled = OrderSnapshot.from_any(
        {
            "id": oid,
            "status": "canceled",
            "qty": "2",
            "filled_qty": "0",
            "updated_at": (t - timedelta(microseconds=1)).isoformat(),
        }
    )
    view, _ = merge(view_of(oid), Observation(new, "stream", 0.0))
    view, changed = merge(view, Observation(canceled, "rest", 1.0))
    assert changed
    assert view.snapshot.status == "canceled"
    # And a stale open read after the end changes nothing.
    view, changed = merge(view, Observation(new, "rest", 2.0))
    assert not changed
    assert view.snapshot.status == "canceled"
