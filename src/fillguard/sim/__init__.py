"""An Alpaca-compatible paper broker with fault injection, for tests and offline bots.

``run_simulator(port=0, faults="rough", seed=1)`` serves Trading API v2 and the
trade_updates websocket on a loopback port; ``in_process_client(api)`` wires a real
``TradingClient`` to the broker core with no sockets, for fake-time tests.
"""

from fillguard.sim.api import SimApi
from fillguard.sim.core import Broker, BrokerConfig
from fillguard.sim.faults import PROFILES, FaultProfile, profile_from
from fillguard.sim.inprocess import in_process_client
from fillguard.sim.server import DEFAULT_KEY_ID, DEFAULT_SECRET_KEY, SimServer, run_simulator

__all__ = [
    "DEFAULT_KEY_ID",
    "DEFAULT_SECRET_KEY",
    "PROFILES",
    "Broker",
    "BrokerConfig",
    "FaultProfile",
    "SimApi",
    "SimServer",
    "in_process_client",
    "profile_from",
    "run_simulator",
]
