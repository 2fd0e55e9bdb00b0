"""Query parameters of GET /v2/orders: which orders it answers."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from fillguard.sim.messages import ApiRequest
from fillguard.sim.orders import SimOrder
from fillguard.sim.validation import invalid, parse_bool, parse_time

__all__ = ["OrderScan", "select_orders"]

# scan(status, newest_first=...): the orders of a status in (reverse) creation order, lazily.
OrderScan = Callable[..., Iterator[SimOrder]]


def select_orders(req: ApiRequest, orders: Iterable[SimOrder] | OrderScan) -> list[SimOrder]:
    """The orders GET /v2/orders lists for ``req`` (status, limit, direction, after, until,
    symbols, side; Alpaca's defaults: open, 50, desc); bad values are 422.

    ``orders`` is every order, or a scan (see :data:`OrderScan`): then only as many orders are
    read as the answer holds, plus those the filters skip.
    """
    status = req.arg("status") or "open"
    if status not in ("open", "closed", "all"):
        raise invalid(f"invalid status: {status}")
    limit_s = req.arg("limit") or "50"
    try:
        limit = int(limit_s)
    except ValueError:
        raise invalid(f"invalid limit: {limit_s}") from None
    if not 1 <= limit <= 500:
        raise invalid("limit must be between 1 and 500")
    direction = (req.arg("direction") or "desc").lower()
    if direction not in ("asc", "desc"):
        raise invalid(f"invalid direction: {direction}")
    after = parse_time(a, "after") if (a := req.arg("after")) else None
    until = parse_time(u, "until") if (u := req.arg("until")) else None
    parse_bool(req.arg("nested"), "nested")
    symbols = {s.strip().upper() for s in (req.arg("symbols") or "").split(",") if s.strip()}
    side = req.arg("side")
    newest_first = direction == "desc"
    if callable(orders):
        source: Iterable[SimOrder] = orders(status, newest_first=newest_first)
    else:
        source = orders
    key = _created
    out = []
    for order in source:
        is_open = order.is_open
        if (status == "open" and not is_open) or (status == "closed" and is_open):
            continue
        if symbols and order.symbol not in symbols:
            continue
        if side and order.side != side:
            continue
        if after and not order.created_at > after:
            continue
        if until and not order.created_at < until:
            continue
        out.append(order)
        # A scan comes in creation order: stop at the limit, once the tie with the last is over.
        if callable(orders) and len(out) > limit and key(out[-1]) != key(out[limit - 1]):
            out.pop()
            break
    if callable(orders) and newest_first:
        out.reverse()  # back to creation order, so the sort breaks ties as for every order
    out.sort(key=key, reverse=newest_first)
    return out[:limit]


def _created(order: SimOrder) -> tuple[Any, float]:
    return (order.created_at, order.created_mono)
