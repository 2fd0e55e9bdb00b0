"""The trading process the crash harness kills: trades with a journal until it is killed.

Run by ``crash_harness.py``; not meant for people. On start it opens the journal (which
recovers what the last process left unfinished), prints ``ready`` and a JSON line with the
recovery report, then trades from several threads (several symbols, market orders, resting
and marketable limit orders) until it is killed. ``--crash-point NAME`` kills the process with
SIGKILL from the executor's checkpoint hook at the first ``NAME`` once trading began (with
``--during-recovery``: recovery's own included) (``post_in_flight``: a few
milliseconds after the attempt record, while the POST is out). ``--drain`` recovers, resolves
every unknown trade, catches the book up and prints the book's positions, then exits.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import threading
import time
from decimal import Decimal
from typing import Any

from fillguard.config import FillDetectionConfig, OrderConfig
from fillguard.executor import SmartOrderExecutor

SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN")


def _config(journal: str) -> OrderConfig:
    return OrderConfig(
        fill_detection=FillDetectionConfig(
            timeout_seconds=1.0,
            final_verification_seconds=2.0,
            rate_limit_per_minute=None,
        ),
        submit_timeout_seconds=5.0,
        lookup_spacing_seconds=0.2,
        unknown_horizon_seconds=2.0,
        position_settle_seconds=2.0,
        journal_path=journal,
    )


def _kill_hook(point: str, armed: threading.Event) -> Any:
    def kill_now() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    def hook(name: str) -> None:
        if not armed.is_set():
            return
        if point == "post_in_flight" and name == "attempt_recorded":
            threading.Timer(0.002, kill_now).start()
        elif name == point:
            kill_now()

    return hook


def _trade(executor: SmartOrderExecutor, rng: random.Random) -> None:
    symbol = rng.choice(SYMBOLS)
    side = rng.choice(("buy", "sell"))
    qty = rng.randint(1, 3)
    kind = rng.random()
    if kind < 0.5:
        executor.execute_trade(symbol, side, qty)
        return
    # Marketable limits fill at once; far limits rest until the trade's timeout cancels them.
    marketable = kind < 0.75
    far_buy, far_sell = Decimal("1.00"), Decimal("100000.00")
    limit = (
        (far_sell if side == "buy" else far_buy)
        if marketable
        else (far_buy if side == "buy" else far_sell)
    )
    executor.execute_trade(symbol, side, qty, order_type="limit", limit_price=limit)


def _drain(executor: SmartOrderExecutor) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while executor.unresolved_trades() and time.monotonic() < deadline:
        executor.resolve_unknown()
        time.sleep(0.2)
    for symbol in SYMBOLS:
        executor.reconcile_open_orders(symbol)
    return {
        "unresolved": [t.intent.client_order_id for t in executor.unresolved_trades()],
        "book": {s: str(executor.expected_position(s)) for s in SYMBOLS},
        "open": {s: len(executor.open_orders(s)) for s in SYMBOLS},
    }


def main() -> None:
    """Parse the arguments and trade (or drain)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--journal", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=3)
    parser.add_argument("--crash-point", default=None)
    parser.add_argument(
        "--during-recovery",
        action="store_true",
        help="Arm the crash point from the start (recovery included), not once trading began.",
    )
    parser.add_argument("--drain", action="store_true")
    args = parser.parse_args()
    from alpaca.trading.client import TradingClient

    from fillguard.sim.server import DEFAULT_KEY_ID, DEFAULT_SECRET_KEY

    client = TradingClient(DEFAULT_KEY_ID, DEFAULT_SECRET_KEY, url_override=args.base_url)
    armed = threading.Event()
    if args.during_recovery:
        armed.set()
    hook = _kill_hook(args.crash_point, armed) if args.crash_point else None
    executor = SmartOrderExecutor(client, _config(args.journal), checkpoint=hook)
    armed.set()
    report = executor.last_recovery
    print("ready", flush=True)
    print(json.dumps({"recovery": None if report is None else report.to_dict()}), flush=True)
    if args.drain:
        print(json.dumps({"drain": _drain(executor)}), flush=True)
        executor.close()
        return

    def loop(n: int) -> None:
        rng = random.Random(args.seed * 100 + n)
        while True:
            _trade(executor, rng)

    for n in range(args.threads):
        threading.Thread(target=loop, args=(n,), daemon=True).start()
    threading.Event().wait()


if __name__ == "__main__":
    sys.exit(main())
