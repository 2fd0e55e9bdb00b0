"""fillguard's trade_updates client against the real simulator over loopback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
from websockets.sync.client import connect as ws_connect

from fillguard.clock import FakeClock
from fillguard.observer import NullObserver
from fillguard.sim import SimServer
from fillguard.stream import (
    Gap,
    StreamConfig,
    StreamState,
    StreamStatus,
    TradeEvent,
    TradeUpdatesStream,
    shared_refs,
    shared_stream,
)
from tests import sim_support
from tests.test_sim_stream import authenticate, listen, settled, submit_market_orders

pytestmark = pytest.mark.integration

wait_for = partial(sim_support.wait_for, timeout=10.0)

FAST = StreamConfig(
    min_backoff_seconds=0.3,
    max_backoff_seconds=0.6,
    auth_retry_seconds=60.0,
    refused_retry_seconds=0.2,
    silence_seconds=0.6,
    ping_interval_seconds=0.2,
    open_timeout_seconds=3.0,
    handshake_timeout_seconds=3.0,
    close_timeout_seconds=1.0,
)


class Collector(NullObserver):
    """A subscriber (events, gaps, states) and an observer, thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[TradeEvent] = []
        self.gaps: list[Gap] = []
        self.states: list[StreamStatus] = []
        self.observed: list[tuple[str, Any]] = []

    def on_event(self, event: TradeEvent) -> None:
        with self.lock:
            self.events.append(event)

    def on_gap(self, gap: Gap) -> None:
        with self.lock:
            self.gaps.append(gap)

    def on_state(self, status: StreamStatus) -> None:
        with self.lock:
            self.states.append(status)

    def stream_connected(self, connected: bool) -> None:
        self.observed.append(("connected", connected))

    def stream_event(self, kind: str) -> None:
        self.observed.append(("event", kind))

    def stream_reconnect(self, reason: str) -> None:
        self.observed.append(("reconnect", reason))

    def subscribe(self, stream: TradeUpdatesStream) -> None:
        stream.subscribe(self.on_event, self.on_gap, self.on_state)

    def fills_of(self, order_ids: set[str]) -> list[TradeEvent]:
        with self.lock:
            return [e for e in self.events if e.event == "fill" and e.order_id in order_ids]


@pytest.fixture
def stream_sim(sim: SimServer) -> Iterator[SimServer]:
    """The session simulator with the one-connection rule on and no gap or silence left over."""
    sim.hub.single_connection = True
    sim.hub.reset()
    yield sim
    sim.set_faults("calm")
    sim.hub.reset()
    sim.hub.single_connection = True
    wait_for(lambda: sim.hub.listening() == 0)


@contextlib.contextmanager
def running(stream: TradeUpdatesStream) -> Iterator[TradeUpdatesStream]:
    stream.start()
    try:
        yield stream
    finally:
        stream.stop()
    assert stream.status.state is StreamState.STOPPED


def make_stream(sim: SimServer, collector: Collector, **kwargs: Any) -> TradeUpdatesStream:
    kwargs.setdefault("config", FAST)
    stream = TradeUpdatesStream(
        sim.key_id, sim.secret_key, sim.base_url, observer=collector, **kwargs
    )
    collector.subscribe(stream)
    return stream


def ids(orders: list[Any]) -> set[str]:
    return {str(o.id) for o in orders}


def test_handshake_then_every_event_of_an_order_in_order(stream_sim: SimServer) -> None:
    sim = stream_sim
    c = Collector()
    with running(make_stream(sim, c)) as stream:
        assert stream.wait_listening(10)
        assert stream.url == sim.stream_url
        (order,) = submit_market_orders(sim, 1)
        truth = settled(sim, [order])
        wait_for(lambda: c.fills_of(ids([order])))
        stats = stream.stats()
    got = [(e.event, e.order_id, e.execution_id) for e in c.events]
    want = [
        (m["data"]["event"], m["data"]["order"]["id"], m["data"].get("execution_id")) for m in truth
    ]
    assert got == want
    fill_event = c.events[-1]
    assert fill_event.position_qty == 1
    assert fill_event.order.status == "filled"
    assert fill_event.timestamp is not None
    assert (stats.connections, stats.events, stats.reconnects, stats.gaps) == (1, 4, 0, 1)
    assert [s.state for s in c.states] == [
        StreamState.CONNECTING,
        StreamState.LISTENING,
        StreamState.STOPPED,
    ]
    # The first gap: from the start of the stream to listening.
    (gap,) = c.gaps
    assert not gap.reconnect
    assert 0 <= gap.seconds < 5
    assert ("connected", True) in c.observed
    assert c.observed[-1] == ("connected", False)
    assert [k for what, k in c.observed if what == "event"] == [
        "accepted",
        "pending_new",
        "new",
        "fill",
    ]


def test_text_and_binary_frames_and_every_malformed_kind_are_counted_not_raised(
    stream_sim: SimServer, caplog: pytest.LogCaptureFixture
) -> None:
    sim = stream_sim
    c = Collector()
    other: list[TradeEvent] = []

    def broken(event: TradeEvent) -> None:
        raise RuntimeError("subscriber bug")

    stream = make_stream(sim, c)
    stream.subscribe(broken)
    stream.subscribe(other.append)
    good = {
        "stream": "trade_updates",
        "data": {"event": "new", "order": {"id": "o-1", "client_order_id": "c-1"}},
    }
    frames: list[str | bytes] = [
        json.dumps(good),  # text frame
        b"\x00\x01 not json",
        "[1, 2, 3]",
        '{"stream": "trade_updates", "data": null}',
        json.dumps({"stream": "trade_updates", "data": {"event": "warp", "order": {"id": "x"}}}),
        json.dumps({"stream": "trade_updates", "data": {"event": "fill"}}),
        '{"stream": "account_updates", "data": {}}',
        json.dumps(good).encode(),  # binary frame
    ]
    with caplog.at_level(logging.DEBUG, logger="fillguard.stream"), running(stream):
        assert stream.wait_listening(10)
        assert sim.hub.inject(*frames) == 1
        wait_for(lambda: len(other) == 2)
        (order,) = submit_market_orders(sim, 1)
        settled(sim, [order])
        wait_for(lambda: c.fills_of(ids([order])))
        stats = stream.stats()
    assert [e.order_id for e in other[:2]] == ["o-1", "o-1"]
    assert len(other) == len(c.events) == 6
    assert dict(stats.skipped_by_kind) == {
        "malformed": 2,
        "null": 1,
        "unknown": 1,
        "no_order": 1,
        "other_stream": 1,
    }
    assert (stats.malformed, stats.null, stats.unknown) == (3, 1, 1)
    assert stats.callback_errors == 6
    assert stats.reconnects == 0, "bad frames never cost the connection"
    assert "subscriber bug" in caplog.text
    kinds = [k for what, k in c.observed if what == "event"]
    assert kinds.count("malformed") == 3
    assert kinds.count("unknown") == 2
    assert kinds.count("null") == 1


def test_reconnect_after_a_server_drop_signals_a_gap_covering_the_lost_events(
    stream_sim: SimServer,
) -> None:
    sim = stream_sim
    c = Collector()
    first_conn = len(sim.hub.stats)
    with running(make_stream(sim, c)) as stream:
        assert stream.wait_listening(10)
        sim.set_faults({"stream_disconnect_rate": 1.0})
        (cut_order,) = submit_market_orders(sim, 1)  # "accepted" goes out, then the cut
        wait_for(lambda: sim.hub.stats[first_conn].disconnected)
        sim.set_faults("calm")
        lost = submit_market_orders(sim, 2)  # while the client backs off (0.15-0.3 s)
        settled(sim, [cut_order, *lost])
        wait_for(lambda: len(c.gaps) == 2)
        (after,) = submit_market_orders(sim, 1)
        settled(sim, [after])
        wait_for(lambda: c.fills_of(ids([after])))
        stats = stream.stats()
    assert stats.reconnects == 1
    assert ("reconnect", "closed") in c.observed
    gap = c.gaps[1]
    assert gap.reconnect
    received = {(e.order_id, e.event) for e in c.events}
    missed = [
        e
        for e in sim.broker.events
        if e.order["id"] in ids([cut_order, *lost]) and (e.order["id"], e.event) not in received
    ]
    assert len(missed) >= 8, "the lost orders' events never came over the stream"
    for event in missed:
        assert gap.since_wall <= event.timestamp <= gap.until_wall, event
    assert c.fills_of(ids([after])), "events flow again after the reconnect"
    waiting = [s for s in c.states if s.state is StreamState.WAITING]
    assert waiting[0].reason == "closed"
    assert waiting[0].retry_in_seconds is not None
    assert 0.15 <= waiting[0].retry_in_seconds <= 0.3


def test_silence_watchdog_closes_a_mute_socket_and_reconnects(stream_sim: SimServer) -> None:
    sim = stream_sim
    c = Collector()
    refused_before = sim.hub.refused_upgrades
    with running(make_stream(sim, c)) as stream:
        assert stream.wait_listening(10)
        sim.set_faults({"stream_silence_rate": 1.0, "stream_silence_seconds": 1.2})
        (muted,) = submit_market_orders(sim, 1)  # its first event starts the silence
        wait_for(lambda: sim.hub.stats[-1].silenced >= 1)
        sim.set_faults("calm")
        settled(sim, [muted])
        wait_for(lambda: stream.stats().silences == 1)
        wait_for(lambda: len(c.gaps) == 2 and stream.listening)
        (after,) = submit_market_orders(sim, 1)
        settled(sim, [after])
        wait_for(lambda: c.fills_of(ids([after])))
        stats = stream.stats()
    assert ("reconnect", "silence") in c.observed
    assert not c.fills_of(ids([muted])), "its events were lost in the silence"
    gap = c.gaps[1]
    for event in sim.broker.events:
        if event.order["id"] == str(muted.id):
            assert gap.since_wall <= event.timestamp <= gap.until_wall
    # The mute socket held the account's slot until the server read again: refused meanwhile.
    assert stats.refused == sim.hub.refused_upgrades - refused_before


def test_auth_failure_is_an_error_retried_slowly_with_bounded_attempts(
    stream_sim: SimServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Five minutes of fake time with a wrong secret: at most 1 + 300 / 60 attempts."""
    sim = stream_sim
    clock = FakeClock(monotonic_start=0.0)
    slept: list[float] = []
    c = Collector()
    secret = "wrong-secret-d41d8cd9"

    stream: TradeUpdatesStream

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)
        if clock.monotonic() >= 300:
            stream.stop(timeout=0)
        await asyncio.sleep(0)

    stream = TradeUpdatesStream(
        sim.key_id,
        secret,
        sim.base_url,
        config=StreamConfig(),
        clock=clock,
        sleep=fake_sleep,
        observer=c,
    )
    c.subscribe(stream)
    before = len(sim.hub.stats)
    with caplog.at_level(logging.INFO, logger="fillguard.stream"), running(stream):
        wait_for(lambda: stream.status.state is StreamState.STOPPED)
    attempts = len(sim.hub.stats) - before
    assert 5 <= attempts <= 6
    assert stream.stats().auth_failures == attempts
    assert stream.stats().connect_attempts == attempts
    assert all(60 <= s <= 72 for s in slept), slept
    assert all(not s.authenticated and s.closed for s in sim.hub.stats[before:])
    failed = [s for s in c.states if s.state is StreamState.AUTH_FAILED]
    assert len(failed) == attempts
    assert failed[0].reason == "auth"
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == attempts
    assert "stream_auth_failed" in errors[0].getMessage()
    assert secret not in caplog.text
    assert [r for r, _ in c.observed if r == "reconnect"]
    assert c.gaps == []
    assert c.events == []


def test_backoff_schedule_while_the_server_is_unreachable() -> None:
    """A closed port, fake sleep: the delays follow 1, 2, 4, ... 30 s with equal jitter."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    clock = FakeClock(monotonic_start=0.0)
    slept: list[float] = []
    stream: TradeUpdatesStream

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)
        if len(slept) >= 8:
            stream.stop(timeout=0)
        await asyncio.sleep(0)

    stream = TradeUpdatesStream("K", "S", f"http://127.0.0.1:{port}", clock=clock, sleep=fake_sleep)
    with running(stream):
        wait_for(lambda: stream.status.state is StreamState.STOPPED)
    caps = [1, 2, 4, 8, 16, 30, 30, 30]
    assert len(slept) == 8
    for delay, cap in zip(slept, caps, strict=True):
        assert cap / 2 <= delay <= cap
    assert stream.stats().connect_attempts == 8
    assert stream.status.state is StreamState.STOPPED


def test_one_shared_connection_for_two_subscribers_on_the_same_account(
    stream_sim: SimServer,
) -> None:
    sim = stream_sim
    before = len(sim.hub.stats)
    a = shared_stream(sim.key_id, sim.secret_key, sim.base_url, config=FAST)
    b = shared_stream(sim.key_id, sim.secret_key, sim.base_url + "/")
    try:
        assert a is b
        assert shared_refs(a) == 2
        first, second = Collector(), Collector()
        first.subscribe(a)
        unsubscribe = b.subscribe(second.on_event)
        assert a.wait_listening(10)
        orders = submit_market_orders(sim, 2)
        settled(sim, orders)
        wait_for(lambda: len(first.fills_of(ids(orders))) == 2)
        wait_for(lambda: len(second.fills_of(ids(orders))) == 2)
        assert sim.hub.listening() == 1
        assert len(sim.hub.stats) - before == 1
        unsubscribe()
        with pytest.raises(ValueError, match="secret_key: differs"):
            shared_stream(sim.key_id, "another-secret", sim.base_url)
        b.release()
        assert shared_refs(a) == 1
        assert a.listening, "one holder left: still connected"
    finally:
        a.release()
    assert shared_refs(a) == 0
    assert a.status.state is StreamState.STOPPED
    c = shared_stream(sim.key_id, sim.secret_key, sim.base_url, config=FAST)
    try:
        assert c is not a, "after the last release a new stream is made"
    finally:
        c.release()


def test_a_second_connection_is_refused_and_retried_slowly_until_the_slot_frees(
    stream_sim: SimServer,
) -> None:
    sim = stream_sim
    c = Collector()
    refused_before = sim.hub.refused_upgrades
    with ws_connect(sim.stream_url) as holder:
        authenticate(holder, sim)
        listen(holder)
        stream = make_stream(sim, c)
        with running(stream):
            wait_for(lambda: stream.stats().refused >= 2)
            assert stream.status.state in (StreamState.REFUSED, StreamState.CONNECTING)
            refused = [s for s in c.states if s.state is StreamState.REFUSED]
            assert refused[0].reason == "refused"
            assert "429" in (refused[0].detail or "")
            assert refused[0].retry_in_seconds is not None
            assert 0.2 <= refused[0].retry_in_seconds <= 0.24
            holder.close()
            assert stream.wait_listening(10)
            assert sim.hub.listening() == 1
        assert stream.stats().refused == sim.hub.refused_upgrades - refused_before


def test_trailing_slash_url_and_running_inside_an_existing_loop(stream_sim: SimServer) -> None:
    sim = stream_sim
    c = Collector()
    stream = make_stream(sim, c, url=sim.stream_url + "/")
    assert stream.url.endswith("/stream/")

    async def main() -> None:
        task = asyncio.create_task(stream.run())
        while not stream.listening:
            await asyncio.sleep(0.01)
        orders = await asyncio.to_thread(submit_market_orders, sim, 1)
        await asyncio.to_thread(settled, sim, orders)
        while not c.fills_of(ids(orders)):
            await asyncio.sleep(0.01)
        await stream.aclose()
        await task

    asyncio.run(main())
    assert stream.status.state is StreamState.STOPPED
    assert stream.stats().events == 4
    with pytest.raises(RuntimeError, match="already ran"):
        asyncio.run(stream.run())


def test_stop_during_backoff_is_prompt_and_joins_the_thread(stream_sim: SimServer) -> None:
    sim = stream_sim
    stream = TradeUpdatesStream(sim.key_id, "bad-secret-0001", sim.base_url)  # 60 s retry
    stream.start()
    wait_for(lambda: stream.status.state is StreamState.AUTH_FAILED)
    stream.stop(timeout=5)  # cuts the 60 s wait short, else the thread would still be alive
    assert stream.status.state is StreamState.STOPPED
    assert stream._thread is not None
    assert not stream._thread.is_alive()
    with pytest.raises(RuntimeError, match="already started"):
        stream.start()
