"""Fill detection engine: decision CPU cost, memory per monitored order, 1,000 orders at once.

    .venv/bin/python benchmarks/bench_engine.py                   # everything (about 2 minutes)
    .venv/bin/python benchmarks/bench_engine.py --orders 200      # a quicker run

(a) CPU time of one monitoring iteration's decision, no I/O: ``MultiMethodVerifier.verify_fill``
on an alpaca-py ``Order`` model, a raw dict and an ``OrderSnapshot``, and ``classify_error`` on
alpaca-py ``APIError``s, timed with ``time.perf_counter_ns`` over many runs (best of 5).
(b) Memory per monitored order: N monitors waiting at once in one engine (one thread each,
against the simulator in-process), traced with ``tracemalloc`` (Python heap) and the process
RSS (which also counts each thread's stack).
(c) 1,000 orders, each submitted and then monitored by a pool of threads, against the simulator
server in its own process (as users run it, rate limit off), for the calm and rough fault
profiles. Every result is checked against the broker's ledger (``GET /_sim/ledger``). Baseline
in the same run, on the same orders (same seed and order mix, fresh broker): the legacy
"poll until status == filled" loop with a plain alpaca-py client.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import random
import statistics
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderStatus
from alpaca.trading.models import Order
from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest
from support import CONTROL_HEADERS, machine, sim_process

from fillguard import FillDetectionConfig, FillDetectionEngine, FillResult, FillStatus
from fillguard.clock import SystemClock
from fillguard.retry import classify_error
from fillguard.sim import DEFAULT_KEY_ID, DEFAULT_SECRET_KEY
from fillguard.sim.api import SimApi
from fillguard.sim.core import Broker, OrderRequest
from fillguard.sim.inprocess import in_process_client
from fillguard.snapshot import OrderSnapshot
from fillguard.transport import own_transport
from fillguard.verify import MultiMethodVerifier

SYMBOLS = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "AMD", "INTC", "ORCL"]


# ---------------------------------------------------------------------------------- (a) CPU
ORDER_JSON: dict[str, Any] = {
    "id": "61e69015-8549-4bfd-b9c3-01e75843f47d",
    "client_order_id": "eb9e2aaa-f71a-4f51-b5b4-52a6c565dad4",
    "created_at": "2026-01-05T14:30:00.123456789Z",
    "updated_at": "2026-01-05T14:30:00.223456789Z",
    "submitted_at": "2026-01-05T14:30:00.123456789Z",
    "filled_at": "2026-01-05T14:30:00.223456789Z",
    "expired_at": None,
    "canceled_at": None,
    "failed_at": None,
    "asset_id": "b0b6dd9d-8b9b-48a9-ba46-b9d54906e415",
    "symbol": "AAPL",
    "asset_class": "us_equity",
    "notional": None,
    "qty": "10",
    "filled_qty": "10",
    "filled_avg_price": "189.123",
    "order_class": "",
    "order_type": "market",
    "type": "market",
    "side": "buy",
    "time_in_force": "day",
    "limit_price": None,
    "stop_price": None,
    "status": "filled",
    "extended_hours": False,
    "legs": None,
}


def _api_error(status: int, body: str, headers: dict[str, str] | None = None) -> APIError:
    resp = requests.Response()
    resp.status_code = status
    resp._content = body.encode()
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return APIError(body, requests.HTTPError(response=resp))  # type: ignore[no-untyped-call]


def per_call_ns(fn: Callable[[], object], number: int) -> float:
    """Best of 5 runs of ``number`` calls, in nanoseconds per call."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter_ns()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter_ns() - start) / number)
    return best


def bench_cpu(number: int) -> list[tuple[str, float]]:
    verifier = MultiMethodVerifier()
    model = Order(**ORDER_JSON)
    open_json = {**ORDER_JSON, "status": "new", "filled_qty": "0", "filled_avg_price": None}
    snapshot = OrderSnapshot.from_any(ORDER_JSON)
    e429 = _api_error(
        429,
        '{"code":42910000,"message":"rate limit exceeded"}',
        {"X-Ratelimit-Reset": "1767623460", "X-Ratelimit-Remaining": "0"},
    )
    e500 = _api_error(500, '{"code":50010000,"message":"internal server error occurred"}')
    e404 = _api_error(404, '{"code":40410000,"message":"order not found"}')
    e502 = _api_error(502, "<html><body><h1>502 Bad Gateway</h1></body></html>")
    rows: list[tuple[str, float]] = [
        (
            "verify_fill(Order model), filled",
            per_call_ns(lambda: verifier.verify_fill(model), number),
        ),
        (
            "verify_fill(dict), filled",
            per_call_ns(lambda: verifier.verify_fill(ORDER_JSON), number),
        ),
        ("verify_fill(dict), open", per_call_ns(lambda: verifier.verify_fill(open_json), number)),
        (
            "verify_fill(OrderSnapshot), filled",
            per_call_ns(lambda: verifier.verify_fill(snapshot), number),
        ),
        (
            "OrderSnapshot.from_any(dict)",
            per_call_ns(lambda: OrderSnapshot.from_any(ORDER_JSON), number),
        ),
        (
            "classify_error(APIError 429 + X-Ratelimit-Reset)",
            per_call_ns(lambda: classify_error(e429, now_epoch=1767623400.0), number),
        ),
        (
            "classify_error(APIError 500, JSON body)",
            per_call_ns(lambda: classify_error(e500), number),
        ),
        (
            "classify_error(APIError 502, HTML body)",
            per_call_ns(lambda: classify_error(e502), number),
        ),
        (
            "classify_error(APIError 404, in grace)",
            per_call_ns(lambda: classify_error(e404, not_found_transient=True), number),
        ),
    ]
    return rows


# ---------------------------------------------------------------------------------- (b) memory
def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def bench_memory(n: int) -> dict[str, float]:
    """N monitors waiting at once in one engine; bytes of Python heap and RSS per monitor."""
    broker = Broker(clock=SystemClock(), seed=1)
    api = SimApi(broker, key_id="K", secret_key="S", rate_limit=None)
    client = in_process_client(api)
    cfg = FillDetectionConfig(timeout_seconds=600, initial_poll_interval=300, max_poll_interval=300)
    engine = FillDetectionEngine(client, cfg, clock=SystemClock())
    price = broker.price("AAPL")
    limit = (price * Decimal("0.5")).quantize(Decimal("0.01"))
    ids = [
        broker.submit(
            OrderRequest(
                symbol="AAPL",
                side="buy",
                type="limit",
                time_in_force="day",
                qty=Decimal(1),
                limit_price=limit,
            )
        ).id
        for _ in range(n)
    ]
    engine.monitor_order_fill(ids[0], timeout=0.01)  # warm up imports and caches
    results: list[FillResult] = []
    gc.collect()
    tracemalloc.start()
    base_heap = tracemalloc.get_traced_memory()[0]
    base_rss = rss_bytes()
    before = api.requests_total
    threads = [
        threading.Thread(target=lambda i=i: results.append(engine.monitor_order_fill(i)))
        for i in ids[1:]
    ]
    for t in threads:
        t.start()
    give_up = time.monotonic() + 120
    while api.requests_total - before < len(threads) and time.monotonic() < give_up:
        time.sleep(0.05)  # until every monitor has made its first read and waits
    time.sleep(0.5)
    gc.collect()
    heap = tracemalloc.get_traced_memory()[0] - base_heap
    rss = rss_bytes() - base_rss
    tracemalloc.stop()
    # End them: the market reaches the limit, the fills land, a wake-up per order.
    broker.set_price("AAPL", limit)
    time.sleep(0.3)
    for i in ids[1:]:
        engine.notify(i)
    for t in threads:
        t.join(30)
    filled = sum(1 for r in results if r.filled)
    return {
        "monitors": len(threads),
        "heap_per_monitor": heap / len(threads),
        "rss_per_monitor": rss / len(threads),
        "filled_after_wakeup": filled,
    }


# ---------------------------------------------------------------------------------- (c) server
@contextlib.contextmanager
def server(seed: int, faults: str) -> Iterator[str]:
    """The simulator in its own process on a free loopback port, rate limit off."""
    with sim_process(seed, faults) as (url, _pid):
        yield url


@dataclass(frozen=True)
class Spec:
    coid: str
    symbol: str
    side: str
    qty: str
    kind: str  # market | marketable (limit through the price) | near (0.2 % away) | far (50 %)


def order_mix(n: int, seed: int) -> list[Spec]:
    rng = random.Random(seed)
    specs = []
    for i in range(n):
        roll = rng.random()
        kind = (
            "market"
            if roll < 0.6
            else "marketable"
            if roll < 0.75
            else "near"
            if roll < 0.9
            else "far"
        )
        fractional = kind == "market" and rng.random() < 0.15
        side = "buy" if fractional or kind == "far" else rng.choice(["buy", "sell"])
        qty = f"{rng.randint(1, 200) / 100:.2f}" if fractional else str(rng.randint(1, 4))
        # Buys on half the symbols, (short) sells on the other half: no order is refused for
        # flipping a position, so both loops see exactly the same orders.
        symbols = SYMBOLS[:5] if side == "buy" else SYMBOLS[5:]
        specs.append(Spec(f"bench-{seed}-{i}", rng.choice(symbols), side, qty, kind))
    return specs


def plain_client(url: str, *, owned: bool) -> Any:
    client = TradingClient(DEFAULT_KEY_ID, DEFAULT_SECRET_KEY, url_override=url)
    if owned:
        own_transport(client, request_timeout=2.0)
    return client


def submit(client: Any, spec: Spec, prices: dict[str, Decimal]) -> str | None:
    """Place the order, surviving lost responses: look it up by client_order_id, else resend."""
    price = prices[spec.symbol]
    if spec.kind == "market":
        request: Any = MarketOrderRequest(
            symbol=spec.symbol,
            qty=spec.qty,
            side=spec.side,
            time_in_force="day",
            client_order_id=spec.coid,
        )
    else:
        factor = {"marketable": Decimal("1.02"), "near": Decimal("0.998"), "far": Decimal("0.5")}[
            spec.kind
        ]
        if spec.side == "sell":
            factor = 2 - factor
        request = LimitOrderRequest(
            symbol=spec.symbol,
            qty=spec.qty,
            side=spec.side,
            time_in_force="day",
            limit_price=float((price * factor).quantize(Decimal("0.01"))),
            client_order_id=spec.coid,
        )
    for _ in range(20):
        try:
            return str(client.submit_order(request).id)
        except APIError as err:
            if (
                err.status_code is not None
                and 400 <= err.status_code < 500
                and err.status_code != 429
            ):
                if "unique" in str(err):
                    pass  # an earlier attempt landed: look it up below
                else:
                    return None  # refused (e.g. buying power): not part of the run
        except Exception:
            pass
        for _ in range(10):
            try:
                return str(client.get_order_by_client_id(spec.coid).id)
            except APIError as err:
                if err.status_code == 404:
                    break
            except Exception:
                pass
            time.sleep(0.05)
        time.sleep(0.05)
    return None


def naive_poll(
    client: Any, order_id: str, timeout: float, interval: float
) -> tuple[bool, Decimal, Decimal | None]:
    """The legacy loop: poll until status == filled, else give up at the timeout (no cancel)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            order = client.get_order_by_id(order_id)
        except Exception:
            time.sleep(interval)
            continue
        if order.status == OrderStatus.FILLED:
            price = order.filled_avg_price
            return (
                True,
                Decimal(str(order.filled_qty)),
                None if price is None else Decimal(str(price)),
            )
        time.sleep(interval)
    return False, Decimal(0), None


@dataclass
class Verdict:
    correct: int = 0
    false: int = 0
    missed: int = 0
    unknown: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)


def ledger_truth(url: str) -> dict[str, dict[str, Any]]:
    data = requests.get(f"{url}/_sim/ledger", headers=CONTROL_HEADERS, timeout=60).json()
    return {e["order"]["id"]: e["order"] for e in data["orders"]}


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def judge_engine(results: dict[str, FillResult], truth: dict[str, dict[str, Any]]) -> Verdict:
    v = Verdict()
    for order_id, r in results.items():
        t = truth[order_id]
        t_qty = _dec(t["filled_qty"]) or Decimal(0)
        t_price = _dec(t["filled_avg_price"]) if t_qty > 0 else None
        v.statuses[r.status.value] += 1
        if r.status is FillStatus.UNKNOWN:
            v.unknown += 1
            if t["status"] == "filled" or t_qty > 0:
                v.examples.append(f"unknown while ledger {t['status']} {t_qty}: {r.error}")
            continue
        agrees = r.filled_qty == t_qty and r.fill_price == t_price
        if r.filled and not (t["status"] == "filled" and agrees):
            v.false += 1
            v.examples.append(
                f"false: {r.status} {r.filled_qty}@{r.fill_price} vs {t['status']} {t_qty}@{t_price}"
            )
        elif not agrees or (t["status"] == "filled" and not r.filled):
            v.missed += 1
            v.examples.append(f"missed: {r.status} {r.filled_qty} vs {t['status']} {t_qty}")
        else:
            v.correct += 1
    return v


def judge_naive(
    results: dict[str, tuple[bool, Decimal, Decimal | None]], truth: dict[str, dict[str, Any]]
) -> Verdict:
    v = Verdict()
    for order_id, (filled, qty, price) in results.items():
        t = truth[order_id]
        t_qty = _dec(t["filled_qty"]) or Decimal(0)
        t_price = _dec(t["filled_avg_price"]) if t_qty > 0 else None
        v.statuses["filled" if filled else "not filled"] += 1
        if filled:
            if t["status"] == "filled" and qty == t_qty and price == t_price:
                v.correct += 1
            else:
                v.false += 1  # e.g. a fill reported with price null
        elif t_qty > 0:
            v.missed += 1  # filled (wholly or partly) after the loop gave up, or partially
        else:
            v.correct += 1
    return v


def engine_config() -> FillDetectionConfig:
    return FillDetectionConfig(
        timeout_seconds=3.0,
        initial_poll_interval=0.05,
        poll_interval_increase=0.05,
        max_poll_interval=0.5,
        max_retries=3,
        retry_base_delay=0.05,
        retry_max_delay=1.0,
        request_timeout_seconds=2.0,
        final_verification_seconds=3.0,
    )


def run_orders(
    url: str, specs: list[Spec], workers: int, mode: str
) -> tuple[dict[str, Any], float, int]:
    prices = {
        s: _dec(
            requests.get(f"{url}/_sim/prices/{s}", headers=CONTROL_HEADERS, timeout=10).json()[
                "price"
            ]
        )
        or Decimal(1)
        for s in SYMBOLS
    }
    submitter = plain_client(url, owned=True)
    cfg = engine_config()
    engine = FillDetectionEngine(plain_client(url, owned=False), cfg, clock=SystemClock())
    legacy = plain_client(url, owned=False)  # alpaca-py as is: no timeout, its own 429/504 retries
    results: dict[str, Any] = {}
    refused = 0
    lock = threading.Lock()

    def one(spec: Spec) -> None:
        nonlocal refused
        order_id = submit(submitter, spec, prices)
        if order_id is None:
            with lock:
                refused += 1
            return
        if mode == "engine":
            out: Any = engine.monitor_order_fill(order_id, expected_price=prices[spec.symbol])
        else:
            out = naive_poll(legacy, order_id, cfg.timeout_seconds, 0.25)
        with lock:
            results[order_id] = out

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, specs))
    wall = time.monotonic() - start
    return results, wall, refused


def bench_orders(n: int, workers: int, profile: str, seed: int) -> dict[str, Any]:
    specs = order_mix(n, seed)
    out: dict[str, Any] = {"profile": profile}
    for mode in ("engine", "naive"):
        with server(seed, profile) as url:
            results, wall, refused = run_orders(url, specs, workers, mode)
            if mode == "naive":
                time.sleep(1.0)  # let late fills land: the legacy loop never canceled
            truth = ledger_truth(url)
        verdict = judge_engine(results, truth) if mode == "engine" else judge_naive(results, truth)
        latencies = [r.elapsed_seconds for r in results.values()] if mode == "engine" else []
        out[mode] = {
            "orders": len(results),
            "refused": refused,
            "wall": wall,
            "verdict": verdict,
            "p50": statistics.median(latencies) if latencies else None,
            "calls": sum(r.api_calls for r in results.values()) if mode == "engine" else None,
        }
    return out


# ---------------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=100)
    parser.add_argument(
        "--monitors", type=int, default=1000, help="monitors waiting at once in (b)"
    )
    parser.add_argument("--profiles", default="calm,rough")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cpu-runs", type=int, default=20000)
    args = parser.parse_args()

    print(f"Machine: {machine()}.")
    print(f"Date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC.\n")

    print("(a) CPU per call, no I/O (best of 5 x", args.cpu_runs, "calls)\n")
    print("| call | µs per call |\n|---|---:|")
    for name, ns in bench_cpu(args.cpu_runs):
        print(f"| {name} | {ns / 1000:.1f} |")

    print(f"\n(b) memory: {args.monitors} monitors waiting at once in one engine\n")
    mem = bench_memory(args.monitors)
    print(
        "| monitors | Python heap per monitor (tracemalloc) | RSS per monitor (incl. thread stack) | filled after wake-up |"
    )
    print("|---:|---:|---:|---:|")
    print(
        f"| {mem['monitors']} | {mem['heap_per_monitor'] / 1024:.1f} KiB | "
        f"{mem['rss_per_monitor'] / 1024:.1f} KiB | {mem['filled_after_wakeup']} |"
    )

    print(
        f"\n(c) {args.orders} orders, {args.workers} threads submitting and monitoring, server in its own process\n"
    )
    print(
        "| profile | loop | orders | wall s | correct | false | missed | unknown | statuses | engine p50 s | API calls/order |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    notes: list[str] = []
    for profile in [p.strip() for p in args.profiles.split(",") if p.strip()]:
        res = bench_orders(args.orders, args.workers, profile, args.seed)
        for mode in ("engine", "naive"):
            row = res[mode]
            v: Verdict = row["verdict"]
            statuses = ", ".join(f"{k} {c}" for k, c in sorted(v.statuses.items()))
            p50 = f"{row['p50']:.2f}" if row["p50"] is not None else "-"
            calls = (
                f"{row['calls'] / max(row['orders'], 1):.1f}" if row["calls"] is not None else "-"
            )
            label = "FillDetectionEngine" if mode == "engine" else "naive poll (legacy)"
            print(
                f"| {profile} | {label} | {row['orders']} | {row['wall']:.1f} | {v.correct} | "
                f"{v.false} | {v.missed} | {v.unknown} | {statuses} | {p50} | {calls} |"
            )
            if row["refused"]:
                notes.append(f"{profile}/{mode}: {row['refused']} orders refused at submit")
            for ex in v.examples[:5]:
                notes.append(f"{profile}/{mode}: {ex}")
    for note in notes:
        print(f"- {note}")


if __name__ == "__main__":
    main()
