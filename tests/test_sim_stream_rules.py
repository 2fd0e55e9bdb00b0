"""The simulator's stream holds clients to Alpaca's rules: one connection per account,
``/stream/`` as well as ``/stream``, gaps and silences."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from functools import partial

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from fillguard.sim import SimServer
from tests import sim_support
from tests.test_sim_stream import authenticate, drain, listen, settled, submit_market_orders

pytestmark = pytest.mark.integration

wait_for = partial(sim_support.wait_for, timeout=10.0)


@pytest.fixture
def rules_sim(sim: SimServer) -> Iterator[SimServer]:
    sim.hub.single_connection = True
    sim.hub.reset()
    yield sim
    sim.set_faults("calm")
    sim.hub.reset()
    sim.hub.single_connection = True
    wait_for(lambda: sim.hub.listening() == 0 and not sim.hub.slot_held())


def test_a_second_connection_is_refused_at_the_upgrade_with_429(rules_sim: SimServer) -> None:
    sim = rules_sim
    with connect(sim.stream_url) as unauthenticated:
        with connect(sim.stream_url) as first:  # an open but unauthenticated socket holds nothing
            assert authenticate(first, sim)["data"]["status"] == "authorized"
            assert listen(first)["stream"] == "listening"
            refused = sim.hub.refused_upgrades
            with pytest.raises(InvalidStatus) as info:
                connect(sim.stream_url, open_timeout=5)
            assert info.value.response.status_code == 429
            assert json.loads(info.value.response.body or b"{}")["code"] == 42910000
            assert sim.hub.refused_upgrades == refused + 1
            assert sim.hub.slot_held()
            # The holder still gets its events.
            (order,) = submit_market_orders(sim, 1)
            settled(sim, [order])
            assert [m["data"]["event"] for m in drain(first)][-1] == "fill"
        unauthenticated.close()
    wait_for(lambda: not sim.hub.slot_held())
    with connect(sim.stream_url) as again:  # the slot is free once the holder closed
        assert authenticate(again, sim)["data"]["status"] == "authorized"


def test_two_upgrades_racing_the_second_authorization_is_told_the_limit(
    rules_sim: SimServer,
) -> None:
    sim = rules_sim
    with connect(sim.stream_url) as a, connect(sim.stream_url) as b:
        assert authenticate(a, sim)["data"]["status"] == "authorized"
        b.send(
            json.dumps(
                {
                    "action": "authenticate",
                    "data": {"key_id": sim.key_id, "secret_key": sim.secret_key},
                }
            )
        )
        assert json.loads(b.recv(timeout=5)) == {
            "stream": "error",
            "data": {"code": 406, "error": "connection limit exceeded"},
        }
        with pytest.raises(ConnectionClosed, match="1008"):
            b.recv(timeout=5)
        assert sim.hub.stats[-1].limit_exceeded
        assert listen(a)["stream"] == "listening"


def test_the_rule_can_be_switched_off(rules_sim: SimServer) -> None:
    sim = rules_sim
    sim.hub.single_connection = False
    with connect(sim.stream_url) as a, connect(sim.stream_url) as b:
        for ws in (a, b):
            authenticate(ws, sim)
            listen(ws)
        (order,) = submit_market_orders(sim, 1)
        settled(sim, [order])
        assert [m["data"]["event"] for m in drain(a)] == [m["data"]["event"] for m in drain(b)]
        assert sim.hub.listening() == 2


def test_trailing_slash_is_accepted(rules_sim: SimServer) -> None:
    sim = rules_sim
    with connect(sim.stream_url + "/") as ws:
        assert authenticate(ws, sim)["data"]["status"] == "authorized"
        assert listen(ws) == {"stream": "listening", "data": {"streams": ["trade_updates"]}}


def test_gap_cuts_the_connection_holds_the_slot_and_loses_its_events(
    rules_sim: SimServer,
) -> None:
    sim = rules_sim
    with connect(sim.stream_url) as ws:
        authenticate(ws, sim)
        listen(ws)
        sim.set_faults({"stream_gap_rate": 1.0, "stream_gap_seconds": 0.6})
        (first,) = submit_market_orders(sim, 1)
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)  # cut at the order's first event: nothing arrives
        assert sim.hub.stats[-1].gapped
    sim.set_faults("calm")
    assert sim.hub.slot_held()
    with pytest.raises(InvalidStatus) as info:
        connect(sim.stream_url, open_timeout=5)
    assert info.value.response.status_code == 429  # the stale slot of the dropped socket
    lost = submit_market_orders(sim, 1)
    settled(sim, [first, *lost])
    wait_for(lambda: not sim.hub.slot_held())
    with connect(sim.stream_url) as ws:
        authenticate(ws, sim)
        listen(ws)
        (after,) = submit_market_orders(sim, 1)
        settled(sim, [after])
        events = drain(ws)
    assert {m["data"]["order"]["id"] for m in events} == {str(after.id)}


def test_silence_keeps_the_socket_open_sends_nothing_and_leaves_pings_unanswered(
    rules_sim: SimServer,
) -> None:
    sim = rules_sim
    with connect(sim.stream_url) as ws:
        authenticate(ws, sim)
        listen(ws)
        assert ws.ping().wait(5), "pings are answered normally"
        sim.set_faults({"stream_silence_rate": 1.0, "stream_silence_seconds": 1.0})
        started = time.monotonic()
        (muted,) = submit_market_orders(sim, 1)
        settled(sim, [muted])
        sim.set_faults("calm")
        pong = ws.ping()
        assert not pong.wait(0.3), "a ping in the silence is not answered"
        assert drain(ws, quiet=0.2) == []
        stats = sim.hub.stats[-1]
        assert stats.silenced == 4  # accepted, pending_new, new, fill: all lost
        assert not stats.closed, "the socket stayed open"
        wait_for(pong.is_set)  # answered once the server reads again
        assert time.monotonic() - started >= 1.0
        (after,) = submit_market_orders(sim, 1)
        settled(sim, [after])
        assert [m["data"]["event"] for m in drain(ws)] == ["accepted", "pending_new", "new", "fill"]
