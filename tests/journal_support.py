"""Builders for journal records and a child-process runner shared by the journal tests."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from fillguard.journal import (
    Baseline,
    Booking,
    JournalAccount,
    OutcomeKind,
    SubmitAttempt,
    SubmitOutcome,
    TradeFinal,
    TradeIntent,
)
from fillguard.results import FillStatus

ACCOUNT = JournalAccount(key_id="PKJOURNALTEST", base_url="http://127.0.0.1:8787")
T0 = datetime(2026, 11, 24, 13, 0, 0, 123456, tzinfo=UTC)
SRC = str(Path(__file__).resolve().parents[1] / "src")


def at(seconds: float) -> datetime:
    """``T0`` plus ``seconds``."""
    return T0 + timedelta(seconds=seconds)


def intent(
    coid: str = "c1",
    *,
    symbol: str = "AAPL",
    side: str = "buy",
    qty: str = "1",
    order_type: str = "market",
    limit_price: str | None = None,
) -> TradeIntent:
    """A trade intent with sensible defaults."""
    return TradeIntent(
        client_order_id=coid,
        symbol=symbol,
        side=side,
        qty=Decimal(qty),
        order_type=order_type,
        time_in_force="day",
        created_at=T0,
        limit_price=None if limit_price is None else Decimal(limit_price),
    )


def attempt(coid: str = "c1", number: int = 1) -> SubmitAttempt:
    """Attempt ``number`` of ``coid``."""
    return SubmitAttempt(client_order_id=coid, attempt=number, at=at(number))


def placed(coid: str = "c1", order_id: str = "o1") -> SubmitOutcome:
    """A placed outcome."""
    return SubmitOutcome(
        client_order_id=coid, outcome=OutcomeKind.PLACED, order_id=order_id, at=at(2)
    )


def booking(
    order_id: str = "o1",
    coid: str = "c1",
    qty: str = "1",
    *,
    symbol: str = "AAPL",
    side: str = "buy",
) -> Booking:
    """A booking of ``order_id``'s cumulative ``qty``."""
    return Booking(
        order_id=order_id,
        client_order_id=coid,
        symbol=symbol,
        side=side,
        filled_qty=Decimal(qty),
        at=at(3),
    )


def baseline(symbol: str = "AAPL", qty: str = "0", seconds: float = 0) -> Baseline:
    """A baseline."""
    return Baseline(symbol=symbol, qty=Decimal(qty), at=at(seconds))


def final(
    coid: str = "c1", status: str = "filled", qty: str = "1", price: str | None = "190.5"
) -> TradeFinal:
    """A final status."""
    return TradeFinal(
        client_order_id=coid,
        status=FillStatus(status),
        filled_qty=Decimal(qty),
        fill_price=None if price is None else Decimal(price),
        order_ids=("o1",),
        at=at(4),
    )


def child_env() -> dict[str, str]:
    """The environment for a child Python that imports fillguard from this tree's ``src``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_child(
    code: str, *args: str, user: int | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh Python (optionally as another uid); the child is always reaped.

    As another uid, the test is skipped (with the reason) when that user cannot run this
    interpreter or import fillguard: a checkout in a private directory (``mktemp -d`` makes
    it 0700) is out of its reach.
    """
    if user is not None:
        try:
            probe = subprocess.run(
                [sys.executable, "-c", "import fillguard"],
                capture_output=True,
                text=True,
                env=child_env(),
                timeout=timeout,
                user=user,
                check=False,
            )
            why = probe.stderr.strip().splitlines()[-1:] if probe.returncode else None
        except OSError as exc:
            why = [str(exc)]
        if why is not None:
            pytest.skip(
                f"uid {user} cannot run {sys.executable} with fillguard "
                f"(the checkout is not readable by other users): {' '.join(why) or 'exit 255'}"
            )
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=timeout,
        user=user,
        check=False,
    )


#: The start of every child script: imports and the test account; ``sys.argv[1]`` is the path.
CHILD_PRELUDE = f"""
import json, os, signal, sys
from datetime import datetime, UTC
from decimal import Decimal
from fillguard.journal import *
from fillguard.journal_sqlite import SqliteJournal
ACCOUNT = JournalAccount(key_id={ACCOUNT.key_id!r}, base_url={ACCOUNT.base_url!r})
NOW = datetime.now(UTC)
"""
