"""Stream-first order tracking (issue 8, Performance 1-3), against ``fillguard sim`` in its own process.

    .venv/bin/python benchmarks/bench_tracker.py                 # everything (about 12 minutes)
    .venv/bin/python benchmarks/bench_tracker.py --parts 1 --trades 200   # a quick look

(1) 1,000 trades in flight, rate limit off: resting limit buys (``execute_trade``) that are all
    being watched before the market comes down through their limits over about 3 s, so fills
    arrive while every other trade is still in flight. Three ways of detecting the fills, each
    in its own process on a fresh broker: stream-first (the default), poll-only
    (``use_stream=False``) and the legacy loop (``use_fill_detection_engine=False``, the
    benchmark baseline, a thread per trade as it always had). Detection latency runs from the
    ledger's last execution of the order to the moment the executor had the fill; REST calls are
    counted at the simulator (every request the run caused); threads, peak RSS and CPU are the
    trading process's own.
(2) Alpaca's limit, 200 requests/min at the simulator and in fillguard's budget, calm and rough:
    one trading task per symbol running market trades back to back (``execute_trade_async``)
    for ``--limited-seconds``; trades per minute after the first minute (whose 200 requests come
    free), UNKNOWN count and 429s at the simulator.
(3) 10,000 orders monitored at once (``engine.monitor_orders``, stream on): memory per order
    (``tracemalloc`` and RSS) once all are watched, then CPU per stream event while they fill.

Each part runs its trading side in a child process (``worker``), so RSS and thread counts are
its own; the simulator runs in another.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import resource
import subprocess
import sys
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests
from support import CONTROL_HEADERS, machine, sim_process, write_section

from fillguard import FillDetectionConfig, FillDetectionEngine, TradeOutcome
from fillguard.executor import OrderConfig, SmartOrderExecutor
from fillguard.sim import DEFAULT_KEY_ID, DEFAULT_SECRET_KEY
from fillguard.snapshot import parse_timestamp

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Stream-first order tracking"
SYMBOLS = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "AMD"]
AUTH = {"APCA-API-KEY-ID": DEFAULT_KEY_ID, "APCA-API-SECRET-KEY": DEFAULT_SECRET_KEY}
_METRIC = re.compile(
    r'^fillguard_sim_requests_total\{endpoint="([^"]+)",status="([^"]+)"\} ([0-9.e+]+)$', re.M
)
_BURSTS = re.compile(r'^fillguard_sim_faults_total\{knob="rate_limit_burst"\} ([0-9.e+]+)$', re.M)


# ---------------------------------------------------------------------------------- helpers
def sim_requests(url: str) -> Counter[tuple[str, str]]:
    """Requests the simulator answered so far, by (endpoint, status), ground truth excluded."""
    text = requests.get(f"{url}/metrics", timeout=10).text
    out: Counter[tuple[str, str]] = Counter()
    for endpoint, status, value in _METRIC.findall(text):
        if endpoint != "sim_control":
            out[(endpoint, status)] += int(float(value))
    # 429s the fault profile injected (rate_limit_burst), not caused by the request rate.
    out[("injected_429", "")] = sum(int(float(v)) for v in _BURSTS.findall(text))
    return out


def sim_reset(url: str, faults: str) -> None:
    requests.post(
        f"{url}/_sim/reset", json={"faults": faults}, headers=CONTROL_HEADERS, timeout=30
    ).raise_for_status()


def sim_price(url: str, symbol: str) -> Decimal:
    return Decimal(
        requests.get(f"{url}/_sim/prices/{symbol}", headers=CONTROL_HEADERS, timeout=10).json()[
            "price"
        ]
    )


def set_price(session: requests.Session, url: str, symbol: str, price: Decimal) -> None:
    session.put(
        f"{url}/_sim/prices/{symbol}",
        json={"price": str(price)},
        headers=CONTROL_HEADERS,
        timeout=10,
    )


def ledger(url: str) -> dict[str, dict[str, Any]]:
    rows = requests.get(f"{url}/_sim/ledger", headers=CONTROL_HEADERS, timeout=60).json()["orders"]
    return {row["order"]["id"]: row for row in rows}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def native_threads() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return threading.active_count()


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class ThreadSampler:
    """The peak number of OS threads of this process, sampled every 20 ms (itself included)."""

    def __init__(self) -> None:
        self.peak = native_threads()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ThreadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, native_threads())


def percentile(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[k]


def trading_client(url: str) -> Any:
    from alpaca.trading.client import TradingClient

    return TradingClient(DEFAULT_KEY_ID, DEFAULT_SECRET_KEY, url_override=url)


def detection_config(**overrides: Any) -> FillDetectionConfig:
    values: dict[str, Any] = {"timeout_seconds": 600.0, "rate_limit_per_minute": None}
    values.update(overrides)
    return FillDetectionConfig(**values)


# ---------------------------------------------------------------------------------- (1) in flight
def _instrument(executor: SmartOrderExecutor, entered: list[int], seen: dict[str, float]) -> None:
    """Record when each trade's fill detection starts and when it has its answer (wall)."""
    engine = executor.engine
    async_monitor = engine.monitor_order_fill_async
    sync_wait = executor._wait_for_fill

    async def monitor_async(order_id: str, **kwargs: Any) -> Any:
        entered[0] += 1
        result = await async_monitor(order_id, **kwargs)
        seen[order_id] = time.time()
        return result

    def wait(order_id: str, *args: Any, **kwargs: Any) -> Any:
        entered[0] += 1
        result = sync_wait(order_id, *args, **kwargs)
        seen[order_id] = time.time()
        return result

    engine.monitor_order_fill_async = monitor_async  # type: ignore[method-assign]
    executor._wait_for_fill = wait  # type: ignore[method-assign]


def skip_watched_in_touch_reconcile(executor: SmartOrderExecutor) -> None:
    """What a fix would do (measured, not shipped): the reconcile each trade makes of its
    symbol's open orders leaves out the orders the tracker watches (their trades book them)."""
    keeper = executor.positions
    tracker = executor.engine.tracker
    catch_up = keeper._catch_up

    def unless_watched(order_id: str, deadline: float) -> bool:
        if tracker._by_order.get(order_id):
            return False
        return catch_up(order_id, deadline)

    keeper._catch_up = unless_watched  # type: ignore[method-assign]


def worker_inflight(url: str, mode: str, trades: int, symbols: int) -> dict[str, Any]:
    syms = SYMBOLS[:symbols]
    config = OrderConfig(
        fill_detection=detection_config(use_stream=mode.startswith("stream")),
        use_fill_detection_engine=mode != "legacy",
    )
    threads_before = native_threads()
    executor = SmartOrderExecutor(trading_client(url), config)
    if mode.endswith("+skip"):
        skip_watched_in_touch_reconcile(executor)
    base = {s: sim_price(url, s) for s in syms}
    levels = (trades + symbols - 1) // symbols
    step = Decimal("0.0002")

    def limit_of(symbol: str, level: int) -> Decimal:
        return (base[symbol] * (Decimal("0.97") - step * level)).quantize(Decimal("0.01"))

    specs = [(syms[i % symbols], limit_of(syms[i % symbols], i // symbols)) for i in range(trades)]
    entered = [0]
    seen: dict[str, float] = {}
    _instrument(executor, entered, seen)
    results: list[Any] = []
    session = requests.Session()

    def cross() -> float:
        """Wait until every trade is watched, then bring each market down through its limits."""
        end = time.monotonic() + 550
        while entered[0] < trades and time.monotonic() < end:
            time.sleep(0.05)
        start = time.monotonic()
        for level in range(levels + 1):
            for symbol in syms:
                set_price(session, url, symbol, limit_of(symbol, level))
            time.sleep(3.0 / (levels + 1))
        return time.monotonic() - start

    cpu0, wall0 = cpu_seconds(), time.monotonic()
    with ThreadSampler() as sampler:
        crosser = ThreadPoolExecutor(1)
        crossing = crosser.submit(cross)
        if mode == "legacy":
            # The legacy loop holds a thread per trade, as it always did.
            with ThreadPoolExecutor(trades) as pool:
                results = list(
                    pool.map(
                        lambda s: executor.execute_trade(
                            s[0], "buy", 1, order_type="limit", limit_price=s[1]
                        ),
                        specs,
                    )
                )
        else:

            async def main() -> list[Any]:
                return await asyncio.gather(
                    *(
                        executor.execute_trade_async(s, "buy", 1, order_type="limit", limit_price=p)
                        for s, p in specs
                    )
                )

            results = asyncio.run(main())
        cross_seconds = crossing.result()
        crosser.shutdown()
    wall = time.monotonic() - wall0
    cpu = cpu_seconds() - cpu0
    time.sleep(1.0)
    truth = ledger(url)
    latencies, outcomes, missed, false = [], Counter[str](), 0, 0
    for result in results:
        outcomes[result.fill.status.value if result.fill else result.outcome.value] += 1
        if result.order_id is None:
            continue
        row = truth.get(result.order_id)
        filled = Decimal(row["order"]["filled_qty"]) if row else Decimal(0)
        if result.filled_qty < filled:
            missed += 1
        elif result.filled_qty > filled:
            false += 1
        if row and row["executions"] and result.filled and result.order_id in seen:
            executed = parse_timestamp(row["executions"][-1]["transaction_time"])
            assert executed is not None
            latencies.append(seen[result.order_id] - executed.timestamp())
    tracker = executor.engine.tracker
    return {
        "mode": mode,
        "trades": trades,
        "wall_s": wall,
        "cross_s": cross_seconds,
        "cpu_ms_per_trade": cpu / trades * 1000,
        "threads_before": threads_before,
        "threads_peak": sampler.peak,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "p50_ms": (percentile(latencies, 50) or 0) * 1000,
        "p99_ms": (percentile(latencies, 99) or 0) * 1000,
        "detected": len(latencies),
        "outcomes": dict(outcomes),
        "missed": missed,
        "false": false,
        "unknown": sum(r.outcome is TradeOutcome.UNKNOWN for r in results),
        "sweeps": tracker.sweeps,
        "reads_by_id": tracker.reads_by_id,
        "events": tracker.events,
    }


# ---------------------------------------------------------------------------------- (2) limited
def worker_limited(url: str, seconds: float, symbols: int) -> dict[str, Any]:
    syms = SYMBOLS[:symbols]
    config = OrderConfig(fill_detection=FillDetectionConfig())  # the defaults: 200/min, stream
    executor = SmartOrderExecutor(trading_client(url), config)
    done: list[tuple[float, Any]] = []
    start = time.monotonic()
    end = start + seconds

    async def trade_loop(symbol: str) -> None:
        while time.monotonic() < end:
            held = executor.expected_position(symbol) or Decimal(0)
            side = "sell" if held >= 1 else "buy"
            result = await executor.execute_trade_async(symbol, side, 1)
            done.append((time.monotonic() - start, result))

    async def main() -> None:
        await asyncio.gather(*(trade_loop(s) for s in syms))

    cpu0 = cpu_seconds()
    asyncio.run(main())
    wall = time.monotonic() - start
    cpu = cpu_seconds() - cpu0
    unknown_at_return = sum(
        r.outcome is TradeOutcome.UNKNOWN
        or (r.fill is not None and r.fill.status.value == "unknown")
        for _, r in done
    )
    time.sleep(2.0)
    resolved = {r.client_order_id: r for r in executor.resolve_unknown()}
    truth = ledger(url)
    by_coid = {row["order"]["client_order_id"]: row for row in truth.values()}
    missed = false = 0
    outcomes: Counter[str] = Counter()
    for _, result in done:
        outcomes[result.fill.status.value if result.fill else result.outcome.value] += 1
        final = resolved.get(result.client_order_id, result)
        row = by_coid.get(final.client_order_id)
        if row is None or final.fill is None or final.fill.status.value == "unknown":
            continue
        chain = [row]
        while chain[-1]["order"].get("replaced_by"):
            chain.append(truth[chain[-1]["order"]["replaced_by"]])
        filled = sum((Decimal(r["order"]["filled_qty"]) for r in chain), Decimal(0))
        missed += final.filled_qty < filled and not final.fill.order_open
        false += final.filled_qty > filled
    placed = [(t, r) for t, r in done if r.outcome is TradeOutcome.PLACED]
    steady = [t for t, _ in placed if 60.0 <= t <= seconds]
    steady_minutes = (seconds - 60.0) / 60.0
    why_not: Counter[str] = Counter(
        (r.error or "")[:70] for _, r in done if r.outcome is not TradeOutcome.PLACED
    )
    return {
        "trades": len(done),
        "placed": len(placed),
        "not_placed_why": dict(why_not.most_common(4)),
        "wall_s": wall,
        "trades_per_min_all": len(placed) / (wall / 60.0),
        "trades_per_min_steady": len(steady) / steady_minutes if steady_minutes > 0 else None,
        "unknown": unknown_at_return,
        "unknown_left": len(executor.unresolved_trades()),
        "resolved_later": len(resolved),
        "outcomes": dict(outcomes),
        "missed": missed,
        "false": false,
        "cpu_ms_per_trade": cpu / max(len(done), 1) * 1000,
        "sweeps": executor.engine.tracker.sweeps,
    }


# ---------------------------------------------------------------------------------- (3) 10,000
def worker_monitors(url: str, orders: int, symbols: int) -> dict[str, Any]:
    syms = SYMBOLS[:symbols]
    base = {s: sim_price(url, s) for s in syms}
    session = requests.Session()

    def post(i: int) -> str:
        symbol = syms[i % symbols]
        body = {
            "symbol": symbol,
            "qty": "0.01",
            "side": "buy",
            "type": "limit",
            "time_in_force": "day",
            "limit_price": str((base[symbol] * Decimal("0.9")).quantize(Decimal("0.01"))),
        }
        resp = session.post(f"{url}/v2/orders", json=body, headers=AUTH, timeout=30)
        resp.raise_for_status()
        return str(resp.json()["id"])

    with ThreadPoolExecutor(4) as pool:
        ids = list(pool.map(post, range(orders)))
    engine = FillDetectionEngine(
        trading_client(url), detection_config(timeout_seconds=600.0), clock=None
    )
    tracker = engine.tracker
    threads_before = native_threads()
    rss0 = rss_bytes()
    tracemalloc.start()
    heap0 = tracemalloc.get_traced_memory()[0]
    box: list[Any] = []
    waiter = threading.Thread(target=lambda: box.extend(engine.monitor_orders(ids)), daemon=True)
    t0 = time.monotonic()
    waiter.start()
    while tracker.watched() < orders and time.monotonic() - t0 < 600:
        time.sleep(0.05)
    watched_s = time.monotonic() - t0
    time.sleep(3.0)  # every monitor has made its first read (or sweep)
    heap = tracemalloc.get_traced_memory()[0] - heap0
    tracemalloc.stop()
    rss = rss_bytes() - rss0
    threads_watching = native_threads()
    events0, sweeps0, reads0 = tracker.events, tracker.sweeps, tracker.reads_by_id
    cpu0, t1 = cpu_seconds(), time.monotonic()
    for symbol in syms:
        set_price(session, url, symbol, (base[symbol] * Decimal("0.89")).quantize(Decimal("0.01")))
    waiter.join(600)
    fill_s = time.monotonic() - t1
    cpu = cpu_seconds() - cpu0
    events = tracker.events - events0
    return {
        "orders": orders,
        "filled": sum(r.filled for r in box),
        "watched_after_s": watched_s,
        "heap_kib_per_order": heap / orders / 1024,
        "rss_kib_per_order": rss / orders / 1024,
        "threads_before": threads_before,
        "threads_watching": threads_watching,
        "fill_phase_s": fill_s,
        "events": events,
        "cpu_us_per_event": cpu / max(events, 1) * 1e6,
        "cpu_us_per_order": cpu / orders * 1e6,
        "sweeps_while_filling": tracker.sweeps - sweeps0,
        "reads_by_id_while_filling": tracker.reads_by_id - reads0,
        "sweeps_total": tracker.sweeps,
        "reads_by_id_total": tracker.reads_by_id,
    }


# ---------------------------------------------------------------------------------- orchestration
def run_worker(*args: str) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "worker", *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, timeout=3600)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])  # type: ignore[no-any-return]
    raise RuntimeError(f"worker {args} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def with_requests(url: str, fn: Callable[[], dict[str, Any]], trades_key: str) -> dict[str, Any]:
    before = sim_requests(url)
    result = fn()
    time.sleep(0.5)
    spent = sim_requests(url)
    injected = spent.pop(("injected_429", ""), 0) - before.pop(("injected_429", ""), 0)
    spent -= before
    total = sum(spent.values())
    by_endpoint: Counter[str] = Counter()
    for (endpoint, _status), n in spent.items():
        by_endpoint[endpoint] += n
    result["rest_total"] = total
    result["rest_per_trade"] = total / max(result[trades_key], 1)
    result["rest_by_endpoint"] = dict(by_endpoint.most_common())
    result["http_429"] = sum(n for (_e, status), n in spent.items() if status == "429")
    result["injected_429"] = injected
    return result


def part1(trades: int, symbols: int, seed: int, modes: list[str]) -> list[dict[str, Any]]:
    rows = []
    with sim_process(seed, "calm") as (url, _pid):
        for mode in modes:
            sim_reset(url, "calm")
            rows.append(
                with_requests(
                    url,
                    lambda m=mode: run_worker(  # type: ignore[misc]
                        "inflight", url, m, str(trades), str(symbols)
                    ),
                    "trades",
                )
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


def part2(seconds: float, symbols: int, seed: int) -> list[dict[str, Any]]:
    rows = []
    for profile in ("calm", "rough"):
        with sim_process(seed, profile, rate_limit=200) as (url, _pid):
            row = with_requests(
                url, lambda u=url: run_worker("limited", u, str(seconds), str(symbols)), "trades"
            )
            row["profile"] = profile
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def part3(orders: int, symbols: int, seed: int) -> dict[str, Any]:
    with sim_process(seed, "calm") as (url, _pid):
        row = run_worker("monitors", url, str(orders), str(symbols))
        print(json.dumps(row), flush=True)
        return row


def render(args: argparse.Namespace, machine_line: str, p1: Any, p2: Any, p3: Any) -> str:
    lines = [
        SECTION,
        "",
        f"Command: `{' '.join(['python benchmarks/bench_tracker.py', *sys.argv[1:]])}`.",
        f"Machine: {machine_line}.",
        f"Date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC. Every row below is from this one run.",
        "",
    ]
    if p1:
        lines += [
            f"(1) {args.trades} limit buys in flight over {args.symbols} symbols, rate limit off, "
            "calm; once all are watched, the market comes down through the limits in steps "
            "(meant to take 3 s; the time it took is in the notes), so fills arrive while the "
            "other trades are still in flight. Crossing took: "
            + ", ".join(f"{r['mode']} {r['cross_s']:.1f} s" for r in p1)
            + ".",
            "",
            "| loop | trades | detection p50 ms | p99 ms | REST calls/trade | threads before / peak "
            "| peak RSS MiB | CPU ms/trade | missed | false | UNKNOWN | wall s |",
            "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|",
        ]
        names = {
            "stream": "stream-first",
            "stream+skip": "stream-first, touch reconcile skips watched orders (patched here)",
            "poll": "poll-only",
            "poll+skip": "poll-only, touch reconcile skips watched orders (patched here)",
            "legacy": "legacy loop",
        }
        for r in p1:
            lines.append(
                f"| {names[r['mode']]} | {r['trades']} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | "
                f"{r['rest_per_trade']:.2f} | {r['threads_before']} / {r['threads_peak']} | "
                f"{r['peak_rss_mib']:.0f} | {r['cpu_ms_per_trade']:.2f} | {r['missed']} | "
                f"{r['false']} | {r['unknown']} | {r['wall_s']:.1f} |"
            )
        lines += ["", "REST requests by endpoint (the whole run, at the simulator):", ""]
        for r in p1:
            spent = ", ".join(f"{k} {v}" for k, v in r["rest_by_endpoint"].items())
            lines.append(
                f"- {names[r['mode']]}: {spent}; sweeps {r['sweeps']}, reads by id "
                f"{r['reads_by_id']}, stream events {r['events']}"
            )
        lines.append("")
    if p2:
        lines += [
            f"(2) The simulator's limit and fillguard's budget at 200/min; {min(args.symbols, 6)} tasks "
            f"(one per symbol) trading market orders back to back for {args.limited_seconds:.0f} "
            "s; steady = trades finished after the first minute, per minute.",
            "",
            "| profile | trades | placed | placed/min steady | placed/min overall | "
            "REST calls/trade | 429s at the simulator | UNKNOWN at return | left after resolve "
            "| missed | false |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in p2:
            lines.append(
                f"| {r['profile']} | {r['trades']} | {r.get('placed', '-')} | "
                f"{r['trades_per_min_steady']:.0f} | {r['trades_per_min_all']:.0f} | "
                f"{r['rest_per_trade']:.2f} | {r['http_429']} ({r['injected_429']} injected) | "
                f"{r['unknown']} | "
                f"{r['unknown_left']} | {r['missed']} | {r['false']} |"
            )
        lines += ["", "Trades not placed, by reason:", ""]
        for r in p2:
            why = "; ".join(f"{k!r} x{v}" for k, v in r.get("not_placed_why", {}).items())
            lines.append(f"- {r['profile']}: {why or 'none'}")
        lines += ["", "REST requests by endpoint:", ""]
        for r in p2:
            spent = ", ".join(f"{k} {v}" for k, v in r["rest_by_endpoint"].items())
            lines.append(f"- {r['profile']}: {spent}")
        lines.append("")
    if p3:
        r = p3
        lines += [
            f"(3) {r['orders']} resting limit orders monitored at once by one engine "
            "(`monitor_orders`, stream on), then all filled by one price move.",
            "",
            "| orders | all watched after s | heap KiB/order (tracemalloc) | RSS KiB/order | "
            "threads before / watching | fill phase s | stream events | CPU µs/event | "
            "sweeps / reads by id while filling | filled |",
            "|---:|---:|---:|---:|---|---:|---:|---:|---|---:|",
            f"| {r['orders']} | {r['watched_after_s']:.1f} | {r['heap_kib_per_order']:.2f} | "
            f"{r['rss_kib_per_order']:.2f} | {r['threads_before']} / {r['threads_watching']} | "
            f"{r['fill_phase_s']:.1f} | {r['events']} | {r['cpu_us_per_event']:.0f} | "
            f"{r['sweeps_while_filling']} / {r['reads_by_id_while_filling']} | {r['filled']} |",
            "",
        ]
    return "\n".join(lines)



def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        kind, url, *rest = sys.argv[2:]
        if kind == "inflight":
            out = worker_inflight(url, rest[0], int(rest[1]), int(rest[2]))
        elif kind == "limited":
            out = worker_limited(url, float(rest[0]), int(rest[1]))
        else:
            out = worker_monitors(url, int(rest[0]), int(rest[1]))
        print("RESULT " + json.dumps(out), flush=True)
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--parts", default="1,2,3")
    parser.add_argument(
        "--modes", default="stream,stream+skip,poll,poll+skip,legacy", help="loops compared in (1)"
    )
    parser.add_argument("--trades", type=int, default=1000)
    parser.add_argument("--symbols", type=int, default=8)
    parser.add_argument("--limited-seconds", type=float, default=150.0)
    parser.add_argument("--monitors", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--write", action="store_true", help="write the section to BENCHMARKS.md")
    args = parser.parse_args()
    parts = {p.strip() for p in args.parts.split(",")}
    machine_line = machine()
    p1 = (
        part1(args.trades, args.symbols, args.seed, args.modes.split(",")) if "1" in parts else None
    )
    p2 = part2(args.limited_seconds, min(args.symbols, 6), args.seed) if "2" in parts else None
    p3 = part3(args.monitors, args.symbols, args.seed) if "3" in parts else None
    section = render(args, machine_line, p1, p2, p3)
    print(section)
    if args.write:
        write_section(ROOT / "BENCHMARKS.md", section)


if __name__ == "__main__":
    main()
