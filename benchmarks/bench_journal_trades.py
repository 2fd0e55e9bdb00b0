"""The journal's cost per trade, and recovery time, through the executor and a real simulator.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_journal_trades.py [--trades 200]

(a) ``fillguard sim`` in its own process (calm, rate limit off), the real alpaca-py client over
loopback, one executor per mode: market trades one after another, with the journal off and on
(SQLite, intent and attempt fsynced), in alternating blocks of 20 so drift in the machine's load
falls on both (each executor in its own symbol); per-trade latency p50/p99 and trades per
second. The raw cost of the two fsynced
commits (intent, attempt) is measured in the same run on the same directory.
(b) Recovery: a journal holding 10,000 finished trades (5 records each) and 100 unfinished
ones whose orders exist at the simulator (placed, the process "died" before monitoring): the
time for a new executor to open it and recover (book rebuilt, 100 orders looked up and
finished, positions compared), median of 3.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from support import machine, sim_process

from fillguard.config import FillDetectionConfig, OrderConfig
from fillguard.executor import SmartOrderExecutor
from fillguard.journal import (
    Booking,
    OutcomeKind,
    SubmitAttempt,
    SubmitOutcome,
    TradeFinal,
    TradeIntent,
)
from fillguard.journal_sqlite import SqliteJournal
from fillguard.journaling import journal_account
from fillguard.results import FillStatus


def _client(base_url: str) -> Any:
    from alpaca.trading.client import TradingClient

    from fillguard.sim.server import DEFAULT_KEY_ID, DEFAULT_SECRET_KEY

    return TradingClient(DEFAULT_KEY_ID, DEFAULT_SECRET_KEY, url_override=base_url)


def _config(journal: Path | None) -> OrderConfig:
    return OrderConfig(
        fill_detection=FillDetectionConfig(timeout_seconds=5.0, rate_limit_per_minute=None),
        journal_path=journal,
    )


def _market_buy(coid: str, symbol: str, at: dt.datetime) -> TradeIntent:
    return TradeIntent(
        client_order_id=coid,
        symbol=symbol,
        side="buy",
        qty=Decimal(1),
        order_type="market",
        time_in_force="day",
        created_at=at,
    )


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_trades(base_url: str, trades: int, directory: Path) -> dict[str, Any]:
    """Per-trade latency with the journal off and on, alternating blocks."""
    client = _client(base_url)
    off = SmartOrderExecutor(client, _config(None))
    on = SmartOrderExecutor(client, _config(directory / "trades.sqlite3"))
    times: dict[str, list[float]] = {"off": [], "on": []}
    # Each executor trades its own symbol: one's fills would be "outside trades" to the
    # other's position checks.
    symbol = {"off": "AAPL", "on": "MSFT"}
    for block in range(max(1, trades // 20)):
        for name, executor in (("off", off), ("on", on))[:: 1 if block % 2 else -1]:
            for _ in range(20):
                start = time.perf_counter()
                result = executor.execute_trade(symbol[name], "buy", 1)
                times[name].append(time.perf_counter() - start)
                assert result.filled, result
    on.close()
    out: dict[str, Any] = {}
    for name, values in times.items():
        out[name] = {
            "n": len(values),
            "p50_ms": 1000 * statistics.median(values),
            "p99_ms": 1000 * _pct(values, 0.99),
            "trades_per_s": len(values) / sum(values),
        }
    # The cost on its own: two fsynced commits (intent, attempt) per trade, same directory.
    journal = SqliteJournal(directory / "fsync.sqlite3", account=journal_account(client))
    costs = []
    now = dt.datetime.now(dt.UTC)
    for i in range(200):
        coid = f"f-{i}"
        start = time.perf_counter()
        journal.record_intent(_market_buy(coid, "AAPL", now))
        journal.record_attempt(SubmitAttempt(client_order_id=coid, attempt=1, at=now))
        costs.append(time.perf_counter() - start)
    journal.close()
    out["intent_and_attempt_commit_ms"] = {
        "p50": 1000 * statistics.median(costs),
        "p99": 1000 * _pct(costs, 0.99),
    }
    return out


def _fill_journal(path: Path, base_url: str, finished: int, unfinished: int) -> None:
    """``finished`` synthetic finished trades, and ``unfinished`` real placed orders."""
    client = _client(base_url)
    journal = SqliteJournal(path, account=journal_account(client))
    now = dt.datetime.now(dt.UTC)
    for i in range(finished):
        coid = f"done-{i}"
        symbol = ("AAPL", "MSFT", "NVDA")[i % 3]
        journal.record_intent(_market_buy(coid, symbol, now))
        journal.record_attempt(SubmitAttempt(client_order_id=coid, attempt=1, at=now))
        oid = str(uuid.uuid4())
        journal.record_outcome(
            SubmitOutcome(client_order_id=coid, outcome=OutcomeKind.PLACED, at=now, order_id=oid)
        )
        journal.record_booking(
            Booking(
                order_id=oid,
                client_order_id=coid,
                symbol=symbol,
                side="buy",
                filled_qty=Decimal(1),
                at=now,
            )
        )
        journal.record_final(
            TradeFinal(
                client_order_id=coid,
                status=FillStatus.FILLED,
                filled_qty=Decimal(1),
                at=now,
                fill_price=Decimal(100),
                order_ids=(oid,),
            )
        )
    from alpaca.trading.enums import OrderSide, TimeInForce
    from alpaca.trading.requests import MarketOrderRequest

    for i in range(unfinished):
        coid = f"open-{i}-{uuid.uuid4().hex[:8]}"
        journal.record_intent(_market_buy(coid, "AMZN", dt.datetime.now(dt.UTC)))
        journal.record_attempt(
            SubmitAttempt(client_order_id=coid, attempt=1, at=dt.datetime.now(dt.UTC))
        )
        order = client.submit_order(
            MarketOrderRequest(
                symbol="AMZN",
                qty=1,
                side=OrderSide.BUY,
                time_in_force=TimeInForce.DAY,
                client_order_id=coid,
            )
        )
        journal.record_outcome(
            SubmitOutcome(
                client_order_id=coid,
                outcome=OutcomeKind.PLACED,
                at=dt.datetime.now(dt.UTC),
                order_id=str(order.id),
            )
        )
    journal.close()


def bench_recovery(base_url: str, directory: Path, runs: int = 3) -> dict[str, Any]:
    """Open-and-recover time for 10,000 finished and 100 unfinished trades."""
    seconds: list[float] = []
    report: Any = None
    for run in range(runs):
        path = directory / f"recover-{run}.sqlite3"
        _fill_journal(path, base_url, 10_000, 100)
        client = _client(base_url)
        config = OrderConfig(
            fill_detection=FillDetectionConfig(rate_limit_per_minute=None),
            consistency_check=False,  # synthetic bookings have no positions behind them
            journal_path=path,
        )
        start = time.perf_counter()
        executor = SmartOrderExecutor(client, config)
        seconds.append(time.perf_counter() - start)
        report = executor.last_recovery
        executor.close()
    assert report is not None
    return {
        "median_s": statistics.median(seconds),
        "runs_s": seconds,
        "resumed": len(report.resumed),
        "finished": len(report.finished),
        "unresolved": len(report.unresolved),
    }


def main() -> None:
    """Run both parts and print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--trades", type=int, default=200)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp, sim_process(7) as (base_url, _pid):
        trades = bench_trades(base_url, args.trades, Path(tmp))
        for name in ("off", "on"):
            t = trades[name]
            print(
                f"journal {name:3}: {t['n']} trades, p50 {t['p50_ms']:.1f} ms, "
                f"p99 {t['p99_ms']:.1f} ms, {t['trades_per_s']:.1f} trades/s"
            )
        c = trades["intent_and_attempt_commit_ms"]
        print(f"intent + attempt commits (fsynced): p50 {c['p50']:.2f} ms, p99 {c['p99']:.2f} ms")
        rec = bench_recovery(base_url, Path(tmp))
        print(
            f"recovery of 10,000 finished + 100 unfinished: median {rec['median_s']:.2f} s "
            f"(runs {', '.join(f'{s:.2f}' for s in rec['runs_s'])}); resumed {rec['resumed']}, "
            f"finished {rec['finished']}, unresolved {rec['unresolved']}"
        )


if __name__ == "__main__":
    main()
