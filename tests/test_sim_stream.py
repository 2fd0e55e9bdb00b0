"""The trade_updates websocket: handshake, delivery to alpaca-py's TradingStream, stream faults."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from functools import partial
from typing import Any

import pytest
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.models import TradeUpdate
from alpaca.trading.requests import MarketOrderRequest
from alpaca.trading.stream import TradingStream
from websockets.sync.client import ClientConnection, connect

from fillguard.sim import SimServer
from tests import sim_support

pytestmark = pytest.mark.integration


wait_for = partial(sim_support.wait_for, timeout=5.0)


class StreamRunner:
    """A TradingStream on its own event loop in a thread, collecting every update."""

    def __init__(self, stream: TradingStream) -> None:
        self.stream = stream
        self.updates: list[Any] = []
        self.loop = asyncio.new_event_loop()
        self.task: asyncio.Task[None] | None = None

        async def handler(update: Any) -> None:
            self.updates.append(update)

        stream.subscribe_trade_updates(handler)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.task = self.loop.create_task(self.stream._run_forever())  # type: ignore[no-untyped-call]
        try:
            self.loop.run_until_complete(self.task)
        except asyncio.CancelledError:
            pass
        finally:
            self.loop.run_until_complete(self.stream.close())
            self.loop.close()

    def __enter__(self) -> StreamRunner:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        wait_for(lambda: getattr(self.stream, "_loop", None) is not None)
        self.stream.stop()
        # stop() is only seen when recv() wakes up (up to 5 s): cut that wait short.
        self.loop.call_soon_threadsafe(lambda: self.task is not None and self.task.cancel())
        self.thread.join(10)
        assert not self.thread.is_alive()


def submit_market_orders(sim: SimServer, n: int, symbol: str = "AAPL") -> list[Any]:
    client = sim.trading_client()
    return [
        client.submit_order(
            MarketOrderRequest(
                symbol=symbol, qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.DAY
            )
        )
        for _ in range(n)
    ]


def settled(sim: SimServer, orders: list[Any]) -> list[dict[str, Any]]:
    """Wait until every order filled; return the broker's event messages."""
    ids = {str(o.id) for o in orders}
    wait_for(
        lambda: (
            sum(1 for e in sim.broker.events if e.event == "fill" and e.order["id"] in ids)
            == len(ids)
        )
    )
    return sim.events()


def authenticate(ws: ClientConnection, sim: SimServer) -> dict[str, Any]:
    ws.send(
        json.dumps(
            {"action": "authenticate", "data": {"key_id": sim.key_id, "secret_key": sim.secret_key}}
        )
    )
    reply = ws.recv(timeout=5)
    assert isinstance(reply, bytes)  # JSON in a binary frame, like paper
    message: dict[str, Any] = json.loads(reply)
    return message


def listen(ws: ClientConnection) -> dict[str, Any]:
    ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
    message: dict[str, Any] = json.loads(ws.recv(timeout=5))
    return message


def drain(ws: ClientConnection, quiet: float = 0.3) -> list[dict[str, Any]]:
    out = []
    while True:
        try:
            out.append(json.loads(ws.recv(timeout=quiet)))
        except TimeoutError:
            return out


def test_trading_stream_gets_every_event_of_a_calm_run_in_order(sim: SimServer) -> None:
    with StreamRunner(sim.trading_stream()) as runner:
        wait_for(lambda: sim.hub.listening() == 1)
        orders = submit_market_orders(sim, 5)
        truth = settled(sim, orders)
        wait_for(lambda: len(runner.updates) >= len(truth))
        time.sleep(0.1)
    updates = runner.updates
    assert all(isinstance(u, TradeUpdate) for u in updates)
    got = [(str(u.event), str(u.order.id), u.execution_id and str(u.execution_id)) for u in updates]
    want = [
        (m["data"]["event"], m["data"]["order"]["id"], m["data"].get("execution_id")) for m in truth
    ]
    assert got == want
    assert [e for e, _, _ in got].count("fill") == 5
    (stats,) = sim.hub.stats[-1:]
    assert (stats.sent, stats.dropped, stats.duplicated) == (len(truth), 0, 0)


def test_handshake_exactly_as_alpaca(sim: SimServer) -> None:
    with connect(sim.stream_url) as ws:
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.2)  # the server sends nothing first
        assert listen(ws) == {
            "stream": "authorization",
            "data": {"status": "unauthorized", "action": "listen"},
        }
        assert authenticate(ws, sim) == {
            "stream": "authorization",
            "data": {"status": "authorized", "action": "authenticate"},
        }
        assert listen(ws) == {"stream": "listening", "data": {"streams": ["trade_updates"]}}
        (order,) = submit_market_orders(sim, 1)
        settled(sim, [order])
        events = drain(ws)
        assert [m["data"]["event"] for m in events] == ["accepted", "pending_new", "new", "fill"]
        fill = events[-1]["data"]
        assert fill["qty"] == "1"
        assert fill["position_qty"] == "1"
        assert fill["order"]["filled_qty"] == "1"
    # The older auth shape works too; a wrong secret is refused and the connection closed.
    with connect(sim.stream_url) as ws:
        ws.send(json.dumps({"action": "auth", "key": sim.key_id, "secret": sim.secret_key}))
        assert json.loads(ws.recv(timeout=5))["data"]["status"] == "authorized"
    with connect(sim.stream_url) as ws:
        ws.send(
            json.dumps(
                {"action": "authenticate", "data": {"key_id": sim.key_id, "secret_key": "no"}}
            )
        )
        assert json.loads(ws.recv(timeout=5)) == {
            "stream": "authorization",
            "data": {"status": "unauthorized", "action": "authenticate"},
        }
        with pytest.raises(Exception, match="1008"):
            ws.recv(timeout=5)


def test_trading_stream_with_bad_credentials_gets_nothing(sim: SimServer) -> None:
    stream = TradingStream(sim.key_id, "wrong", url_override=sim.stream_url)
    with StreamRunner(stream) as runner:
        wait_for(
            lambda: (
                sim.hub.stats and not sim.hub.stats[-1].authenticated and sim.hub.stats[-1].closed
            )
        )
        settled(sim, submit_market_orders(sim, 1))
        time.sleep(0.1)
    assert runner.updates == []
    assert sim.hub.listening() == 0


def test_drop_duplicate_and_delay_faults(sim: SimServer) -> None:
    with connect(sim.stream_url) as ws:
        authenticate(ws, sim)
        listen(ws)
        sim.set_faults({"stream_drop_rate": 1.0})
        settled(sim, submit_market_orders(sim, 2))
        assert drain(ws) == []
        sim.set_faults({"stream_duplicate_rate": 1.0})
        before = len(sim.broker.events)
        settled(sim, submit_market_orders(sim, 1))
        seqs = [e.seq for e in sim.broker.events[before:]]
        events = drain(ws)
        assert len(events) == 2 * len(seqs)
        assert [m["data"]["event"] for m in events[::2]] == [
            m["data"]["event"] for m in events[1::2]
        ]
        sim.set_faults({"stream_delay_rate": 1.0, "stream_delay_seconds": 0.3})
        started = time.monotonic()
        (order,) = submit_market_orders(sim, 1)
        assert drain(ws, quiet=0.2) == []  # nothing within 0.2 s
        settled(sim, [order])
        late = drain(ws, quiet=0.5)
        assert [m["data"]["event"] for m in late][-1] == "fill"
        assert time.monotonic() - started >= 0.3
    stats = sim.hub.stats[-1]
    assert stats.dropped == 8
    assert stats.duplicated == 4
    assert stats.delayed == 4


def test_disconnect_fault_makes_trading_stream_reconnect_with_a_gap(sim: SimServer) -> None:
    first = len(sim.hub.stats)
    with StreamRunner(sim.trading_stream()) as runner:
        wait_for(lambda: sim.hub.listening() == 1)
        sim.set_faults({"stream_disconnect_rate": 1.0})
        (order,) = submit_market_orders(sim, 1)  # "accepted" goes out, then the cut
        wait_for(lambda: sim.hub.stats[first].disconnected)
        sim.set_faults("calm")
        gap = submit_market_orders(sim, 1)  # while the SDK waits ~1 s to reconnect
        settled(sim, [order, *gap])
        wait_for(lambda: sim.hub.listening() == 1 and len(sim.hub.stats) > first + 1)
        (after,) = submit_market_orders(sim, 1)
        settled(sim, [after])
        wait_for(
            lambda: any(
                str(u.order.id) == str(after.id) and u.event == "fill" for u in runner.updates
            )
        )
    got = [(str(u.order.id), str(u.event)) for u in runner.updates]
    assert got[0] == (str(order.id), "accepted")
    assert all(oid != str(gap[0].id) for oid, _ in got)  # the gap is lost, as on Alpaca
    assert got[-4:] == [(str(after.id), e) for e in ("accepted", "pending_new", "new", "fill")]
