"""The demo's per-trade CPU with metrics on (PrometheusMetrics, served) and off, same run.

    .venv/bin/python benchmarks/bench_metrics_demo.py            # prints a markdown section
    .venv/bin/python benchmarks/bench_metrics_demo.py --write    # and puts it in BENCHMARKS.md

Runs ``run_demo`` (the embedded simulator, the real alpaca-py client over loopback, stream first,
the rate limit at its default 200/min) ``--repeats`` times with metrics and as many without,
alternating on/off run by run so both see the same machine load. With metrics, the demo reports
to a ``PrometheusMetrics`` that ``serve()`` exposes on loopback and that is scraped once at the
end (as ``--metrics-port`` does). CPU is the process's CPU time (``time.process_time``) over the
run, divided by the trades: it includes the in-process simulator, which does the same work in
both columns. Figures: the median and the spread (min-max) per column, and the median of the
paired differences (each on-run against the off-run next to it). And, robust to the machine's
noise, the thread CPU time spent inside the observer's own calls in the runs with metrics on
(every thread, ``time.thread_time_ns`` around each call), as a share of those runs' CPU.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, cast

from support import machine, write_section

from fillguard.demo import DemoOptions, run_demo
from fillguard.metrics import PrometheusMetrics, serve
from fillguard.observer import Observer

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Demo per-trade CPU, metrics on and off"


class Accounted:
    """The observer, with the thread CPU time spent inside its calls added up (every thread)."""

    def __init__(self, inner: PrometheusMetrics) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self.calls = 0
        self.cpu_ns = 0

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._inner, name)
        if not callable(method):
            return method

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.thread_time_ns()
            try:
                return method(*args, **kwargs)
            finally:
                spent = time.thread_time_ns() - start
                with self._lock:
                    self.calls += 1
                    self.cpu_ns += spent

        return timed


def one_run(options: DemoOptions, *, metrics_on: bool) -> tuple[float, bool, float | None]:
    """(CPU milliseconds per trade, whether the run agreed with its ledger, and with metrics on
    the CPU microseconds per trade spent inside the observer's calls)."""
    metrics = PrometheusMetrics() if metrics_on else None
    accounted = Accounted(metrics) if metrics is not None else None
    server = serve(0, registry=metrics) if metrics is not None else None
    try:
        start = time.process_time()
        report = run_demo(options, observer=cast(Observer | None, accounted))
        if server is not None:
            with urllib.request.urlopen(f"{server.url}", timeout=10) as answer:
                answer.read()  # one scrape, as Prometheus would
        cpu = time.process_time() - start
    finally:
        if server is not None:
            server.stop()
    if not report.ok:  # say why: a benchmark run must agree with its ledger like any other
        bad = [
            c for c in report.checks if c.verdict in ("missed", "false_fill", "ghost", "unresolved")
        ]
        print(
            f"run disagrees with its ledger: {bad} {report.book_differences} "
            f"duplicates={report.duplicates} stray={report.stray_orders}"
        )
    inside = None if accounted is None else accounted.cpu_ns / 1000 / options.orders
    return cpu * 1000 / options.orders, report.ok, inside


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=60, help="trades per run")
    parser.add_argument("--faults", default="calm", help="fault profile")
    parser.add_argument("--repeats", type=int, default=5, help="runs per column")
    parser.add_argument("--write", action="store_true", help="write the section to BENCHMARKS.md")
    args = parser.parse_args()
    host = machine()
    options = DemoOptions(orders=args.orders, faults=args.faults)
    one_run(DemoOptions(orders=6, faults="calm"), metrics_on=True)  # warm-up (imports, JIT-free)
    samples: dict[bool, list[float]] = {False: [], True: []}
    inside: list[float] = []
    all_ok = True
    for i in range(args.repeats):
        order = (False, True) if i % 2 == 0 else (True, False)
        for metrics_on in order:
            cpu_ms, ok, observer_us = one_run(options, metrics_on=metrics_on)
            samples[metrics_on].append(cpu_ms)
            if observer_us is not None:
                inside.append(observer_us)
            all_ok = all_ok and ok
            print(f"run {i + 1} metrics {'on ' if metrics_on else 'off'}: {cpu_ms:.2f} ms/trade")
    off, on = statistics.median(samples[False]), statistics.median(samples[True])
    paired = [(a - b) / b * 100 for a, b in zip(samples[True], samples[False], strict=True)]
    command = "python benchmarks/bench_metrics_demo.py"
    if (args.orders, args.faults, args.repeats) != (60, "calm", 5):
        command += f" --orders {args.orders} --faults {args.faults} --repeats {args.repeats}"

    def spread(values: list[float]) -> str:
        return f"{min(values):.2f}-{max(values):.2f}"

    lines = [
        SECTION,
        "",
        f"Command: `{command}` (add `--write` to update this section).",
        f"Machine: {host}.",
        f"Date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}.",
        f"{args.orders} trades per run, faults={args.faults}, rate limit 200/min, stream first; "
        f"{args.repeats} runs per column, on and off alternating; process CPU (client and "
        f"in-process simulator) per trade. Every run agreed with its ledger: "
        f"{'yes' if all_ok else 'NO'}.",
        "",
        "| metrics | median CPU ms/trade | spread (min-max) |",
        "|---|---:|---:|",
        f"| off (NullObserver) | {off:.2f} | {spread(samples[False])} |",
        f"| on (PrometheusMetrics, served, scraped) | {on:.2f} | {spread(samples[True])} |",
        "",
        f"Difference of the medians: {(on - off) / off * 100:+.1f} %; median of the paired "
        f"differences: {statistics.median(paired):+.1f} % (each pair: "
        f"{', '.join(f'{p:+.1f}' for p in paired)} %). Target: under 2 %.",
        "",
        f"Inside the observer (thread CPU time spent in its calls, every thread, the runs with "
        f"metrics on): median {statistics.median(inside):.0f} µs per trade "
        f"({', '.join(f'{x:.0f}' for x in inside)}), "
        f"{statistics.median(inside) / 1000 / on * 100:.2f} % of those runs' CPU per trade.",
        "",
    ]
    section = "\n".join(lines)
    print(section)
    if args.write:
        write_section(ROOT / "BENCHMARKS.md", section)



if __name__ == "__main__":
    main()
