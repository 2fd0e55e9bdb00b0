"""``fillguard sim`` as a user runs it: a subprocess that prints where to connect and serves."""

from __future__ import annotations

import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
import requests
from alpaca.trading.client import TradingClient
from alpaca.trading.models import Clock
from click.testing import CliRunner

from fillguard.cli import main
from fillguard.sim import DEFAULT_KEY_ID, DEFAULT_SECRET_KEY

pytestmark = pytest.mark.integration


def _command() -> list[str]:
    script = Path(sys.executable).with_name("fillguard")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from fillguard.cli import main; main()"]


class Sim:
    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        assert process.stdout is not None
        stdout = process.stdout
        self.reader = threading.Thread(target=self._read, args=(stdout,), daemon=True)
        self.reader.start()

    def _read(self, stdout: IO[str]) -> None:
        for line in stdout:
            self.lines.put(line)

    def read_until(self, marker: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while not any(marker in line for line in self.output):
            try:
                self.output.append(self.lines.get(timeout=max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                raise AssertionError(f"no {marker!r} in {self.output}") from None
        return "".join(self.output)


@pytest.fixture
def run_cli() -> Iterator[list[Sim]]:
    started: list[Sim] = []
    yield started
    for sim in started:
        sim.process.terminate()
        try:
            sim.process.wait(10)
        except subprocess.TimeoutExpired:
            sim.process.kill()
            sim.process.wait(10)
        sim.reader.join(10)  # EOF once the process is gone
        if sim.process.stdout is not None:
            sim.process.stdout.close()


def start(run_cli: list[Sim], *args: str, env: dict[str, str] | None = None) -> Sim:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("APCA_")}
    process = subprocess.Popen(
        [*_command(), "sim", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**clean, **(env or {}), "COLUMNS": "200"},
    )
    sim = Sim(process)
    run_cli.append(sim)
    return sim


def urls(text: str) -> tuple[str, str]:
    rest = re.search(r"REST\s+(http://127\.0\.0\.1:\d+)", text)
    stream = re.search(r"stream\s+(ws://127\.0\.0\.1:\d+/stream)", text)
    assert rest is not None, text
    assert stream is not None, text
    return rest.group(1), stream.group(1)


def test_sim_with_env_keys_prints_urls_and_key_but_not_the_secret(run_cli: list[Sim]) -> None:
    sim = start(
        run_cli,
        "--faults",
        "calm",
        "--seed",
        "4",
        env={"APCA_API_KEY_ID": "ENVKEY", "APCA_API_SECRET_KEY": "ENV-SECRET-XYZ"},
    )
    text = sim.read_until("Ctrl-C")
    base_url, stream_url = urls(text)
    assert stream_url == base_url.replace("http://", "ws://") + "/stream"
    assert "ENVKEY" in text
    assert "ENV-SECRET-XYZ" not in text
    assert f'url_override="{base_url}"' in text
    clock = TradingClient("ENVKEY", "ENV-SECRET-XYZ", url_override=base_url).get_clock()
    assert isinstance(clock, Clock)
    sim.process.terminate()
    assert sim.process.wait(10) == 0
    assert "ENV-SECRET-XYZ" not in sim.read_until("stopping")


def test_sim_default_pair_and_flags(run_cli: list[Sim]) -> None:
    sim = start(run_cli, "--faults", "rough", "--rate-limit", "0")
    text = sim.read_until("Ctrl-C")
    base_url, _ = urls(text)
    assert DEFAULT_KEY_ID in text
    assert DEFAULT_SECRET_KEY in text  # the public default pair may be shown
    assert "faults=rough" in text
    assert "rate limit=off" in text
    client = TradingClient(DEFAULT_KEY_ID, DEFAULT_SECRET_KEY, url_override=base_url)
    client._retry = 0
    for _ in range(5):  # rough: a request may fail on an injected fault
        try:
            assert isinstance(client.get_clock(), Clock)
            break
        except Exception:
            continue
    else:
        pytest.fail("no clock in 5 tries")


def test_sim_refuses_a_busy_port_and_documents_every_option() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(main, ["sim", "--port", str(port)])
    assert result.exit_code != 0
    assert "cannot listen on 127.0.0.1" in result.output
    help_text = CliRunner().invoke(main, ["sim", "--help"]).output
    for option in ("--host", "--port", "--faults", "--seed", "--key", "--secret", "--rate-limit"):
        assert option in help_text


def test_sim_clock_and_symbols_options(run_cli: list[Sim]) -> None:
    sim = start(run_cli, "--clock", "fixed:2026-03-07T12:00:00-05:00", "--symbols", "AAPL,BTC/USD")
    text = sim.read_until("Ctrl-C")
    base_url, _ = urls(text)
    assert "clock   fixed:2026-03-07T12:00:00-05:00" in text
    client: Any = TradingClient(DEFAULT_KEY_ID, DEFAULT_SECRET_KEY, url_override=base_url)
    assert client.get_clock().is_open is False  # a Saturday, frozen
    assert {a.symbol for a in client.get_all_assets()} == {"AAPL", "BTC/USD"}
    bad = CliRunner().invoke(main, ["sim", "--port", "0", "--clock", "sometimes"])
    assert bad.exit_code == 2
    assert "unknown clock" in bad.output
    help_text = CliRunner().invoke(main, ["sim", "--help"]).output
    assert "--clock" in help_text
    assert "--symbols" in help_text


def test_sim_says_where_its_keys_came_from_and_guards_sim_control(
    run_cli: list[Sim], tmp_path: Path
) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("FILE-SECRET-ABC\n")
    sim = start(
        run_cli,
        "--secret-file",
        str(secret_file),
        env={"APCA_API_KEY_ID": "ENVKEY", "FILLGUARD_SIM_CONTROL_TOKEN": "cli-test-token"},
    )
    text = sim.read_until("Ctrl-C")
    base_url, _ = urls(text)
    assert "key id APCA_API_KEY_ID in the environment" in text
    assert f"secret --secret-file {secret_file}" in text
    assert "FILE-SECRET-ABC" not in text
    assert "control token  cli-test-token" in text
    assert TradingClient("ENVKEY", "FILE-SECRET-ABC", url_override=base_url).get_clock()
    assert requests.get(f"{base_url}/_sim/ledger", timeout=10).status_code == 401
    token = {"X-Fillguard-Sim-Token": "cli-test-token"}
    assert requests.get(f"{base_url}/_sim/ledger", headers=token, timeout=10).status_code == 200
