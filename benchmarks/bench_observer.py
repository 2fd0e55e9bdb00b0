"""Per-call cost of the observer: PrometheusMetrics against NullObserver, same run.

    .venv/bin/python benchmarks/bench_observer.py            # prints a markdown section
    .venv/bin/python benchmarks/bench_observer.py --write    # and puts it in BENCHMARKS.md

Each report method is called with typical arguments ``--calls`` times in a tight loop, for
``--repeats`` rounds, alternating the two observers round by round so both see the same machine
load; the figure is the median round, in nanoseconds per call (the loop's own cost, measured
with an empty function, is subtracted). A last row puts it in proportion: the reports one trade
makes (a submit, about 6 order reads, a position read, a detection, a slippage, a position
check), against one trade's client CPU in the executor benchmark.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from support import machine, write_section

from fillguard.metrics import PrometheusMetrics
from fillguard.observer import NullObserver

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Observer (metrics) overhead"

#: (label, method, arguments): the hot-path reports first.
CALLS: tuple[tuple[str, str, tuple[Any, ...]], ...] = (
    ("broker_request", "broker_request", ("get_order", "200", 0.0123)),
    ("fill_detection", "fill_detection", ("filled", 0.42)),
    ("submit_outcome", "submit_outcome", ("placed",)),
    ("position_check", "position_check", ("consistent",)),
    ("slippage", "slippage", (0.0012,)),
    ("retry", "retry", ("5xx",)),
    ("unresolved_trades", "unresolved_trades", (0,)),
    ("stream_event", "stream_event", ("fill",)),
    ("budget_wait", "budget_wait", ("lookup", 0.003)),
    ("journal_write", "journal_write", ("intent", 0.0008)),
    ("label outside the known set", "submit_outcome", ("something-else",)),
)

#: One trade's reports, as the executor makes them (method, arguments).
TRADE: tuple[tuple[str, tuple[Any, ...]], ...] = (
    ("broker_request", ("submit_order", "200", 0.02)),
    *(("broker_request", ("get_order", "200", 0.004)),) * 6,
    ("broker_request", ("get_position", "200", 0.004)),
    ("submit_outcome", ("placed",)),
    ("fill_detection", ("filled", 0.4)),
    ("slippage", (0.001,)),
    ("position_check", ("consistent",)),
    ("unresolved_trades", (0,)),
)


def per_call_ns(fn: Callable[..., None], args: tuple[Any, ...], calls: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(calls):
        fn(*args)
    return (time.perf_counter_ns() - start) / calls


def trade_ns(observer: Any, rounds: int) -> float:
    bound = [(getattr(observer, name), args) for name, args in TRADE]
    start = time.perf_counter_ns()
    for _ in range(rounds):
        for fn, args in bound:
            fn(*args)
    return (time.perf_counter_ns() - start) / rounds


def empty(*args: Any) -> None:
    """The loop's own cost: a call that does nothing."""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=50_000, help="calls per round")
    parser.add_argument("--repeats", type=int, default=7, help="rounds per observer")
    parser.add_argument("--write", action="store_true", help="write the section to BENCHMARKS.md")
    args = parser.parse_args()
    host = machine()

    observers = {"NullObserver": NullObserver(), "PrometheusMetrics": PrometheusMetrics()}
    rows: list[tuple[str, float, float]] = []
    loop_ns = statistics.median(
        per_call_ns(empty, (1, 2, 3), args.calls) for _ in range(args.repeats)
    )
    for label, method, call_args in CALLS:
        samples: dict[str, list[float]] = {name: [] for name in observers}
        for _ in range(args.repeats):
            for name, observer in observers.items():  # alternate: same load for both
                samples[name].append(per_call_ns(getattr(observer, method), call_args, args.calls))
        null, prom = (statistics.median(samples[name]) for name in observers)
        rows.append((label, null, prom))
    trade_rounds = max(1, args.calls // len(TRADE))
    trade = {name: [] for name in observers}  # type: dict[str, list[float]]
    for _ in range(args.repeats):
        for name, observer in observers.items():
            trade[name].append(trade_ns(observer, trade_rounds))
    trade_null, trade_prom = (statistics.median(trade[name]) for name in observers)

    command = "python benchmarks/bench_observer.py"
    if args.calls != 50_000 or args.repeats != 7:
        command += f" --calls {args.calls} --repeats {args.repeats}"
    lines = [
        SECTION,
        "",
        f"Command: `{command}` (add `--write` to update this section).",
        f"Machine: {host}.",
        f"Date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}.",
        f"{args.calls:,} calls per round, median of {args.repeats} rounds, the two observers "
        f"alternating round by round; a bare Python call costs {loop_ns:.0f} ns here and is "
        "included in both columns.",
        "",
        "| report | NullObserver ns/call | PrometheusMetrics ns/call | difference ns |",
        "|---|---:|---:|---:|",
        *(
            f"| {label} | {null:.0f} | {prom:.0f} | {prom - null:.0f} |"
            for label, null, prom in rows
        ),
        f"| one trade's {len(TRADE)} reports | {trade_null:.0f} | {trade_prom:.0f} "
        f"| {trade_prom - trade_null:.0f} |",
        "",
        f"One trade's reports cost {(trade_prom - trade_null) / 1000:.1f} µs more with "
        "PrometheusMetrics than with NullObserver. The demo's per-trade CPU with metrics on and "
        "off is measured once the components report to the observer (see the executor section).",
        "",
    ]
    section = "\n".join(lines)
    print(section)
    if args.write:
        write_section(ROOT / "BENCHMARKS.md", section)



if __name__ == "__main__":
    main()
