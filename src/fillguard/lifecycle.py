"""What is known about one order: :class:`OrderView`, merged from stream events and REST reads.

Everything fillguard learns about an order goes through one pure function, :func:`merge`,
whatever its source. It keeps the order's truth monotone, so duplicated, reordered, dropped or
late observations can only be harmless:

* cumulative ``filled_qty`` never decreases: a read showing less is an older version;
* a terminal status (filled, canceled, expired, rejected, replaced) never reverts;
* a read older than what is known (``updated_at``) is ignored;
* a half-written record (``filled`` without its quantity, a quantity without its price) is
  ignored: it proves nothing;
* an execution is counted once, by ``execution_id``; its event's ``position_qty`` (the account's
  position after it) is kept for the position check;
* the average price is the one written with the largest filled quantity; at the same quantity
  a price from an execution event (the order as written after it) outranks a REST read, which
  may be half-written (the new quantity with the previous price);
* a record whose ``client_order_id`` (or submission time) differs from the view's is another
  order under a reused id: it starts the view afresh.

A ``fill`` event carrying the full order (status filled, the whole quantity, a price) is the
broker's word: the view is then :attr:`OrderView.complete` and no REST read is needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Literal

from fillguard.snapshot import OrderSnapshot

__all__ = ["Observation", "OrderView", "merge", "view_of"]

Source = Literal["stream", "rest"]


@dataclass(frozen=True, slots=True)
class Observation:
    """One thing learned about an order: a snapshot, from the stream or REST, at ``at``.

    ``event`` is the trade_updates event name (None for REST); ``execution_id``, ``position_qty``
    and ``execution_qty`` come with execution events.
    """

    snapshot: OrderSnapshot
    source: Source
    at: float
    event: str | None = None
    execution_id: str | None = None
    execution_qty: Decimal | None = None
    position_qty: Decimal | None = None
    event_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class OrderView:
    """The merged truth about one order (immutable; :func:`merge` returns a new one)."""

    order_id: str
    snapshot: OrderSnapshot
    execution_ids: frozenset[str] = field(default_factory=frozenset)
    #: The account's position after this order's latest execution event, and when.
    position_qty: Decimal | None = None
    position_time: datetime | None = None
    last_event_at: float | None = None
    last_rest_at: float | None = None
    #: Whether the snapshot's price came from a stream event at its current filled quantity.
    priced_by_event: bool = False
    #: Every observation that changed the view (a count, for tests and logs).
    changes: int = 0

    @property
    def status(self) -> str | None:
        """The order's status."""
        return self.snapshot.status

    @property
    def filled_qty(self) -> Decimal:
        """Cumulative filled quantity."""
        return self.snapshot.filled_qty

    @property
    def is_terminal(self) -> bool:
        """No further fills on this order id."""
        return self.snapshot.is_terminal

    @property
    def complete(self) -> bool:
        """Filled, with the whole quantity and a price: the broker's final word."""
        snap = self.snapshot
        return (
            snap.status == "filled"
            and snap.filled_qty > 0
            and snap.filled_avg_price is not None
            and (snap.qty is None or snap.filled_qty >= snap.qty)
        )

    @property
    def last_heard_at(self) -> float | None:
        """When anything was last learned about the order (stream or REST)."""
        times = [t for t in (self.last_event_at, self.last_rest_at) if t is not None]
        return max(times) if times else None


def view_of(order_id: str) -> OrderView:
    """An empty view of ``order_id`` (nothing known yet)."""
    return OrderView(order_id=order_id, snapshot=OrderSnapshot(order_id=order_id))


def _older(known: OrderSnapshot, new: OrderSnapshot) -> bool:
    """Whether ``new`` is an earlier version of the order than ``known``."""
    if known.status is None:
        return False
    if new.filled_qty < known.filled_qty:
        return True
    if known.is_terminal and new.status != known.status:
        return True
    if new.is_terminal and not known.is_terminal:
        # No version follows an end: a terminal read with as much filled is the newer one,
        # whatever its timestamp says (an IOC's new and canceled can share a microsecond,
        # or come out of order in a broker's clock).
        return False
    return (
        known.updated_at is not None
        and new.updated_at is not None
        and new.updated_at < known.updated_at
        and new.filled_qty <= known.filled_qty
    )


def _another_order(known: OrderSnapshot, new: OrderSnapshot) -> bool:
    """Whether ``new`` is a different order that reuses ``known``'s id (a reset account)."""
    if known.status is None:
        return False
    if (
        known.client_order_id
        and new.client_order_id
        and known.client_order_id != new.client_order_id
    ):
        return True
    return bool(known.submitted_at and new.submitted_at and known.submitted_at != new.submitted_at)


def _combine(known: OrderSnapshot, new: OrderSnapshot) -> OrderSnapshot:
    """``new`` as the current version, keeping what only ``known`` knew (a price, fields)."""
    price = new.filled_avg_price
    if price is None and new.filled_qty == known.filled_qty:
        price = known.filled_avg_price
    return replace(
        new,
        order_id=new.order_id or known.order_id,
        client_order_id=new.client_order_id or known.client_order_id,
        symbol=new.symbol or known.symbol,
        side=new.side or known.side,
        order_type=new.order_type or known.order_type,
        time_in_force=new.time_in_force or known.time_in_force,
        qty=new.qty if new.qty is not None else known.qty,
        limit_price=new.limit_price if new.limit_price is not None else known.limit_price,
        filled_avg_price=price,
        filled_at=new.filled_at or known.filled_at,
        submitted_at=new.submitted_at or known.submitted_at,
        replaced_by=new.replaced_by or known.replaced_by,
        replaces=new.replaces or known.replaces,
    )


def merge(view: OrderView, observation: Observation) -> tuple[OrderView, bool]:
    """``view`` updated with ``observation``, and whether the order's state changed.

    Pure and total: any observation, however garbled or late, gives a view (maybe the same).
    """
    snap = observation.snapshot
    stream = observation.source == "stream"
    heard = (
        replace(view, last_event_at=observation.at)
        if stream
        else replace(view, last_rest_at=observation.at)
    )
    if snap.order_id is not None and snap.order_id != view.order_id:
        return heard, False  # another order's record: says nothing about this one
    position = heard
    if observation.execution_id is not None:
        if observation.execution_id in view.execution_ids:
            return heard, False  # a duplicated event
        newer = observation.position_qty is not None and (
            view.position_time is None
            or observation.event_time is None
            or observation.event_time >= view.position_time
        )
        position = replace(
            heard,
            execution_ids=view.execution_ids | {observation.execution_id},
            position_qty=observation.position_qty if newer else view.position_qty,
            position_time=observation.event_time if newer else view.position_time,
        )
    if snap.status is not None and not snap.is_half_updated and _another_order(view.snapshot, snap):
        fresh = replace(
            view_of(view.order_id),
            last_event_at=heard.last_event_at,
            last_rest_at=heard.last_rest_at,
        )
        return merge(fresh, observation)
    if snap.status is None or snap.is_half_updated or _older(view.snapshot, snap):
        return position, False
    known = view.snapshot
    merged = _combine(known, snap) if known.status is not None else snap
    same_qty = known.status is not None and merged.filled_qty == known.filled_qty
    if (
        not stream
        and view.priced_by_event
        and same_qty
        and known.filled_avg_price is not None
        and merged.filled_avg_price != known.filled_avg_price
    ):
        # A read written in steps (quantity first) would give the previous price back.
        merged = replace(merged, filled_avg_price=known.filled_avg_price)
    # A stream event prices the view; a read keeps that mark only at the same quantity.
    priced = merged.filled_avg_price is not None if stream else view.priced_by_event and same_qty
    changed = merged != known
    if not changed:
        return replace(position, priced_by_event=priced), False
    return replace(
        position, snapshot=merged, priced_by_event=priced, changes=view.changes + 1
    ), True
