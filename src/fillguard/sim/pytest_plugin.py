"""A pytest plugin: the simulator in a bot author's own tests (entry point ``pytest11``).

Installed with fillguard, it adds fixtures and nothing else; nothing starts unless a test asks::

    def test_my_bot_buys(fillguard_client, fillguard_ledger):
        fillguard_client.submit_order(MarketOrderRequest(symbol="AAPL", qty=1, side="buy",
                                                         time_in_force="day"))
        ...

Fixtures:

- ``fillguard_sim``: a running :class:`~fillguard.sim.server.SimServer` on a loopback port,
  reset to a fresh calm broker for every test (one server per session; a test marked
  ``@pytest.mark.fillguard_sim(seed=..., config=..., rate_limit=...)`` gets its own);
  ``@pytest.mark.fillguard_sim(faults="rough")`` starts the test with that fault profile.
- ``fillguard_client``: a real alpaca-py ``TradingClient`` for it (``fillguard_stream``: a
  ``TradingStream``, not started).
- ``fillguard_ledger``: call it for the ground truth (``GET /_sim/ledger``).
- ``fillguard_faults``: switch faults during a test: ``fillguard_faults.set("hostile")``,
  ``fillguard_faults.set(partial_fill_rate=1.0)``, ``fillguard_faults.calm()``.
- ``fillguard_clock``: the market's clock and session: ``now()``, ``close_session()``,
  ``open_session()``, ``set_price(symbol, price)``, ``wait_for(predicate)``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from fillguard.sim.faults import FaultProfile
    from fillguard.sim.server import SimServer

__all__ = ["FaultControl", "MarketClock"]

_MARKER = "fillguard_sim"


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker (so ``--strict-markers`` suites accept it)."""
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(faults=..., seed=..., config=..., rate_limit=...): how the fillguard "
        "simulator fixtures start this test",
    )


class FaultControl:
    """Switch the simulator's fault profile during a test; state is kept."""

    def __init__(self, server: SimServer) -> None:
        self._server = server

    @property
    def current(self) -> FaultProfile:
        """The profile in force."""
        return self._server.broker.faults

    def set(self, profile: str | dict[str, Any] | None = None, **knobs: Any) -> FaultProfile:
        """A profile by name or dict, and/or knobs on top of it (``base`` is calm)."""
        from fillguard.sim.faults import profile_from

        base = profile_from(profile) if profile is not None else None
        if knobs:
            values = {**(base.to_dict() if base else {}), **knobs}
            return self._server.set_faults(values)
        return self._server.set_faults(base or "calm")

    def calm(self) -> FaultProfile:
        """Every knob off."""
        return self._server.set_faults("calm")


class MarketClock:
    """The simulator's clock, trading session and prices."""

    def __init__(self, server: SimServer) -> None:
        self._server = server

    def now(self) -> datetime:
        """The simulator's current time."""
        return self._server.broker.clock.now()

    def close_session(self) -> dict[str, int]:
        """End the trading day: open day orders expire, GTC orders go done_for_day."""
        result: dict[str, int] = self._server._sim("POST", "close_session")
        return result

    def open_session(self) -> dict[str, int]:
        """Start a trading day: done_for_day orders resume."""
        result: dict[str, int] = self._server._sim("POST", "open_session")
        return result

    def set_price(self, symbol: str, price: Decimal | float | str) -> Decimal:
        """Pin ``symbol``'s price from now on (resting limit orders are checked at once)."""
        body = self._server._sim("PUT", f"prices/{symbol}", {"price": str(price)})
        return Decimal(body["price"])

    def wait_for(
        self,
        predicate: Callable[[], Any],
        timeout_seconds: float = 10.0,
        poll_seconds: float = 0.01,
    ) -> Any:
        """Poll ``predicate`` until it returns something truthy (returned) or time runs out."""
        deadline = time.monotonic() + timeout_seconds
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"not reached within {timeout_seconds} s")
            time.sleep(poll_seconds)


@pytest.fixture(scope="session")
def fillguard_sim_session() -> Iterator[SimServer]:
    """The session's simulator (calm, seed 0, no rate limit), stopped at the end."""
    from fillguard.sim.server import run_simulator

    with run_simulator(port=0, faults="calm", seed=0, rate_limit=None) as server:
        yield server


@pytest.fixture
def fillguard_sim(request: pytest.FixtureRequest) -> Iterator[SimServer]:
    """A running simulator, fresh for this test (see the module docs for the marker)."""
    marker = request.node.get_closest_marker(_MARKER)
    options: dict[str, Any] = dict(marker.kwargs) if marker else {}
    faults = options.pop("faults", "calm")
    if options:
        from fillguard.sim.server import run_simulator

        options.setdefault("rate_limit", None)
        with run_simulator(port=0, faults=faults, **options) as own:
            yield own
        return
    server: SimServer = request.getfixturevalue("fillguard_sim_session")
    server.api.rate_limit = None
    server.reset(faults)
    try:
        yield server
    finally:
        server.set_faults("calm")


@pytest.fixture
def fillguard_client(fillguard_sim: SimServer) -> Any:
    """A real alpaca-py ``TradingClient`` pointed at the simulator."""
    return fillguard_sim.trading_client()


@pytest.fixture
def fillguard_stream(fillguard_sim: SimServer) -> Any:
    """A real alpaca-py ``TradingStream`` pointed at the simulator (not started)."""
    return fillguard_sim.trading_stream()


@pytest.fixture
def fillguard_ledger(fillguard_sim: SimServer) -> Callable[[], dict[str, Any]]:
    """Call it for the ground truth: every order, POST, execution, position and the cash."""
    return fillguard_sim.ledger


@pytest.fixture
def fillguard_faults(fillguard_sim: SimServer) -> FaultControl:
    """Switch faults during the test (calm again after it)."""
    return FaultControl(fillguard_sim)


@pytest.fixture
def fillguard_clock(fillguard_sim: SimServer) -> MarketClock:
    """The simulator's clock, session and prices."""
    return MarketClock(fillguard_sim)
