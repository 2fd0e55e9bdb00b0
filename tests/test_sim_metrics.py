"""The simulator's own metrics: GET /metrics over real HTTP against run_simulator, and the counter
rules of SimMetrics."""

from __future__ import annotations

import json
from functools import partial

import pytest
import requests
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.requests import MarketOrderRequest
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from fillguard.sim import SimServer, run_simulator
from fillguard.sim.api import ApiResponse
from fillguard.sim.metrics import SimMetrics
from tests import sim_support

wait_for = partial(sim_support.wait_for, timeout=5.0)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(sim: SimServer) -> Samples:
    """GET /metrics without credentials; every sample by (name, sorted labels)."""
    response = requests.get(f"{sim.base_url}/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def get(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.integration
def test_metrics_route_counts_requests_orders_and_faults(sim: SimServer) -> None:
    before = scrape(sim)
    client = sim.trading_client()
    order = client.submit_order(
        MarketOrderRequest(symbol="AAPL", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.DAY)
    )
    client.get_order_by_id(order.id)
    sim.ledger()
    requests.get(f"{sim.base_url}/v2/account", timeout=5)  # no credentials: 401
    sim.set_faults({"http_error_rate": 1.0})
    for _ in range(3):
        requests.get(f"{sim.base_url}/v2/orders/{order.id}", headers=_auth(sim), timeout=5)
    sim.set_faults("calm")
    after = scrape(sim)

    def delta(name: str, **labels: str) -> float:
        return get(after, name, **labels) - get(before, name, **labels)

    assert delta("fillguard_sim_requests_total", endpoint="submit_order", status="200") == 1
    assert delta("fillguard_sim_requests_total", endpoint="get_order", status="200") == 1
    assert delta("fillguard_sim_requests_total", endpoint="account", status="401") == 1
    assert delta("fillguard_sim_requests_total", endpoint="sim_control", status="200") == 1  # ledger
    errors = sum(
        delta("fillguard_sim_requests_total", endpoint="get_order", status=str(code))
        for code in (500, 502, 503, 504)
    )
    assert errors == 3
    assert delta("fillguard_sim_faults_total", knob="http_error") == 3
    assert delta("fillguard_sim_orders_submitted_total") == 1
    assert get(after, "fillguard_sim_handler_errors_total") == 0
    # /metrics itself is not an API request.
    assert not any(labels and dict(labels).get("endpoint") == "metrics" for _, labels in after)


@pytest.mark.integration
def test_metrics_route_counts_stream_connections(sim: SimServer) -> None:
    before = scrape(sim)
    with connect(sim.stream_url) as ws:
        ws.send(
            json.dumps(
                {
                    "action": "authenticate",
                    "data": {"key_id": sim.key_id, "secret_key": sim.secret_key},
                }
            )
        )
        assert json.loads(ws.recv(timeout=5))["data"]["status"] == "authorized"
        during = scrape(sim)
        assert (
            get(during, "fillguard_sim_stream_connections_total")
            - get(before, "fillguard_sim_stream_connections_total")
            == 1
        )
        assert get(during, "fillguard_sim_stream_connections_open") >= 1
    open_before = get(before, "fillguard_sim_stream_connections_open")
    wait_for(lambda: get(scrape(sim), "fillguard_sim_stream_connections_open") == open_before)


@pytest.mark.integration
def test_a_fresh_simulator_serves_metrics_with_no_auth_and_only_get() -> None:
    with run_simulator(port=0, faults="calm", seed=3, rate_limit=None) as sim:
        samples = scrape(sim)
        assert get(samples, "fillguard_sim_orders_submitted_total") == 0
        assert get(samples, "fillguard_sim_stream_connections_total") == 0
        # Other methods on /metrics go to the API, which does not know the path.
        response = requests.post(f"{sim.base_url}/metrics", headers=_auth(sim), timeout=5)
        assert response.status_code == 404


def _auth(sim: SimServer) -> dict[str, str]:
    return {"APCA-API-KEY-ID": sim.key_id, "APCA-API-SECRET-KEY": sim.secret_key}


# --------------------------------------------------------------------------- SimMetrics rules


class Stats:
    def __init__(self, **fields: object) -> None:
        self.closed = False
        self.dropped = self.duplicated = self.delayed = 0
        self.disconnected = False
        self.__dict__.update(fields)


def values(m: SimMetrics) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in m.registry.collect()
        for s in family.samples
    }


def test_served_counts_by_bounded_endpoint_status_and_knob() -> None:
    m = SimMetrics()
    m.served("GET", "/v2/orders/1234-abcd", ApiResponse(200))
    m.served("GET", "/v2/orders/5678-efgh?nested=true", ApiResponse(200))
    m.served("POST", "/v2/orders", ApiResponse(0, fault="reset", fault_name="reset"))
    m.served("POST", "/v2/orders", ApiResponse(504, fault_name="lost_submit"))  # applied
    m.served("POST", "/v2/orders", ApiResponse(200))
    m.served("POST", "/v2/orders", ApiResponse(422))
    m.served("GET", "/v2/orders", ApiResponse(429, fault_name="rate_limit_burst"))
    m.served("GET", "/v2/clock", ApiResponse(200, fault_name="a knob from the future"))
    m.served("POST", "/_sim/reset", ApiResponse(200))
    v = values(m)
    assert get(v, "fillguard_sim_requests_total", endpoint="get_order", status="200") == 2
    assert get(v, "fillguard_sim_requests_total", endpoint="submit_order", status="reset") == 1
    assert get(v, "fillguard_sim_requests_total", endpoint="submit_order", status="504") == 1
    assert get(v, "fillguard_sim_requests_total", endpoint="other", status="200") == 1
    assert get(v, "fillguard_sim_requests_total", endpoint="sim_control", status="200") == 1
    assert get(v, "fillguard_sim_faults_total", knob="reset") == 1
    assert get(v, "fillguard_sim_faults_total", knob="lost_submit") == 1
    assert get(v, "fillguard_sim_faults_total", knob="rate_limit_burst") == 1
    assert get(v, "fillguard_sim_faults_total", knob="other") == 1
    assert get(v, "fillguard_sim_orders_submitted_total") == 2  # the 200 and the lost one
    labels = {dict(k[1]).get("endpoint") for k in v if k[0] == "fillguard_sim_requests_total"}
    assert not any(label and "1234" in label for label in labels)


def test_stream_figures_are_read_from_the_hub_stats_when_scraped() -> None:
    stats = [Stats(dropped=2, delayed=1, closed=True), Stats(duplicated=3, disconnected=True)]
    errors = [0]
    m = SimMetrics(lambda: stats, lambda: errors[0])
    v = values(m)
    assert get(v, "fillguard_sim_stream_connections_total") == 2
    assert get(v, "fillguard_sim_stream_connections_open") == 1
    assert get(v, "fillguard_sim_faults_total", knob="stream_drop") == 2
    assert get(v, "fillguard_sim_faults_total", knob="stream_duplicate") == 3
    assert get(v, "fillguard_sim_faults_total", knob="stream_delay") == 1
    assert get(v, "fillguard_sim_faults_total", knob="stream_disconnect") == 1
    stats.append(Stats())
    errors[0] = 2
    v = values(m)
    assert get(v, "fillguard_sim_stream_connections_total") == 3
    assert get(v, "fillguard_sim_stream_connections_open") == 2
    assert get(v, "fillguard_sim_handler_errors_total") == 2


def test_429s_are_counted_by_cause_window_or_burst() -> None:
    m = SimMetrics()
    m.served("GET", "/v2/orders/1", ApiResponse(429))  # the window's budget was spent
    m.served("GET", "/v2/orders", ApiResponse(429))
    m.served("POST", "/v2/orders", ApiResponse(429, fault_name="rate_limit_burst"))
    m.served("GET", "/v2/orders/1", ApiResponse(200))
    v = values(m)
    assert get(v, "fillguard_sim_rate_limited_total", cause="window") == 2
    assert get(v, "fillguard_sim_rate_limited_total", cause="burst") == 1
    assert m.rate_limited() == {"window": 2, "burst": 1}


def test_the_api_counts_the_429s_of_its_window_apart_from_injected_bursts() -> None:
    sim = sim_support.make_sim(rate_limit=3)
    answers = [sim.handle("GET", "/v2/account").status for _ in range(5)]
    assert answers == [200, 200, 200, 429, 429]
    assert (sim.api.rate_limited_total, sim.api.burst_429s_total) == (2, 0)
    sim.api.rate_limit = None
    sim.broker.set_faults(sim.broker.faults.with_(rate_limit_burst_rate=1.0))
    assert sim.handle("GET", "/v2/account").status == 429
    assert (sim.api.rate_limited_total, sim.api.burst_429s_total) == (2, 1)
