"""A real Prometheus (the Debian package's binary) scrapes fillguard's metrics and raises the
position mismatch alert from the shipped rules.

The scraped target is the ``mismatch_target`` fixture: an address Prometheus scrapes and a
``force_mismatch`` callable that makes the target report a position mismatch. Today it is a
``PrometheusMetrics`` served with ``serve()`` and driven by observer calls; a demo run against
the simulator with a knob that forces mismatches can take its place without touching the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fillguard.metrics import PrometheusMetrics, serve
from tests.ops_support import binary_or_skip, run_prometheus, wait_until

pytestmark = pytest.mark.integration

#: Everything below is bounded by this (seconds), Prometheus's start-up included.
BOUND_SECONDS = 30.0


@dataclass
class Target:
    """What Prometheus scrapes (``host:port``) and how to make it report a mismatch."""

    address: str
    force_mismatch: Callable[[], None]


@pytest.fixture
def mismatch_target() -> Iterator[Target]:
    """A PrometheusMetrics on loopback, reporting a normal trade flow until told otherwise."""
    metrics = PrometheusMetrics()
    metrics.fill_detection_engine_enabled(True)
    metrics.submit_outcome("placed")
    metrics.broker_request("submit_order", "200", 0.02)
    metrics.fill_detection("filled", 0.4)
    metrics.position_check("consistent")

    def force_mismatch() -> None:
        metrics.submit_outcome("placed")
        metrics.fill_detection("filled", 0.3)
        metrics.position_check("mismatch")
        metrics.position_sync()

    server = serve(0, registry=metrics)
    try:
        yield Target(f"127.0.0.1:{server.port}", force_mismatch)
    finally:
        server.stop()


def test_prometheus_scrapes_fillguard_and_raises_the_mismatch_alert(
    tmp_path: Path, mismatch_target: Target
) -> None:
    binary_or_skip("prometheus")
    with run_prometheus(tmp_path / "prometheus", [mismatch_target.address]) as prometheus:
        # Prometheus sees the target and fillguard's series, the mismatch counter at 0.
        def mismatch_series() -> list[dict[str, object]]:
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
        names = set(prometheus.api("label/__name__/values"))
        assert {
            "fillguard_fill_detections_total",
            "fillguard_fill_detection_seconds_bucket",
            "fillguard_broker_requests_total",
            "fillguard_unresolved_trades",
            "fillguard_fill_detection_engine_enabled",
        } <= names
        assert not prometheus.alerts()  # nothing fires on a healthy flow

        mismatch_target.force_mismatch()

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
        wait_until(
            lambda: [
                r for r in prometheus.query("fillguard_position_syncs_total") if r["value"][1] == "1"
            ],
            timeout=BOUND_SECONDS,
            what="the book sync to be scraped",
            on_fail=prometheus.log,
        )
    assert prometheus.process.poll() is not None  # stopped
