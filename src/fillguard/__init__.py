"""fillguard: trustworthy order execution and fill detection on Alpaca."""

import logging

from fillguard.clock import Clock, FakeClock, SystemClock
from fillguard.config import FillDetectionConfig, OrderConfig
from fillguard.consistency import ConsistencyResult, StateConsistencyValidator
from fillguard.engine import FillDetectionEngine
from fillguard.errors import (
    BrokerError,
    ClientSideError,
    FillguardError,
    InvalidInputError,
    OutcomeUnknownError,
    RefusedError,
    TransientError,
    UnparseableResponseError,
)
from fillguard.executor import SmartOrderExecutor
from fillguard.final import FinalCheck, FinalVerificationHandler
from fillguard.logs import JsonFormatter
from fillguard.observer import NULL_OBSERVER, NullObserver, Observer
from fillguard.outcome import TradeOutcome, TradeResult
from fillguard.results import ChainLink, FillResult, FillStatus, FillVerification, Refusal
from fillguard.retry import ErrorRecoveryManager
from fillguard.snapshot import OrderSnapshot
from fillguard.verify import MultiMethodVerifier

__version__ = "0.1.0"

# A library never configures logging; this only keeps Python's last-resort handler quiet.
logging.getLogger("fillguard").addHandler(logging.NullHandler())

__all__ = [
    "NULL_OBSERVER",
    "BrokerError",
    "ChainLink",
    "ClientSideError",
    "Clock",
    "ConsistencyResult",
    "ErrorRecoveryManager",
    "FakeClock",
    "FillDetectionConfig",
    "FillDetectionEngine",
    "FillResult",
    "FillStatus",
    "FillVerification",
    "FillguardError",
    "FinalCheck",
    "FinalVerificationHandler",
    "InvalidInputError",
    "JsonFormatter",
    "MultiMethodVerifier",
    "NullObserver",
    "Observer",
    "OrderConfig",
    "OrderSnapshot",
    "OutcomeUnknownError",
    "Refusal",
    "RefusedError",
    "SmartOrderExecutor",
    "StateConsistencyValidator",
    "SystemClock",
    "TradeOutcome",
    "TradeResult",
    "TransientError",
    "UnparseableResponseError",
    "__version__",
]
