"""``fillguard demo``: real trades through SmartOrderExecutor against the embedded simulator,
every outcome checked against the simulator's ledger.

The simulator runs in-process on a free loopback port with a fault profile (``rough`` by
default); the real alpaca-py ``TradingClient`` talks to it over HTTP. Trades run in parallel,
one worker per symbol (a symbol's trades in order, as a bot would). At the end the executor
resolves its unresolved trades and catches up on its open orders, and each result is compared
with the ground truth: a fill we missed, a fill we claimed that did not happen, an order we
said was not placed that exists, a duplicate order, an ``UNKNOWN`` still unresolved, or a book
that differs from the broker's positions, makes the demo fail.

The seed fixes the trade plan and every fault the simulator draws (per knob, per order), not
the interleaving of threads or the real time requests take, so two runs of one seed can end
with different counts; every run must still agree with its own ledger.
"""

from __future__ import annotations

import random
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from fillguard.accounts import shutdown_account
from fillguard.config import FillDetectionConfig, OrderConfig
from fillguard.demo_checks import book_differences, journal_figures
from fillguard.executor import SmartOrderExecutor
from fillguard.observer import Observer
from fillguard.outcome import TradeOutcome, TradeResult
from fillguard.results import FillStatus
from fillguard.sim.faults import FaultProfile
from fillguard.snapshot import parse_timestamp, to_decimal

__all__ = [
    "DemoOptions",
    "DemoReport",
    "TradeCheck",
    "check_against_ledger",
    "mean",
    "percentile",
    "plan_trades",
    "render_report",
    "run_demo",
]

SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "TSLA", "META", "AMD")


@dataclass(frozen=True, kw_only=True, slots=True)
class DemoOptions:
    """What the demo runs."""

    orders: int = 60
    #: A profile name (calm, rough, hostile) or a FaultProfile (e.g. hostile with more knobs).
    faults: str | FaultProfile = "rough"
    seed: int = 0
    symbols: int = 6
    timeout_seconds: float = 4.0
    use_fill_detection_engine: bool = True
    #: The simulator's rate limit per minute, and fillguard's request budget (0 or None: off).
    rate_limit: int | None = 200
    #: After the drain, wait out the position lag window and check every symbol's position
    #: once more (a difference then is a mismatch, and the book is synced to the broker).
    final_position_check: bool = False
    #: Write the executor's journal in the run directory (a temporary one, removed at the end).
    journal: bool = True

    @property
    def limit(self) -> int | None:
        """The rate limit per minute in force, or None when off."""
        return self.rate_limit or None

    @property
    def faults_name(self) -> str:
        """The fault profile's name."""
        return self.faults if isinstance(self.faults, str) else self.faults.name


@dataclass(frozen=True, slots=True)
class PlannedTrade:
    """One trade of the demo's seeded plan."""

    index: int
    symbol: str
    qty: Decimal
    order_type: str
    time_in_force: str
    limit_offset: Decimal | None  # relative to the price at submit time
    sell_if_held: bool


@dataclass(frozen=True, slots=True)
class TradeCheck:
    """One trade's result compared with the ledger."""

    client_order_id: str
    verdict: str  # ok | missed | false_fill | ghost | unresolved | refused | not_placed
    detail: str = ""


@dataclass(slots=True)
class DemoReport:
    """Everything the summary shows; ``ok`` is False if anything disagrees with the ledger."""

    options: DemoOptions
    base_url: str = ""
    outcomes: Counter[str] = field(default_factory=Counter)
    checks: list[TradeCheck] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    api_calls: list[int] = field(default_factory=list)
    retries: int = 0
    slippages: list[Decimal] = field(default_factory=list)
    consistency: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    stray_orders: int = 0
    book_differences: list[str] = field(default_factory=list)
    resolved_later: int = 0
    requests: int = 0
    elapsed_seconds: float = 0.0
    #: REST requests by endpoint, counted at the simulator.
    request_mix: Counter[str] = field(default_factory=Counter)
    #: 429s the simulator's rate limit answered (must be 0), and 429s its burst fault injected.
    rate_limited: int = 0
    burst_429s: int = 0
    #: From the account's tracker and stream: trade_updates events received, reconnects of
    #: the stream, gaps repaired by a sweep (every connect opens one), sweeps made.
    stream_events: int = 0
    reconnects: int = 0
    gaps_repaired: int = 0
    sweeps: int = 0
    #: Orders another client of the account placed (the outside_trade knob).
    outside_orders: int = 0
    #: Verdicts of the final position checks (``final_position_check``).
    final_checks: Counter[str] = field(default_factory=Counter)
    #: Trades the journal holds, those it still holds unfinished, and orders at the broker
    #: (ours) whose client order id it lacks (must be 0).
    journal_trades: int = 0
    journal_unfinished: int = 0
    journal_missing: int = 0

    def count(self, verdict: str) -> int:
        """How many trades got ``verdict``."""
        return sum(1 for c in self.checks if c.verdict == verdict)

    @property
    def ok(self) -> bool:
        """No missed or false fill, no ghost, duplicate or stray order, no UNKNOWN left
        unresolved, and the book equal to the broker's positions."""
        return (
            self.count("missed") == 0
            and self.count("false_fill") == 0
            and self.count("ghost") == 0
            and self.count("unresolved") == 0
            and self.duplicates == 0
            and self.stray_orders == 0
            and not self.book_differences
            and self.journal_missing == 0
        )

    @property
    def requests_per_trade(self) -> float | None:
        """Every request the trades caused, counted at the simulator, per trade."""
        return self.requests / len(self.checks) if self.checks else None


def plan_trades(options: DemoOptions) -> list[PlannedTrade]:
    """The seeded list of trades: mostly market orders, some limits near the price."""
    rng = random.Random(f"fillguard-demo/{options.seed}")
    symbols = SYMBOLS[: max(1, min(options.symbols, len(SYMBOLS)))]
    trades = []
    for i in range(options.orders):
        symbol = symbols[i % len(symbols)]
        fractional = rng.random() < 0.2
        qty = Decimal(rng.randint(100, 3000)) / 1000 if fractional else Decimal(rng.randint(1, 20))
        order_type = "limit" if rng.random() < 0.3 else "market"
        tif = "day"
        if not fractional:
            tif = rng.choice(("day", "day", "gtc", "ioc"))
        # Limits straddle the price: some fill at once, some rest and time out.
        offset = Decimal(rng.randint(-30, 30)) / 10_000 if order_type == "limit" else None
        trades.append(
            PlannedTrade(i, symbol, qty, order_type, tif, offset, sell_if_held=rng.random() < 0.45)
        )
    return trades


def _demo_config(options: DemoOptions) -> OrderConfig:
    return OrderConfig(
        fill_detection=FillDetectionConfig(
            timeout_seconds=options.timeout_seconds,
            initial_poll_interval=0.05,
            poll_interval_increase=0.05,
            max_poll_interval=0.5,
            max_retries=5,
            retry_base_delay=0.05,
            retry_max_delay=0.5,
            request_timeout_seconds=1.0,
            final_verification_seconds=4.0,
            not_found_grace_seconds=2.0,
            rate_limit_per_minute=options.limit,
        ),
        use_fill_detection_engine=options.use_fill_detection_engine,
        consistency_timeout_seconds=2.0,
        consistency_initial_delay=0.05,
        consistency_max_delay=0.5,
        # Longer than the simulator's position lags (hostile: 0.4 s, long lags 5 s).
        position_settle_seconds=6.0,
        submit_timeout_seconds=12.0,
        lookup_attempts=3,
        lookup_spacing_seconds=0.3,
        # Longer than the simulator's longest "not found" lag (8 s).
        unknown_horizon_seconds=10.0,
    )


#: How long the end of the run may take to resolve what is still unknown (real seconds).
DRAIN_SECONDS = 30.0


def run_demo(
    options: DemoOptions,
    *,
    on_trade: Callable[[TradeResult, Counter[str]], None] | None = None,
    observer: Observer | None = None,
) -> DemoReport:
    """Start the simulator, run the trades, and check every outcome against the ledger.

    ``observer``: receives fillguard's reports (e.g. a PrometheusMetrics being served).
    """
    from fillguard.sim.server import run_simulator

    report = DemoReport(options)
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="fillguard-demo-") as run_dir,
        run_simulator(
            port=0, faults=options.faults, seed=options.seed, rate_limit=options.limit
        ) as sim,
    ):
        report.base_url = sim.base_url
        client = sim.trading_client()
        config = _demo_config(options)
        if options.journal:
            config = replace(config, journal_path=Path(run_dir) / "journal.sqlite3")
        executor = SmartOrderExecutor(client, config, observer=observer)
        trades = plan_trades(options)
        results: dict[str, tuple[TradeResult, float]] = {}
        order: list[str] = []
        lock = threading.Lock()
        by_symbol: dict[str, list[PlannedTrade]] = {}
        for trade in trades:
            by_symbol.setdefault(trade.symbol, []).append(trade)
        requests_before = sim.api.requests_total
        mix_before = Counter(sim.metrics.requests_by_endpoint())
        limited_before = sim.metrics.rate_limited()

        def run_symbol(symbol_trades: list[PlannedTrade]) -> None:
            for trade in symbol_trades:
                result, detected = _run_one(sim, executor, trade)
                with lock:
                    results[result.client_order_id] = (result, detected)
                    order.append(result.client_order_id)
                    report.outcomes[_outcome(result)] += 1
                    snapshot = Counter(report.outcomes)
                if on_trade is not None:
                    on_trade(result, snapshot)

        with ThreadPoolExecutor(max_workers=len(by_symbol)) as pool:
            for future in [pool.submit(run_symbol, ts) for ts in by_symbol.values()]:
                future.result()
        stream = executor.engine.tracker.stream  # held: its counters outlive a release
        _drain(executor, results, report, by_symbol, config)
        if options.final_position_check:
            _final_checks(executor, report, by_symbol, config)
        report.requests = sim.api.requests_total - requests_before
        report.request_mix = Counter(sim.metrics.requests_by_endpoint()) - mix_before
        limited = sim.metrics.rate_limited()
        report.rate_limited = limited["window"] - limited_before["window"]
        report.burst_429s = limited["burst"] - limited_before["burst"]
        _stream_figures(executor, stream, report)
        ledger = sim.ledger()
        check_against_ledger(report, [results[c] for c in order], ledger)
        journal_figures(executor, report, ledger)
        report.book_differences.extend(book_differences(executor, ledger, list(by_symbol)))
        executor.close()
        # While the simulator still runs (no reconnects to a stopped server): stop this
        # account's tracker, stream and budget, so a process running many demos (a benchmark)
        # keeps no loops or streams of stopped simulators.
        shutdown_account(client)
    report.elapsed_seconds = time.monotonic() - started
    return report


def _stream_figures(executor: SmartOrderExecutor, stream: Any, report: DemoReport) -> None:
    tracker = executor.engine.tracker
    stream = tracker.stream or stream
    report.stream_events = tracker.events
    report.gaps_repaired = tracker.gaps_repaired
    report.sweeps = tracker.sweeps
    report.reconnects = stream.stats().reconnects if stream is not None else 0


def _final_checks(
    executor: SmartOrderExecutor,
    report: DemoReport,
    by_symbol: dict[str, list[PlannedTrade]],
    config: OrderConfig,
) -> None:
    """Past the lag window of the last fill, check each symbol's position once more."""
    time.sleep(config.position_settle_seconds)
    for symbol in by_symbol:
        result = executor.check_position(symbol)
        report.final_checks[(result.verdict or "unverified") if result else "deferred"] += 1


def _drain(
    executor: SmartOrderExecutor,
    results: dict[str, tuple[TradeResult, float]],
    report: DemoReport,
    by_symbol: dict[str, list[PlannedTrade]],
    config: OrderConfig,
) -> None:
    """Resolve what is unknown and book what open orders filled, until quiet or time is up."""
    end = time.monotonic() + DRAIN_SECONDS
    while True:
        for resolved in executor.resolve_unknown():
            _old, detected = results[resolved.client_order_id]
            results[resolved.client_order_id] = (resolved, detected)
            report.resolved_later += 1
        for symbol in by_symbol:
            executor.reconcile_open_orders(symbol)
        quiet = not executor.unresolved_trades() and not any(
            executor.open_orders(symbol) for symbol in by_symbol
        )
        if quiet or time.monotonic() >= end:
            break
        time.sleep(0.25)
    # Past the lag window, the book is compared with the broker's true positions.
    time.sleep(min(1.0, config.fill_detection.request_timeout_seconds))


def _run_one(
    sim: Any, executor: SmartOrderExecutor, trade: PlannedTrade
) -> tuple[TradeResult, float]:
    price = sim.broker.price(trade.symbol)
    held = executor.expected_position(trade.symbol) or Decimal(0)
    side = "sell" if trade.sell_if_held and held >= trade.qty else "buy"
    limit = None
    if trade.limit_offset is not None:
        limit = (price * (1 + trade.limit_offset)).quantize(Decimal("0.01"))
    result = executor.execute_trade(
        trade.symbol,
        side,
        trade.qty,
        order_type=trade.order_type,
        limit_price=limit,
        time_in_force=trade.time_in_force,
        expected_price=price,
    )
    detected = time.time()
    if result.consistency is not None:
        detected -= result.consistency.elapsed_seconds  # the fill was known before the check
    return result, detected


def _outcome(result: TradeResult) -> str:
    if result.outcome is TradeOutcome.PLACED and result.fill is not None:
        return result.fill.status.value
    return result.outcome.value


def check_against_ledger(
    report: DemoReport, results: list[tuple[TradeResult, float]], ledger: dict[str, Any]
) -> None:
    """Fill ``report`` with per-trade verdicts and the aggregate figures."""
    by_id = {o["order"]["id"]: o for o in ledger["orders"]}
    by_coid: dict[str, list[dict[str, Any]]] = {}
    for entry in ledger["orders"]:
        by_coid.setdefault(entry["order"]["client_order_id"], []).append(entry)
    report.duplicates = sum(len(v) - 1 for v in by_coid.values() if len(v) > 1)
    ours = {r.client_order_id for r, _ in results}
    # A replacement of one of our orders (by another client of the account) is ours too.
    chained = {
        entry["order"]["client_order_id"]
        for entry in ledger["orders"]
        if entry["order"].get("replaces") in by_id
        and by_id[entry["order"]["replaces"]]["order"]["client_order_id"] in ours
    }
    # Orders another client placed (the outside_trade knob) are known to be someone else's.
    outside = {
        coid
        for coid, entries in by_coid.items()
        if all(p.get("source") == "outside" for e in entries for p in e["posts"] or [{}])
    }
    report.outside_orders = len(outside - ours)
    report.stray_orders = sum(1 for coid in by_coid if coid not in ours | chained | outside)
    for result, detected in results:
        report.api_calls.append(result.api_calls)
        if result.fill is not None:
            report.retries += result.fill.retries
            if result.fill.slippage_pct is not None:
                report.slippages.append(result.fill.slippage_pct)
        if result.consistency is not None:
            report.consistency[result.consistency.verdict or "unverified"] += 1
        check = _check_one(result, by_id, by_coid)
        report.checks.append(check)
        entry = by_id.get(result.order_id or "")
        if check.verdict == "ok" and result.filled and entry and entry["executions"]:
            last = max(
                (parse_timestamp(e["transaction_time"]) for e in entry["executions"]),
                key=lambda t: t or datetime.min,
            )
            if last is not None:
                report.latencies.append(max(0.0, detected - last.timestamp()))


def _check_one(
    result: TradeResult, by_id: dict[str, dict[str, Any]], by_coid: dict[str, list[dict[str, Any]]]
) -> TradeCheck:
    coid = result.client_order_id
    if result.outcome is TradeOutcome.UNKNOWN:
        return TradeCheck(coid, "unresolved", result.error or "outcome unknown")
    if result.outcome in (TradeOutcome.NOT_PLACED, TradeOutcome.REFUSED):
        # A broker's refusal (with an HTTP status) or "not placed" while an order with this
        # client_order_id exists is a ghost; a conflict refusal names someone else's order.
        broker_said = result.outcome is TradeOutcome.NOT_PLACED or (
            result.refusal is not None and result.refusal.status_code is not None
        )
        if broker_said and by_coid.get(coid):
            return TradeCheck(
                coid, "ghost", f"reported {result.outcome.value}, but it exists: {result.error}"
            )
        verdict = "refused" if result.outcome is TradeOutcome.REFUSED else "not_placed"
        return TradeCheck(coid, verdict, result.error or "")
    entry = by_id.get(result.order_id or "")
    fill = result.fill
    if entry is None or fill is None:
        return TradeCheck(coid, "false_fill", f"order {result.order_id} is not in the ledger")
    chain = _chain_of(entry, by_id)
    truth_qty = sum((to_decimal(e["order"]["filled_qty"]) or Decimal(0) for e in chain), Decimal(0))
    truth_notional = sum(
        (
            (to_decimal(x["qty"]) or Decimal(0)) * (to_decimal(x["price"]) or Decimal(0))
            for e in chain
            for x in e["executions"]
        ),
        Decimal(0),
    )
    last = chain[-1]["order"]
    truth_price = (
        to_decimal(last["filled_avg_price"])
        if len(chain) == 1
        else (truth_notional / truth_qty).quantize(Decimal("0.000000001"))
        if truth_qty
        else None
    )
    if fill.filled:
        if (
            last["status"] != "filled"
            or fill.filled_qty != truth_qty
            or fill.fill_price != truth_price
        ):
            return TradeCheck(
                coid,
                "false_fill",
                f"claimed {fill.filled_qty} @ {fill.fill_price}; ledger {last['status']} "
                f"{truth_qty} @ {truth_price}",
            )
        return TradeCheck(coid, "ok")
    if fill.filled_qty > truth_qty:
        return TradeCheck(coid, "false_fill", f"claimed {fill.filled_qty}, ledger {truth_qty}")
    if fill.status is FillStatus.UNKNOWN:
        return TradeCheck(coid, "unresolved", fill.error or "unknown")
    if fill.filled_qty < truth_qty and not fill.order_open:
        return TradeCheck(
            coid, "missed", f"said {fill.status.value} with {fill.filled_qty}; ledger {truth_qty}"
        )
    if fill.filled_qty > 0 and fill.filled_qty == truth_qty and fill.fill_price != truth_price:
        return TradeCheck(coid, "false_fill", f"price {fill.fill_price}, ledger {truth_price}")
    return TradeCheck(coid, "ok")


def _chain_of(entry: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The order and every replacement after it, from the ledger."""
    chain = [entry]
    seen = {entry["order"]["id"]}
    while (nxt := chain[-1]["order"].get("replaced_by")) and nxt in by_id and nxt not in seen:
        seen.add(nxt)
        chain.append(by_id[nxt])
    return chain


# The summary's renderers live in demo_summary; re-exported here for callers of old.
from fillguard.demo_summary import mean, percentile, render_report  # noqa: E402
