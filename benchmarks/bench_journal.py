"""Write-ahead journal: commit latency per record, the fsync cost, and reads of a big journal.

    .venv/bin/python benchmarks/bench_journal.py                # about 1 minute
    .venv/bin/python benchmarks/bench_journal.py --trades 500   # a quicker run

(a) Per-record commit latency, all in one run on the same directory: ``SqliteJournal`` with every
commit ``synchronous=FULL`` (``Durability.ALL``), the default (FULL for intent and attempt,
NORMAL for the rest: ``WRITE_AHEAD``), every commit NORMAL (``PROCESS_CRASH``), and
``InMemoryJournal`` (the baseline: the cost of the rules without storage). Each trade writes
five records (intent, attempt, outcome, booking, final); every call is timed with
``time.perf_counter_ns``. The raw cost of one ``fsync`` of a 4 KiB write in the same directory
is measured in the same run.
(b) A journal with 10,000 finished and 100 unfinished trades: the time to open it as a writer
(which runs ``PRAGMA quick_check``) and as a reader, ``unfinished()``, the full read model
``trades()``, one ``trade()``, ``bookings()`` and ``baselines()``; median of 5. The same reads on
a copy stripped back to schema v1 (no indexes) show what migration v2 buys.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from support import machine

from fillguard.journal import (
    Booking,
    Journal,
    JournalAccount,
    OutcomeKind,
    SubmitAttempt,
    SubmitOutcome,
    TradeFinal,
    TradeIntent,
)
from fillguard.journal_memory import InMemoryJournal
from fillguard.journal_sqlite import Durability, SqliteJournal
from fillguard.results import FillStatus

ACCOUNT = JournalAccount(key_id="PKBENCH", base_url="http://127.0.0.1:8787")
T0 = dt.datetime(2026, 11, 24, 13, 0, tzinfo=dt.UTC)
SYMBOLS = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META"]
KINDS = ("intent", "attempt", "outcome", "booking", "final")


def trade_records(n: int, *, finished: bool = True) -> list[tuple[str, object]]:
    """The five records of trade ``n`` (four when unfinished: no final)."""
    coid = f"bench-{n:06}"
    order = f"order-{n:06}"
    symbol = SYMBOLS[n % len(SYMBOLS)]
    at = T0 + dt.timedelta(seconds=n)
    records: list[tuple[str, object]] = [
        (
            "intent",
            TradeIntent(
                client_order_id=coid,
                symbol=symbol,
                side="buy" if n % 2 else "sell",
                qty=Decimal("1.5"),
                order_type="limit",
                time_in_force="day",
                created_at=at,
                limit_price=Decimal("190.12"),
                expected_price=Decimal("190.10"),
            ),
        ),
        ("attempt", SubmitAttempt(client_order_id=coid, attempt=1, at=at)),
        (
            "outcome",
            SubmitOutcome(client_order_id=coid, outcome=OutcomeKind.PLACED, order_id=order, at=at),
        ),
        (
            "booking",
            Booking(
                order_id=order,
                client_order_id=coid,
                symbol=symbol,
                side="buy" if n % 2 else "sell",
                filled_qty=Decimal("1.5"),
                at=at,
            ),
        ),
    ]
    if finished:
        records.append(
            (
                "final",
                TradeFinal(
                    client_order_id=coid,
                    status=FillStatus.FILLED,
                    filled_qty=Decimal("1.5"),
                    fill_price=Decimal("190.11"),
                    order_ids=(order,),
                    at=at,
                ),
            )
        )
    return records


def write(journal: Journal, kind: str, record: Any) -> None:
    writers: dict[str, Callable[[Any], object]] = {
        "intent": journal.record_intent,
        "attempt": journal.record_attempt,
        "outcome": journal.record_outcome,
        "booking": journal.record_booking,
        "final": journal.record_final,
    }
    writers[kind](record)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def filesystem(path: Path) -> str:
    """The mount point and type of the filesystem holding ``path`` (from /proc/mounts)."""
    best = ("?", "?")
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            _dev, mount, fstype, *_ = line.split()
            if str(path).startswith(mount) and len(mount) >= len(best[0]):
                best = (mount, fstype)
    except OSError:
        pass
    return f"{best[1]} mounted at {best[0]}"


# ---------------------------------------------------------------------------------- (a)
def bench_fsync(directory: Path, count: int) -> dict[str, list[float]]:
    """One 4 KiB write then a sync, ``count`` times: appending (the file grows, as a new WAL
    does) with fsync, and overwriting in place (as a WAL reused after a checkpoint) with
    fdatasync (what SQLite calls on Linux)."""
    path = directory / "fsync-probe"
    block = os.urandom(4096)
    out: dict[str, list[float]] = {"append + fsync": [], "overwrite + fdatasync": []}
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        for n in range(count):
            os.pwrite(fd, block, n * 4096)
            start = time.perf_counter_ns()
            os.fsync(fd)
            out["append + fsync"].append((time.perf_counter_ns() - start) / 1e6)
        for n in range(count):
            os.pwrite(fd, block, n * 4096)
            start = time.perf_counter_ns()
            os.fdatasync(fd)
            out["overwrite + fdatasync"].append((time.perf_counter_ns() - start) / 1e6)
    finally:
        os.close(fd)
        path.unlink()
    return out


def bench_commits(directory: Path, trades: int) -> list[dict[str, Any]]:
    """Round robin: trade n goes to every journal before trade n + 1 goes to any, so a change
    in machine load hits all four alike."""
    modes: list[tuple[str, Journal]] = [
        (
            "SQLite, every commit FULL (Durability.ALL)",
            SqliteJournal(directory / "all.sqlite3", ACCOUNT, durability=Durability.ALL),
        ),
        (
            "SQLite, default: FULL for intent + attempt (WRITE_AHEAD)",
            SqliteJournal(directory / "wa.sqlite3", ACCOUNT),
        ),
        (
            "SQLite, every commit NORMAL (PROCESS_CRASH)",
            SqliteJournal(
                directory / "normal.sqlite3", ACCOUNT, durability=Durability.PROCESS_CRASH
            ),
        ),
        ("InMemoryJournal (baseline)", InMemoryJournal(ACCOUNT)),
    ]
    stats = [
        {"name": name, "per_kind": {k: [] for k in KINDS}, "per_trade": [], "busy_ns": 0}
        for name, _ in modes
    ]
    for n in range(trades):
        records = trade_records(n)
        for (_, journal), row in zip(modes, stats, strict=True):
            trade_ns = 0
            for kind, record in records:
                start = time.perf_counter_ns()
                write(journal, kind, record)
                took = time.perf_counter_ns() - start
                trade_ns += took
                row["per_kind"][kind].append(took / 1e6)
            row["per_trade"].append(trade_ns / 1e6)
            row["busy_ns"] += trade_ns
    for (_, journal), row in zip(modes, stats, strict=True):
        journal.close()
        row["all"] = [v for values in row["per_kind"].values() for v in values]
        row["records_per_s"] = len(row["all"]) / (row["busy_ns"] / 1e9)
    return stats


# ---------------------------------------------------------------------------------- (b)
def build_big(path: Path, finished: int, unfinished: int) -> float:
    start = time.perf_counter()
    with SqliteJournal(path, ACCOUNT, durability=Durability.PROCESS_CRASH) as journal:
        for n in range(finished + unfinished):
            for kind, record in trade_records(n, finished=n < finished):
                write(journal, kind, record)
    return time.perf_counter() - start


def strip_to_v1(source: Path, target: Path) -> None:
    shutil.copy(source, target)
    conn = sqlite3.connect(target, isolation_level=None)
    for name in ("outcomes_by_trade", "bookings_by_trade", "baselines_by_symbol"):
        conn.execute(f"DROP INDEX {name}")
    conn.execute("DELETE FROM schema_version WHERE version > 1")
    conn.close()


def timed(fn: Callable[[], object], runs: int = 5) -> tuple[float, object]:
    times = []
    result: object = None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000, result


def reads(path: Path, unfinished_coid: str, *, writer: bool) -> Iterator[tuple[str, float, str]]:
    """Time each read; ``writer=False`` skips the writer open (it would migrate a v1 file)."""

    def open_writer() -> None:
        SqliteJournal(path, ACCOUNT).close()

    def open_reader() -> None:
        SqliteJournal(path, read_only=True).close()

    if writer:
        ms, _ = timed(open_writer)
        yield "open as writer (lock, checks, quick_check)", ms, ""
    ms, _ = timed(open_reader)
    yield "open read-only", ms, ""
    with SqliteJournal(path, read_only=True) as journal:
        ms, got = timed(journal.unfinished)
        yield "unfinished()", ms, f"{len(got)} trades"  # type: ignore[arg-type]
        ms, got = timed(journal.trades)
        yield "trades() (full read model)", ms, f"{len(got)} trades"  # type: ignore[arg-type]
        ms, _ = timed(lambda: journal.trade(unfinished_coid), runs=50)
        yield "trade(client_order_id)", ms, ""
        ms, got = timed(journal.bookings)
        yield "bookings()", ms, f"{len(got)} orders"  # type: ignore[arg-type]
        ms, got = timed(journal.baselines)
        yield "baselines()", ms, f"{len(got)} symbols"  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trades", type=int, default=1000, help="trades per mode in (a)")
    parser.add_argument("--finished", type=int, default=10_000)
    parser.add_argument("--unfinished", type=int, default=100)
    parser.add_argument("--dir", type=Path, default=None, help="where to put the journals")
    args = parser.parse_args()

    directory = Path(tempfile.mkdtemp(prefix="fillguard-bench-journal-", dir=args.dir))
    try:
        print(f"Machine: {machine()}.")
        print(f"Date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC.")
        print(
            f"Journals in {directory} ({filesystem(directory)}); SQLite {sqlite3.sqlite_version}.\n"
        )

        print("(a) the raw sync cost here: one 4 KiB write then a sync, 500 times\n")
        print("| probe | p50 ms | p99 ms |\n|---|---:|---:|")
        for probe, values in bench_fsync(directory, 500).items():
            print(f"| {probe} | {pct(values, 0.5):.2f} | {pct(values, 0.99):.2f} |")
        print()
        rows = bench_commits(directory, args.trades)
        print(
            f"{args.trades} trades x 5 records per journal (round robin), each call timed; "
            "records/s counts time inside the calls only.\n"
        )
        print(
            "| journal | intent p50 / p99 ms | attempt p50 / p99 ms | outcome, booking, final "
            "p50 ms | all records p50 / p99 ms | records/s | journal ms per trade (p50) |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|")
        for row in rows:
            k = row["per_kind"]
            rest = "/".join(f"{pct(k[name], 0.5):.3f}" for name in ("outcome", "booking", "final"))
            print(
                f"| {row['name']} | {pct(k['intent'], 0.5):.3f} / {pct(k['intent'], 0.99):.3f} | "
                f"{pct(k['attempt'], 0.5):.3f} / {pct(k['attempt'], 0.99):.3f} | {rest} | "
                f"{pct(row['all'], 0.5):.3f} / {pct(row['all'], 0.99):.3f} | "
                f"{row['records_per_s']:,.0f} | {pct(row['per_trade'], 0.5):.2f} |"
            )

        big = directory / "big.sqlite3"
        build_s = build_big(big, args.finished, args.unfinished)
        size_mib = big.stat().st_size / 2**20
        print(
            f"\n(b) journal with {args.finished:,} finished and {args.unfinished} unfinished "
            f"trades ({size_mib:.1f} MiB, built in {build_s:.1f} s); median of 5 (50 for one "
            "trade).\n"
        )
        v1 = directory / "big-v1.sqlite3"
        strip_to_v1(big, v1)
        coid = f"bench-{args.finished + args.unfinished - 1:06}"
        current = {name: (ms, note) for name, ms, note in reads(big, coid, writer=True)}
        old = {name: (ms, note) for name, ms, note in reads(v1, coid, writer=False)}
        print("| operation | schema v2 ms | same file at v1 (no indexes), read-only ms | result |")
        print("|---|---:|---:|---|")
        for name, (ms, note) in current.items():
            before = old.get(name)
            print(
                f"| {name} | {ms:.2f} | {'-' if before is None else f'{before[0]:.2f}'} | {note} |"
            )
    finally:
        shutil.rmtree(directory)


if __name__ == "__main__":
    main()
