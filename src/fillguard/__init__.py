"""fillguard: trustworthy order execution and fill detection on Alpaca."""

import logging

from fillguard.clock import Clock, FakeClock, SystemClock
from fillguard.config import FillDetectionConfig
from fillguard.consistency import ConsistencyResult, StateConsistencyValidator
from fillguard.engine import FillDetectionEngine
from fillguard.errors import (
    BrokerError,
    FillguardError,
    InvalidInputError,
    OutcomeUnknownError,
    RefusedError,
    TransientError,
)
from fillguard.executor import OrderConfig, SmartOrderExecutor, TradeResult
from fillguard.final import FinalCheck, FinalVerificationHandler
from fillguard.logs import JsonFormatter
from fillguard.results import FillResult, FillStatus, FillVerification
from fillguard.retry import ErrorRecoveryManager
from fillguard.snapshot import OrderSnapshot
from fillguard.verify import MultiMethodVerifier

__version__ = "0.1.0"

# A library never configures logging; this only keeps Python's last-resort handler quiet.
logging.getLogger("fillguard").addHandler(logging.NullHandler())

__all__ = [
    "BrokerError",
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
    "OrderConfig",
    "OrderSnapshot",
    "OutcomeUnknownError",
    "RefusedError",
    "SmartOrderExecutor",
    "StateConsistencyValidator",
    "SystemClock",
    "TradeResult",
    "TransientError",
    "__version__",
]
