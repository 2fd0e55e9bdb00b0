"""trade_updates through fillguard's client vs alpaca-py's TradingStream, same run.

    .venv/bin/python benchmarks/bench_stream.py            # about 30 s
    .venv/bin/python benchmarks/bench_stream.py --burst 50000 --orders 600 --write

(a) Burst: the in-process simulator pushes N real trade_updates frames (full order objects,
binary JSON as on paper) as fast as it can, through its test hook ``StreamHub.inject``, to
one client at a time: events per second received and CPU per event of the client's own
event-loop thread (``time.thread_time`` read in the callback, so the simulator's CPU in the
same process is not counted).
(b) Real orders: ``fillguard sim`` in its own process; M market orders from 4 threads; delay
from each event's timestamp to the callback, and the client thread's CPU per event.
Prints a markdown section and (with --write) puts it in BENCHMARKS.md under
"## trade_updates client".
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.requests import MarketOrderRequest
from alpaca.trading.stream import TradingStream
from support import machine, sim_process, write_section

from fillguard.sim import DEFAULT_KEY_ID, DEFAULT_SECRET_KEY, run_simulator
from fillguard.stream import TradeEvent, TradeUpdatesStream
from fillguard.stream_policy import stream_url_for

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## trade_updates client"


class Meter:
    """Counts events in the callback thread: wall and thread CPU at the first and last one."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.count = 0
        self.delays: list[float] = []
        self.first: tuple[float, float] | None = None
        self.last: tuple[float, float] = (0.0, 0.0)
        self.done = threading.Event()

    def hit(self, timestamp: dt.datetime | None) -> None:
        now = (time.perf_counter(), time.thread_time())
        if self.first is None:
            self.first = now
        self.count += 1
        self.last = now
        if timestamp is not None:
            self.delays.append(time.time() - timestamp.timestamp())
        if self.count >= self.expected:
            self.done.set()

    def result(self) -> dict[str, float]:
        assert self.first is not None
        n = max(1, self.count - 1)
        wall = self.last[0] - self.first[0]
        delays = sorted(self.delays)
        out = {
            "events": float(self.count),
            "events_per_s": n / wall if wall > 0 else float("nan"),
            "cpu_us_per_event": (self.last[1] - self.first[1]) / n * 1e6,
        }
        if delays:
            out["delay_p50_ms"] = statistics.median(delays) * 1000
            out["delay_p99_ms"] = delays[int(len(delays) * 0.99)] * 1000
        return out


# ---------------------------------------------------------------------- the two clients
def run_fillguard(base_url: str, meter: Meter, body: Callable[[], None]) -> None:
    stream = TradeUpdatesStream(DEFAULT_KEY_ID, DEFAULT_SECRET_KEY, base_url)

    def on_event(event: TradeEvent) -> None:
        meter.hit(event.timestamp)

    stream.subscribe(on_event)
    stream.start()
    try:
        if not stream.wait_listening(10):
            raise RuntimeError("fillguard stream did not listen")
        body()
    finally:
        stream.stop()


def run_trading_stream(base_url: str, meter: Meter, body: Callable[[], None]) -> None:
    stream = TradingStream(
        DEFAULT_KEY_ID, DEFAULT_SECRET_KEY, url_override=stream_url_for(base_url)
    )
    listening = threading.Event()

    async def handler(update: Any) -> None:
        meter.hit(update.timestamp)

    stream.subscribe_trade_updates(handler)
    loop = asyncio.new_event_loop()
    box: list[asyncio.Task[None]] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        box.append(loop.create_task(stream._run_forever()))  # type: ignore[no-untyped-call]
        listening.set()
        try:
            loop.run_until_complete(box[0])
        except asyncio.CancelledError:
            pass
        finally:
            loop.run_until_complete(stream.close())
            loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    listening.wait(10)
    try:
        body()
    finally:
        stream.stop()
        loop.call_soon_threadsafe(box[0].cancel)
        thread.join(10)


CLIENTS = {
    "fillguard TradeUpdatesStream": run_fillguard,
    "alpaca-py TradingStream": run_trading_stream,
}


# ---------------------------------------------------------------------- (a) burst
def burst(n_frames: int) -> dict[str, dict[str, float]]:
    out = {}
    with run_simulator(port=0, rate_limit=None) as sim:
        client = sim.trading_client()
        for _ in range(3):
            client.submit_order(
                MarketOrderRequest(
                    symbol="AAPL", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.DAY
                )
            )
        deadline = time.monotonic() + 10
        while sum(e.event == "fill" for e in sim.broker.events) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        templates = [e.message() for e in sim.broker.events]
        frames: list[bytes] = []
        while len(frames) < n_frames:
            order_id = str(uuid.uuid4())
            for template in templates:
                message = json.loads(json.dumps(template))
                message["data"]["order"]["id"] = order_id
                frames.append(json.dumps(message, separators=(",", ":")).encode())
        frames = frames[:n_frames]
        size = statistics.mean(len(f) for f in frames)
        for name, run in CLIENTS.items():
            meter = Meter(n_frames)

            def body(meter: Meter = meter) -> None:
                deadline = time.monotonic() + 5
                while sim.hub.listening() < 1 and time.monotonic() < deadline:
                    time.sleep(0.01)
                time.sleep(0.2)
                for i in range(0, n_frames, 1000):
                    sim.hub.inject(*frames[i : i + 1000], timeout=120)
                meter.done.wait(120)

            run(sim.base_url, meter, body)
            result = meter.result()
            result["frame_bytes"] = size
            out[name] = result
            time.sleep(0.3)  # the slot frees once the server saw the close
    return out


# ---------------------------------------------------------------------- (b) real orders
def real_orders(n_orders: int, seed: int) -> dict[str, dict[str, float]]:
    out = {}
    with sim_process(seed) as (base_url, _pid):
        client = TradingClient(DEFAULT_KEY_ID, DEFAULT_SECRET_KEY, url_override=base_url)

        def submit(_: int) -> None:
            client.submit_order(
                MarketOrderRequest(
                    symbol="AAPL", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.DAY
                )
            )

        for name, run in CLIENTS.items():
            meter = Meter(4 * n_orders)

            def body(meter: Meter = meter) -> None:
                time.sleep(0.3)
                with ThreadPoolExecutor(4) as pool:
                    list(pool.map(submit, range(n_orders)))
                meter.done.wait(60)

            run(base_url, meter, body)
            out[name] = meter.result()
            time.sleep(0.5)
    return out


# ---------------------------------------------------------------------- report
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--burst", type=int, default=20000, help="frames in the burst (a)")
    parser.add_argument("--orders", type=int, default=300, help="market orders in (b)")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--write", action="store_true", help="write the section to BENCHMARKS.md")
    args = parser.parse_args()
    machine_line = machine()
    a = burst(args.burst)
    b = real_orders(args.orders, args.seed)
    command = "python benchmarks/bench_stream.py" + (
        f" --burst {args.burst} --orders {args.orders}"
        if (args.burst, args.orders) != (20000, 300)
        else ""
    )
    lines = [
        SECTION,
        "",
        f"Command: `{command}` (add `--write` to update this section).",
        f"Machine: {machine_line}.",
        f"Date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        f"(a) Burst of {args.burst} real trade_updates frames (full order objects, binary JSON, "
        f"{next(iter(a.values()))['frame_bytes']:.0f} bytes each) from the in-process simulator "
        "to one client at a time. CPU is the client's event-loop thread only.",
        "",
        "| client | events | events/s received | client CPU µs/event |",
        "|---|---:|---:|---:|",
    ]
    for name, r in a.items():
        lines.append(
            f"| {name} | {r['events']:.0f} | {r['events_per_s']:.0f} | {r['cpu_us_per_event']:.1f} |"
        )
    lines += [
        "",
        f"(b) {args.orders} market orders from 4 threads, `fillguard sim` in its own process "
        "(rate limit off); delay from the event's timestamp to the callback.",
        "",
        "| client | events | delay p50 ms | delay p99 ms | client CPU µs/event |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in b.items():
        lines.append(
            f"| {name} | {r['events']:.0f} | {r.get('delay_p50_ms', float('nan')):.1f} | "
            f"{r.get('delay_p99_ms', float('nan')):.1f} | {r['cpu_us_per_event']:.1f} |"
        )
    section = "\n".join(lines) + "\n"
    print(section)
    if args.write:
        write_section(ROOT / "BENCHMARKS.md", section)



if __name__ == "__main__":
    main()
