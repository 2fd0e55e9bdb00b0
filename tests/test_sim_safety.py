"""The simulator under abuse: /_sim/ guarded, bodies capped, slow clients cut, knobs bounded."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import requests
import websockets
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from fillguard.cli import main
from fillguard.sim import SimServer, run_simulator
from fillguard.sim.control import CONTROL_TOKEN_HEADER
from fillguard.sim.faults import FaultProfile, Latency, profile_from
from fillguard.sim.launch import resolve_keys
from fillguard.sim.prices import PricePath
from tests.sim_support import flat_sim

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server() -> Iterator[SimServer]:
    with run_simulator(
        port=0,
        rate_limit=None,
        max_body_bytes=4096,
        request_timeout_seconds=0.5,
        stream_auth_timeout_seconds=0.5,
    ) as sim:
        yield sim


def test_sim_calls_need_the_control_token(server: SimServer) -> None:
    url = f"{server.base_url}/_sim/ledger"
    assert requests.get(url, timeout=10).status_code == 401
    assert requests.get(url, headers={CONTROL_TOKEN_HEADER: "wrong"}, timeout=10).status_code == 401
    assert requests.get(url, headers=server.control_headers, timeout=10).status_code == 200
    bearer = {"Authorization": f"Bearer {server.control_token}"}
    assert requests.get(url, headers=bearer, timeout=10).status_code == 200
    message = requests.post(f"{server.base_url}/_sim/reset", timeout=10).json()["message"]
    assert CONTROL_TOKEN_HEADER in message
    # The helpers know the token: no ceremony.
    assert server.ledger()["orders"] == []
    server.reset()


def test_cross_origin_and_non_json_writes_are_refused(server: SimServer) -> None:
    before = server.broker.faults
    url = f"{server.base_url}/_sim/faults"
    headers = {**server.control_headers, "Content-Type": "text/plain"}
    resp = requests.put(url, data='"hostile"', headers=headers, timeout=10)
    assert resp.status_code == 415
    evil = {**server.control_headers, "Origin": "https://evil.example"}
    assert requests.put(url, json="hostile", headers=evil, timeout=10).status_code == 403
    site = {**server.control_headers, "Sec-Fetch-Site": "cross-site"}
    assert requests.get(url, headers=site, timeout=10).status_code == 403
    assert server.broker.faults == before
    own = {**server.control_headers, "Origin": server.base_url}
    assert requests.get(url, headers=own, timeout=10).status_code == 200


def test_request_bodies_are_capped(server: SimServer) -> None:
    body = json.dumps({"symbol": "AAPL", "pad": "x" * 10_000})
    headers = {"APCA-API-KEY-ID": server.key_id, "APCA-API-SECRET-KEY": server.secret_key}
    resp = requests.post(f"{server.base_url}/v2/orders", data=body, headers=headers, timeout=10)
    assert resp.status_code == 413
    assert resp.json()["code"] == 41310000
    assert server.ledger()["posts_without_order"] == {}  # nothing kept of it


def _connect(server: SimServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return True
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    finally:
        sock.close()


def test_idle_and_half_sent_connections_time_out(server: SimServer) -> None:
    idle = _connect(server)
    assert _closed_within(idle, 5)
    half = _connect(server)
    half.sendall(b"GET /v2/account HTTP/1.1\r\nHost: x\r\n")  # headers never finish
    assert _closed_within(half, 5)
    body = _connect(server)
    body.sendall(b"POST /v2/orders HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
    assert _closed_within(body, 5)
    errors = server.errors.count
    # A whole request is answered, however slow the simulator's own answer.
    assert requests.get(f"{server.base_url}/v2/clock", timeout=10).status_code == 401
    assert server.errors.count == errors


def test_a_client_leaving_mid_body_is_no_error(
    server: SimServer, caplog: pytest.LogCaptureFixture
) -> None:
    sock = _connect(server)
    sock.sendall(b'POST /v2/orders HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"a')
    time.sleep(0.05)
    sock.close()
    time.sleep(0.2)
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


def test_a_websocket_that_never_authenticates_is_closed(server: SimServer) -> None:
    async def silent() -> list[str]:
        got: list[str] = []
        async with websockets.connect(server.stream_url) as ws:
            try:
                async for message in ws:
                    got.append(str(message))
            except websockets.ConnectionClosed:
                pass
        return got

    before = server.hub.auth_timeouts
    messages = asyncio.run(asyncio.wait_for(silent(), 10))
    assert any("unauthorized" in m for m in messages)
    assert server.hub.auth_timeouts == before + 1


KNOB_ABUSE = [
    ("latency", {"kind": "lognormal", "a": 0.001, "b": 1e308}),
    ("latency", {"kind": "uniform", "a": "x", "b": 1}),
    ("max_partial_fills", 10**30),
    ("rate_limit_burst_length", 10**9),
    ("hang_seconds", 1e9),
    ("trickle_seconds_per_byte", 1e6),
    ("stale_read_seconds", 86400.0),
]


@pytest.mark.parametrize(("knob", "value"), KNOB_ABUSE)
def test_every_fault_knob_is_bounded_with_a_422_naming_it(knob: str, value: object) -> None:
    sim = flat_sim()
    resp = sim.handle("PUT", "/_sim/faults", json.dumps({knob: value}))
    assert resp.status == 422
    assert (
        knob.split("_seconds", maxsplit=1)[0] in resp.json()["message"]
        or knob in resp.json()["message"]
    )
    assert sim.broker.faults.is_calm


@settings(max_examples=100, deadline=None)
@given(
    a=st.floats(min_value=1e-300, max_value=60),
    b=st.floats(min_value=0, max_value=60),
    seed=st.integers(0, 2**32),
)
def test_lognormal_latency_never_overflows_and_stays_capped(a: float, b: float, seed: int) -> None:
    import random

    latency = Latency("lognormal", a, max(a, b))
    draw = latency.sample(random.Random(seed))
    assert 0 <= draw <= 4 * max(a, b)


def test_bounded_knobs_still_take_every_sane_value() -> None:
    profile = profile_from({"hang_seconds": 3600, "max_partial_fills": 100, "latency": [0, 60]})
    assert profile.max_partial_fills == 100
    with pytest.raises(ValueError, match="max_partial_fills"):
        FaultProfile(max_partial_fills=101)


def test_a_new_symbol_late_in_the_day_does_not_walk_from_tick_zero() -> None:
    path = PricePath(7, tick_seconds=1.0, window_ticks=100)
    day = 86_400.0
    first = path.price("NEWSYM", day)
    assert first == path.start_price("NEWSYM")
    assert path.kept_ticks() == 1
    for t in range(1000):
        path.price("NEWSYM", day + t)
    assert path.kept_ticks() < 2 * 100
    assert path.price("NEWSYM", day + 999) == path.price("NEWSYM", day + 999)
    path.set_price("NEWSYM", day + 1000, Decimal("12.34"))
    assert path.price("NEWSYM", day + 1000) == Decimal("12.34")
    assert path.price("NEWSYM", 0.0) > 0  # older than kept: the oldest kept price


def test_secret_from_a_file_or_the_environment_and_where_keys_came_from(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("FILE-SECRET\n")
    keys = resolve_keys(None, None, secret_file, default_key="K", default_secret="S", environ={})
    assert (keys.key_id, keys.secret_key) == ("K", "FILE-SECRET")
    assert "--secret-file" in keys.secret_source
    assert keys.key_source == "the public default pair"
    env = {"APCA_API_KEY_ID": "REAL", "APCA_API_SECRET_KEY": "REAL-SECRET"}
    keys = resolve_keys(None, None, None, default_key="K", default_secret="S", environ=env)
    assert keys.key_source == "APCA_API_KEY_ID in the environment"
    assert keys.secret_source == "APCA_API_SECRET_KEY in the environment"
    env["FILLGUARD_SIM_SECRET"] = "SIM-SECRET"
    keys = resolve_keys(None, None, None, default_key="K", default_secret="S", environ=env)
    assert keys.secret_key == "SIM-SECRET"
    with pytest.raises(ValueError, match="not both"):
        resolve_keys(None, "x", secret_file, default_key="K", default_secret="S", environ={})
    help_text = CliRunner().invoke(main, ["sim", "--help"]).output
    for words in ("--secret-file", "FILLGUARD_SIM_SECRET", "ps", "control token"):
        assert words in help_text


def test_binding_beyond_loopback_warns(caplog: pytest.LogCaptureFixture) -> None:
    with (
        caplog.at_level("WARNING", logger="fillguard.sim"),
        run_simulator(host="0.0.0.0", port=0, rate_limit=None) as sim,
    ):
        assert requests.get(f"{sim.base_url}/_sim/ledger", timeout=10).status_code == 401
    assert any("beyond loopback" in r.getMessage() for r in caplog.records)


def test_the_simulators_errors_reach_the_terminal_redacted() -> None:
    import io
    import logging

    from fillguard.logs import register_secret
    from fillguard.sim.launch import show_sim_log

    out = io.StringIO()
    handler = show_sim_log(out)
    register_secret("SAFETY-TEST-SECRET-123")
    try:
        try:
            raise RuntimeError("boom SAFETY-TEST-SECRET-123")
        except RuntimeError:
            logging.getLogger("fillguard.sim.server").exception("simulator bug answering GET /x")
    finally:
        logging.getLogger("fillguard.sim").removeHandler(handler)
    text = out.getvalue()
    assert "simulator bug answering GET /x" in text
    assert "RuntimeError" in text
    assert "SAFETY-TEST-SECRET-123" not in text
