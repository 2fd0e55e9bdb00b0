"""Crash harness: kill -9 a trading process at random moments; no order lost, none doubled.

``fillguard sim`` runs in its own process. A trading process (``crash_worker.py``) trades from
several threads with a journal and is killed with SIGKILL, at a random moment or at one of the
executor's crash points in turn (after the intent, after the attempt record, with the POST in
flight, after the answer, mid-monitoring, after the fill before its booking, after the booking
before the final status), then restarted; each restart recovers and carries on trading. After
every kill, and at the end, the simulator's ledger (read over its REST API) is checked:

* lost: orders at the broker whose ``client_order_id`` is not in the journal (must be 0);
* duplicated: client order ids with more than one order at the broker (must be 0);
* at the end, a last process drains (recovers, resolves, catches up) and its book must equal
  the broker's positions in every symbol.

    python benchmarks/crash_harness.py --kills 200 [--seed 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import machine, sim_process

WORKER = Path(__file__).with_name("crash_worker.py")
CRASH_POINTS = (
    "intent_recorded",
    "attempt_recorded",
    "post_in_flight",
    "post_answered",
    "outcome_recorded",
    "monitoring",
    "fill_seen",
    "booked",
)


@dataclass
class HarnessReport:
    """The harness's figures."""

    kills: int = 0
    kills_by_point: dict[str, int] = field(default_factory=dict)
    orders: int = 0
    intents: int = 0
    lost: int = 0
    duplicated: int = 0
    book_differences: dict[str, list[str]] = field(default_factory=dict)
    unresolved_at_end: int = 0
    seconds: float = 0.0
    machine: str = ""

    @property
    def ok(self) -> bool:
        """0 lost, 0 duplicated, books equal, nothing left unknown."""
        return not (self.lost or self.duplicated or self.book_differences or self.unresolved_at_end)


def _ledger(base_url: str) -> tuple[list[dict[str, Any]], dict[str, Decimal]]:
    """Every order (paged, oldest first) and every position, from the broker's REST API."""
    import requests

    from fillguard.sim.server import DEFAULT_KEY_ID, DEFAULT_SECRET_KEY

    headers = {"APCA-API-KEY-ID": DEFAULT_KEY_ID, "APCA-API-SECRET-KEY": DEFAULT_SECRET_KEY}
    orders: dict[str, dict[str, Any]] = {}
    after: str | None = None
    while True:
        params = {"status": "all", "direction": "asc", "limit": "500", "nested": "false"}
        if after:
            params["after"] = after
        page = requests.get(f"{base_url}/v2/orders", params=params, headers=headers, timeout=10)
        page.raise_for_status()
        rows = page.json()
        fresh = [r for r in rows if r["id"] not in orders]
        for row in rows:
            orders[row["id"]] = row
        if len(rows) < 500 or not fresh:
            break
        after = rows[-1]["created_at"]
    positions = requests.get(f"{base_url}/v2/positions", headers=headers, timeout=10)
    positions.raise_for_status()
    held = {p["symbol"]: Decimal(p["qty"]) for p in positions.json()}
    return list(orders.values()), held


def _journal_ids(path: Path) -> set[str]:
    from fillguard.journal_sqlite import SqliteJournal

    if not path.exists():
        return set()
    with SqliteJournal(path, read_only=True) as journal:
        return {t.client_order_id for t in journal.trades()}


def _check(base_url: str, path: Path, report: HarnessReport) -> dict[str, Decimal]:
    orders, held = _ledger(base_url)
    ids = _journal_ids(path)
    counts = Counter(o["client_order_id"] for o in orders)
    report.orders = len(orders)
    report.intents = len(ids)
    report.lost = max(report.lost, sum(1 for coid in counts if coid not in ids))
    report.duplicated = max(report.duplicated, sum(1 for n in counts.values() if n > 1))
    return held


def _start(
    base_url: str,
    path: Path,
    seed: int,
    point: str | None,
    drain: bool = False,
    during_recovery: bool = False,
) -> Any | None:
    """A trading process that said ``ready``; None if a crash point killed it during its
    recovery (a crash while recovering is a window too)."""
    cmd = [sys.executable, str(WORKER), "--base-url", base_url, "--journal", str(path)]
    cmd += ["--seed", str(seed)]
    if point:
        cmd += ["--crash-point", point]
    if during_recovery:
        cmd.append("--during-recovery")
    if drain:
        cmd.append("--drain")
    errors = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (the child writes it while it lives)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        proc.wait()
        if proc.returncode == -9 and point is not None:
            return None
        errors.seek(0)
        raise RuntimeError(f"the trading process did not start: {errors.read()[-2000:]}")
    return proc


def run_harness(
    kills: int, seed: int = 0, *, life_seconds: tuple[float, float] = (0.3, 1.5)
) -> HarnessReport:
    """Kill and restart the trading process ``kills`` times; the figures at the end."""
    rng = random.Random(seed)
    report = HarnessReport(machine=machine())
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp, sim_process(seed) as (base_url, _pid):
        path = Path(tmp) / "journal.sqlite3"
        for k in range(kills):
            # Every other kill is at a crash point, in turn (while trading, and every other
            # round of points also armed during recovery); the others at a random moment.
            point = CRASH_POINTS[(k // 2) % len(CRASH_POINTS)] if k % 2 else None
            in_recovery = (k // (2 * len(CRASH_POINTS))) % 2 == 1
            proc = _start(base_url, path, seed * 10_000 + k, point, during_recovery=in_recovery)
            name = point or "random"
            if proc is None:
                name = f"{point} (during recovery)"
                report.kills_by_point[name] = report.kills_by_point.get(name, 0) + 1
                report.kills += 1
                _check(base_url, path, report)
                continue
            try:
                proc.wait(timeout=rng.uniform(*life_seconds) if point is None else 20)
            except subprocess.TimeoutExpired:
                proc.kill()  # SIGKILL
                if point is not None:
                    name = f"{point} (not reached: killed at 20 s)"
            proc.wait()
            report.kills_by_point[name] = report.kills_by_point.get(name, 0) + 1
            report.kills += 1
            _check(base_url, path, report)
        drain = _start(base_url, path, seed, None, drain=True)
        assert drain is not None
        out, _ = drain.communicate(timeout=120)
        final = next(json.loads(x)["drain"] for x in out.splitlines() if x.startswith('{"drain"'))
        held = _check(base_url, path, report)
        report.unresolved_at_end = len(final["unresolved"])
        for symbol, book in final["book"].items():
            broker = held.get(symbol, Decimal(0))
            if book != "None" and Decimal(book) != broker:
                report.book_differences[symbol] = [book, str(broker)]
    report.seconds = time.monotonic() - started
    return report


def main() -> None:
    """Run the harness and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = run_harness(args.kills, args.seed)
    if args.json:
        print(json.dumps({**asdict(report), "ok": report.ok}, indent=2))
    else:
        print(f"machine: {report.machine}")
        print(
            f"{report.kills} kills ({report.kills_by_point}) in {report.seconds:.0f} s; "
            f"{report.orders} orders, {report.intents} intents; lost {report.lost}, "
            f"duplicated {report.duplicated}, book differences {report.book_differences or 0}, "
            f"unresolved at end {report.unresolved_at_end}: {'OK' if report.ok else 'FAILED'}"
        )
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
