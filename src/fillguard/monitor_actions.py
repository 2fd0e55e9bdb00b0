"""What a :class:`~fillguard.monitor.MonitorMachine` asks its driver to do: the action values."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from fillguard.results import FillResult

__all__ = ["Action", "Cancel", "FetchPrice", "Finish", "Follow", "Read"]


@dataclass(frozen=True, slots=True)
class Read:
    """Read the order now (by id, or in a sweep); ``grace_until``: until when a 404 is lag."""

    order_id: str
    reason: str
    grace_until: float
    deadline: float


@dataclass(frozen=True, slots=True)
class Cancel:
    """Ask the broker to cancel the order (an answer proves nothing by itself)."""

    order_id: str
    deadline: float


@dataclass(frozen=True, slots=True)
class FetchPrice:
    """Price the fill from the FILL activities (the order says filled, its price is null)."""

    order_id: str
    filled_qty: Decimal
    deadline: float


@dataclass(frozen=True, slots=True)
class Follow:
    """The order was replaced: watch ``new_id`` from now on."""

    old_id: str
    new_id: str


@dataclass(frozen=True, slots=True)
class Finish:
    """Monitoring is over."""

    result: FillResult


Action = Read | Cancel | FetchPrice | Follow | Finish
