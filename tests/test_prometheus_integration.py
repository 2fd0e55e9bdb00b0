"""A real Prometheus (the Debian package's binary) scrapes a demo run and raises the position
mismatch alert from the shipped rules.

The scraped target is the ``mismatch_target`` fixture: a ``PrometheusMetrics`` served on loopback
(what ``--metrics-port`` does) and a demo run reporting to it, on the hostile profile plus the
simulator's ``outside_trade`` knob (another client of the account buys, so the broker's
positions differ from what fillguard's fills explain) and the demo's final position checks,
which see those differences past the lag window as mismatches. Prometheus scrapes every 1 s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fillguard.demo import DemoOptions, DemoReport, run_demo
from fillguard.metrics import PrometheusMetrics, serve
from fillguard.sim.faults import HOSTILE
from tests.ops_support import binary_or_skip, run_prometheus, wait_until

pytestmark = pytest.mark.integration

#: Each wait below is bounded by this (seconds), Prometheus's start-up included.
BOUND_SECONDS = 30.0
#: Hostile, and every trade of ours followed by someone else's buy in the symbol. Three symbols
#: so each sees several trades; the rate limit off so the run stays short (its own tests cover it).
OPTIONS = DemoOptions(
    orders=12,
    symbols=3,
    seed=1,
    faults=HOSTILE.with_(name="hostile+outside_trade", outside_trade_rate=1.0),
    rate_limit=None,
    final_position_check=True,
)


@dataclass
class Target:
    """What Prometheus scrapes (``host:port``) and the run that reports to it."""

    address: str
    run: Callable[[], DemoReport]


@pytest.fixture
def mismatch_target() -> Iterator[Target]:
    """Metrics served on loopback; ``run()`` runs the demo with them as its observer."""
    metrics = PrometheusMetrics()
    server = serve(0, registry=metrics)
    try:
        yield Target(f"127.0.0.1:{server.port}", lambda: run_demo(OPTIONS, observer=metrics))
    finally:
        server.stop()


@pytest.mark.timeout(240)
def test_prometheus_scrapes_fillguard_and_raises_the_mismatch_alert(
    tmp_path: Path, mismatch_target: Target
) -> None:
    binary_or_skip("prometheus")
    with run_prometheus(tmp_path / "prometheus", [mismatch_target.address]) as prometheus:
        # Prometheus sees the target and fillguard's series, the mismatch counter at 0.
        def mismatch_series() -> list[dict[str, Any]]:
            return prometheus.query('fillguard_position_checks_total{result="mismatch"}')

        (sample,) = wait_until(
            mismatch_series,
            timeout=BOUND_SECONDS,
            what="the first scrape of fillguard's series",
            on_fail=prometheus.log,
        )
        assert sample["metric"]["job"] == "fillguard"
        assert float(sample["value"][1]) == 0
        up = prometheus.query(f'up{{instance="{mismatch_target.address}"}}')
        assert [float(r["value"][1]) for r in up] == [1.0]

        report = mismatch_target.run()  # bounded by the demo's own deadlines and drain
        mismatches = report.consistency["mismatch"] + report.final_checks["mismatch"]
        assert mismatches >= 1, (report.consistency, report.final_checks)
        assert report.outside_orders >= 1
        assert report.stray_orders == 0
        assert report.count("missed") == 0
        assert report.count("false_fill") == 0

        def mismatch_alert() -> list[dict[str, object]]:
            return [
                a
                for a in prometheus.alerts()
                if a["labels"]["alertname"] == "FillguardPositionMismatch"
                and a["state"] in ("pending", "firing")
            ]

        (alert,) = wait_until(
            mismatch_alert,
            timeout=BOUND_SECONDS,
            what="FillguardPositionMismatch to be pending or firing",
            on_fail=prometheus.log,
        )
        labels = alert["labels"]
        assert labels["severity"] == "critical"
        assert labels["instance"] == mismatch_target.address
        assert alert["annotations"]["runbook_url"].endswith("#fillguardpositionmismatch")
        # Prometheus holds the run's own figures.
        wait_until(
            lambda: [r for r in mismatch_series() if float(r["value"][1]) == mismatches],
            timeout=BOUND_SECONDS,
            what=f"{mismatches} mismatches to be scraped",
            on_fail=prometheus.log,
        )
        detections = prometheus.query("sum(fillguard_fill_detections_total)")
        placed = sum(1 for c in report.checks if c.verdict not in ("not_placed", "refused"))
        assert float(detections[0]["value"][1]) >= placed
        names = set(prometheus.api("label/__name__/values"))
        assert {
            "fillguard_fill_detections_total",
            "fillguard_fill_detection_seconds_bucket",
            "fillguard_broker_requests_total",
            "fillguard_position_syncs_total",
            "fillguard_stream_events_total",
            "fillguard_unresolved_trades",
            "fillguard_fill_detection_engine_enabled",
        } <= names
    assert prometheus.process.poll() is not None  # stopped
