"""The simulator's broker core: pure paper-broker state on an injected clock and seeded RNG.

No sockets here. The core holds the account, orders, executions and positions, and plays
Alpaca's order lifecycle: ``accepted`` at submit, ``pending_new`` and ``new`` after a routing
latency, fills after a fill latency (in several executions when the partial-fill fault fires),
limit orders filling when the seeded price path crosses, cancel and replace as *requests*
(``pending_cancel``/``pending_replace`` first, the result after a latency unless a fill lands
first), and ``done_for_day`` for GTC orders out of session.

Time only moves when the caller says so: :meth:`Broker.advance` applies every scheduled
action that is due at the clock's current time, in order. Every public method advances first,
so a reader always sees the state as of "now". Every transition emits one trade event.

The broker is built in layers, one module each: :mod:`~fillguard.sim.state` (state, time,
events), :mod:`~fillguard.sim.lifecycle` (submit, fills, cancel, session),
:mod:`~fillguard.sim.replace` (PATCH) and :mod:`~fillguard.sim.views` (REST reads with faults).
"""

from __future__ import annotations

from fillguard.sim.lifecycle import split_qty
from fillguard.sim.replace import ReplaceRequest
from fillguard.sim.state import (
    BrokerConfig,
    DuplicateClientOrderIdError,
    OrderRequest,
    SimError,
    TradeEventRecord,
    asset_id_for,
)
from fillguard.sim.views import HALF_UPDATE_VARIANTS, Views

__all__ = [
    "HALF_UPDATE_VARIANTS",
    "Broker",
    "BrokerConfig",
    "DuplicateClientOrderIdError",
    "OrderRequest",
    "ReplaceRequest",
    "SimError",
    "TradeEventRecord",
    "asset_id_for",
    "split_qty",
]


class Broker(Views):
    """The paper broker. Thread-safe: every public method holds one re-entrant lock."""
