"""``--metrics-port`` / ``--metrics-linger`` on ``fillguard demo``, ``execute`` and ``watch``:
the command's own metrics, served on loopback while it runs and scraped over real HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import click
import pytest
import requests
from click.testing import CliRunner, Result
from prometheus_client.parser import text_string_to_metric_families

from fillguard.cli import main
from fillguard.metrics import MetricsServer, PrometheusMetrics, serve
from fillguard.metrics_cli import metrics_session
from fillguard.sim import SimServer
from tests.ops_support import free_port, wait_until

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    response = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
    response.raise_for_status()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: Samples, name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


# --------------------------------------------------------------------------- the helper
def test_no_port_means_no_server_and_no_observer() -> None:
    def never(seconds: float) -> None:
        pytest.fail(f"slept {seconds} s without a server")

    with metrics_session(None, 5.0, sleep=never) as observer:
        assert observer is None


def test_serves_its_own_registry_and_lingers_only_after_a_normal_end() -> None:
    servers: list[MetricsServer] = []
    slept: list[float] = []
    session = metrics_session(0, 2.5, sleep=slept.append, on_serving=servers.append)
    observer = session.__enter__()
    assert isinstance(observer, PrometheusMetrics)
    observer.fill_detection("filled", 0.2)
    port = servers[0].port
    assert value(scrape(port), "fillguard_fill_detections_total", result="filled") == 1
    # How the commands end (sys.exit): still a normal end, so it lingers; not suppressed.
    assert session.__exit__(SystemExit, SystemExit(0), None) is False
    assert slept == [2.5]
    with pytest.raises(requests.RequestException):
        scrape(port)  # stopped after the linger

    with pytest.raises(RuntimeError), metrics_session(0, 2.5, sleep=slept.append) as observer:
        raise RuntimeError("boom")
    assert slept == [2.5]  # no linger after a failure


def test_two_sessions_never_share_counters() -> None:
    with metrics_session(0) as first, metrics_session(0) as second:
        assert first is not None
        assert second is not None
        first.submit_outcome("placed")
        assert first.registry is not second.registry


def test_a_port_in_use_is_a_usage_error() -> None:
    busy = serve(0, registry=PrometheusMetrics())
    try:
        with pytest.raises(click.UsageError, match=str(busy.port)), metrics_session(busy.port):
            pass
    finally:
        busy.stop()


# --------------------------------------------------------------------------- the commands
def run_in_thread(
    args: list[str], env: dict[str, str | None]
) -> tuple[threading.Thread, list[Result]]:
    results: list[Result] = []

    def target() -> None:
        results.append(CliRunner().invoke(main, args, env=env, catch_exceptions=False))

    thread = threading.Thread(target=target, name="cli-under-test")
    thread.start()
    return thread, results


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_execute_serves_its_metrics_and_lingers_for_the_scraper(sim: SimServer) -> None:
    port = free_port()
    env: dict[str, str | None] = {
        "APCA_API_KEY_ID": sim.key_id,
        "APCA_API_SECRET_KEY": sim.secret_key,
    }
    args = ["execute", "AAPL", "buy", "1", "--base-url", sim.base_url]
    thread, results = run_in_thread(
        [*args, "--metrics-port", str(port), "--metrics-linger", "4"], env
    )
    try:
        # The final figures, scraped while the command lingers after its trade.
        final = wait_until(
            lambda: (
                (s := scrape(port))
                and value(s, "fillguard_fill_detections_total", result="filled") == 1
                and s
            ),
            timeout=30,
            what="the trade's metrics",
        )
    finally:
        thread.join(timeout=40)
    assert not thread.is_alive()
    [result] = results
    assert result.exit_code == 0, result.output
    assert value(final, "fillguard_submit_outcomes_total", outcome="placed") == 1
    assert value(final, "fillguard_fill_detection_engine_enabled") == 1
    assert value(final, "fillguard_broker_requests_total", endpoint="submit_order", code="200") >= 1
    assert value(final, "fillguard_position_checks_total", result="consistent") == 1
    assert "metrics: serving http://127.0.0.1:" in result.output
    with pytest.raises(requests.RequestException):
        scrape(port)  # stopped when the command ended


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_watch_serves_its_metrics(sim: SimServer) -> None:
    from alpaca.trading.enums import OrderSide, TimeInForce
    from alpaca.trading.requests import MarketOrderRequest

    order = sim.trading_client().submit_order(
        MarketOrderRequest(symbol="MSFT", qty=2, side=OrderSide.BUY, time_in_force=TimeInForce.DAY)
    )
    port = free_port()
    env: dict[str, str | None] = {
        "APCA_API_KEY_ID": sim.key_id,
        "APCA_API_SECRET_KEY": sim.secret_key,
    }
    args = ["watch", str(order.id), "--base-url", sim.base_url, "--timeout", "10"]
    thread, results = run_in_thread(
        [*args, "--metrics-port", str(port), "--metrics-linger", "4"], env
    )
    try:
        final = wait_until(
            lambda: (s := scrape(port)) and total(s, "fillguard_fill_detections_total") == 1 and s,
            timeout=30,
            what="the watch's metrics",
        )
    finally:
        thread.join(timeout=40)
    [result] = results
    assert result.exit_code == 0, result.output
    assert value(final, "fillguard_fill_detections_total", result="filled") == 1
    assert value(final, "fillguard_fill_detection_seconds_count") == 1
    assert total(final, "fillguard_broker_requests_total") >= 1


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_demo_as_a_process_serves_metrics_while_it_runs_and_lingers(tmp_path: Path) -> None:
    """What ``python3 dev.py demo --metrics-port 9464`` does (dev.py passes its arguments on)."""
    port = free_port()
    out = tmp_path / "demo.out"
    orders = 8
    cmd = [
        sys.executable,
        "-m",
        "fillguard.cli",
        "demo",
        "--orders",
        str(orders),
        "--faults",
        "calm",
        "--no-progress",
        "--metrics-port",
        str(port),
        "--metrics-linger",
        "60",
    ]
    env = {**os.environ, "COLUMNS": "120", "PYTHONPATH": os.pathsep.join(sys.path)}
    with out.open("wb") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, env=env)
    try:
        during = wait_until(
            lambda: (s := scrape(port)) and total(s, "fillguard_fill_detections_total") >= 1 and s,
            timeout=60,
            what="metrics while the demo runs",
            on_fail=out.read_text,
        )
        assert value(during, "fillguard_fill_detection_engine_enabled") == 1
        wait_until(
            lambda: "metrics: serving the final figures" in out.read_text(),
            timeout=60,
            what="the demo to finish and linger",
            on_fail=out.read_text,
        )
        final = scrape(port)
        assert "OK: every outcome agrees with the ledger" in out.read_text()
        assert total(final, "fillguard_submit_outcomes_total") == orders
        assert value(final, "fillguard_fill_detections_total", result="filled") >= 1
        assert total(final, "fillguard_stream_events_total") > 0  # the demo runs stream first
        assert value(final, "fillguard_budget_remaining") >= 0
    finally:
        proc.terminate()
        proc.wait(timeout=20)
