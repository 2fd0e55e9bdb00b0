"""Simulator REST throughput as the order book grows: 100, 1,000 and 10,000 orders, same run.

    .venv/bin/python benchmarks/bench_sim_scale.py --seconds 3 --write

``fillguard sim`` in its own process (one event loop: one core), rate limit off. For each book
size N the broker is reset and N limit buys are left resting far from the market; then, from
one client thread on a keep-alive ``requests.Session``, each endpoint is called for
``--seconds``: ``GET /v2/orders?status=open`` (Alpaca's default page of 50),
``GET /v2/orders/{id}``, ``GET /v2/account`` and ``POST /v2/orders`` (a resting limit buy, last,
as it grows the book). The baseline is the 100-order book of the same run: the target is no
endpoint slower at 10,000 than at 100 by more than 20 %, and at least 500 requests/s each.
Prints a markdown table; ``--write`` puts it in BENCHMARKS.md under "## Simulator at scale".
"""

from __future__ import annotations

import argparse
import os
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
from support import CONTROL_HEADERS, machine, sim_process

from fillguard.sim import DEFAULT_KEY_ID, DEFAULT_SECRET_KEY

ROOT = Path(__file__).resolve().parent.parent
SIZES = tuple(int(x) for x in os.environ.get("BENCH_SIM_SCALE_SIZES", "100,1000,10000").split(","))
Results = dict[tuple[str, int], dict[str, float]]
SYMBOLS = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "AMD", "INTC", "ORCL"]
AUTH = {"APCA-API-KEY-ID": DEFAULT_KEY_ID, "APCA-API-SECRET-KEY": DEFAULT_SECRET_KEY}


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by process ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def session() -> requests.Session:
    s = requests.Session()
    s.headers.update(AUTH)
    return s


def resting(i: int) -> dict[str, Any]:
    return {
        "symbol": SYMBOLS[i % len(SYMBOLS)],
        "qty": "1",
        "side": "buy",
        "type": "limit",
        "time_in_force": "gtc",
        "limit_price": "1.00",
    }


def fill_book(base_url: str, n: int) -> list[str]:
    """Reset and leave ``n`` limit buys resting; their ids."""
    requests.post(f"{base_url}/_sim/reset", headers=CONTROL_HEADERS, timeout=30).raise_for_status()
    sessions = [session() for _ in range(4)]

    def place(i: int) -> str:
        r = sessions[i % 4].post(f"{base_url}/v2/orders", json=resting(i), timeout=30)
        r.raise_for_status()
        return str(r.json()["id"])

    with ThreadPoolExecutor(4) as pool:
        ids = list(pool.map(place, range(n)))
    deadline = time.monotonic() + 30
    s = session()
    while True:  # every order routed (new), none filled
        page = s.get(f"{base_url}/v2/orders", params={"limit": 500}, timeout=30).json()
        if all(o["status"] == "new" for o in page) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return ids


def measure(call: Callable[[int], requests.Response], seconds: float, pid: int) -> dict[str, float]:
    for i in range(20):  # warm up
        call(i)
    n = 0
    cpu0 = cpu_seconds(pid)
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        r = call(n)
        if r.status_code != 200:
            raise RuntimeError(f"{r.request.method} {r.url}: {r.status_code} {r.text[:200]}")
        n += 1
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds(pid) - cpu0
    return {"rps": n / elapsed, "cpu_ms": cpu / max(1, n) * 1000}


def bench(seconds: float, seed: int, src: str) -> Results:
    """Every endpoint at every book size, against the simulator of source tree ``src``."""
    out: Results = {}
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = src
    try:
        with sim_process(seed) as (base_url, pid):
            _bench_on(base_url, pid, seconds, out, src)
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
    return out


def endpoint_calls(base_url: str, ids: list[str]) -> dict[str, Callable[[int], requests.Response]]:
    """The measured calls, on one keep-alive session."""
    s = session()
    v2 = f"{base_url}/v2"
    return {
        "GET /v2/orders?status=open": lambda i: s.get(f"{v2}/orders", params={"status": "open"}),
        "GET /v2/orders/{id}": lambda i: s.get(f"{v2}/orders/{ids[(i * 7919) % len(ids)]}"),
        "GET /v2/account": lambda i: s.get(f"{v2}/account"),
        "POST /v2/orders": lambda i: s.post(f"{v2}/orders", json=resting(i)),
    }


def _bench_on(base_url: str, pid: int, seconds: float, out: Results, src: str) -> None:
    for n in SIZES:
        ids = fill_book(base_url, n)
        for name, call in endpoint_calls(base_url, ids).items():
            out[(name, n)] = measure(call, seconds, pid)
            rps = out[(name, n)]["rps"]
            print(f"{src}: {name:30} N={n:>6}: {rps:8.0f} req/s", flush=True)


def _rows(results: Results, label: str) -> list[str]:
    names = list(dict.fromkeys(name for name, _ in results))
    lines = []
    for name in names:
        cells = [
            f"{results[(name, n)]['rps']:,.0f} ({results[(name, n)]['cpu_ms']:.2f})" for n in SIZES
        ]
        ratio = results[(name, SIZES[-1])]["rps"] / results[(name, SIZES[0])]["rps"]
        lines.append(f"| {label} | `{name}` | " + " | ".join(cells) + f" | {ratio - 1:+.0%} |")
    return lines


def table(results: Results, baseline: Results | None, seconds: float, baseline_src: str) -> str:
    names = list(dict.fromkeys(name for name, _ in results))
    lines = [
        "## Simulator at scale",
        "",
        f"`{Path(__file__).name} --seconds {seconds:g}`, {time.strftime('%Y-%m-%d')}. Machine: "
        f"{machine()}.",
        "",
        "`fillguard sim` in its own process (one event loop, so one core), rate limit off, one "
        "client thread on a keep-alive `requests.Session`. Book: N limit buys resting far from "
        "the market. Baseline: the N = 100 book of the same run. Requests/s (server CPU ms per "
        "request):",
        "",
        "| simulator | endpoint | "
        + " | ".join(f"N = {n:,}" for n in SIZES)
        + " | 10,000 vs 100 |",
        "|---|---|" + "---:|" * (len(SIZES) + 1),
        *_rows(results, "this branch"),
    ]
    if baseline is not None:
        lines += _rows(baseline, f"before (`{baseline_src}`)")
    worst = min(
        results[(name, SIZES[-1])]["rps"] / results[(name, SIZES[0])]["rps"] for name in names
    )
    slowest = min(r["rps"] for r in results.values())
    lines += [
        "",
        f"Targets: no endpoint slower at 10,000 than at 100 by more than 20 % (worst here: "
        f"{worst - 1:+.0%}); at least 500 requests/s each (slowest here: {slowest:,.0f}). "
        '"before" is the simulator before the open-order index and running totals, measured '
        "in the same run on the same machine.",
    ]
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str) -> None:
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    pattern = re.compile(r"^## Simulator at scale\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text.rstrip("\n") + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per endpoint and book size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", action="store_true", help="write the table to BENCHMARKS.md")
    parser.add_argument(
        "--baseline-src",
        default=None,
        help="also measure the simulator of this source tree (e.g. main's src) as the baseline",
    )
    args = parser.parse_args()
    results = bench(args.seconds, args.seed, str(ROOT / "src"))
    baseline = bench(args.seconds, args.seed, args.baseline_src) if args.baseline_src else None
    text = table(results, baseline, args.seconds, args.baseline_src or "")
    print(text)
    if args.write:
        write_section(ROOT / "BENCHMARKS.md", text)


if __name__ == "__main__":
    main()
