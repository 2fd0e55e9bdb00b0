"""The shipped alert rules and dashboard: promtool-checked and unit-tested, and every selector
names a series fillguard really exports."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from prometheus_client import generate_latest

from fillguard.cli import main
from fillguard.metrics import PrometheusMetrics, exported_names
from fillguard.ops import RUNBOOK_PREFIX, alert_rules_text, dashboard_json, dashboard_text
from tests.ops_support import (
    PROMTOOL_TESTS,
    alert_rules,
    binary_or_skip,
    promql_metric_names,
    rule_groups,
)

REQUIRED_ALERTS = {
    "FillguardFillDetectionRateLow",
    "FillguardTimeoutRateHigh",
    "FillguardPositionMismatch",
    "FillguardApiErrorRateHigh",
    "FillguardUnresolvedTrades",
}


@pytest.fixture(scope="module")
def exported() -> frozenset[str]:
    return exported_names(PrometheusMetrics(symbol_labels=True).registry)


def promtool_dir(tmp_path: Path) -> Path:
    """The shipped rule text as alerts.yml beside the promtool unit test files."""
    (tmp_path / "alerts.yml").write_text(alert_rules_text())
    for test_file in PROMTOOL_TESTS.glob("*.yml"):
        (tmp_path / test_file.name).write_text(test_file.read_text())
    return tmp_path


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


# --------------------------------------------------------------------------- promtool


def test_promtool_check_rules_accepts_the_shipped_file(tmp_path: Path) -> None:
    promtool = binary_or_skip("promtool")
    result = run([promtool, "check", "rules", "alerts.yml"], promtool_dir(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_promtool_unit_tests_pass(tmp_path: Path) -> None:
    promtool = binary_or_skip("promtool")
    files = sorted(p.name for p in PROMTOOL_TESTS.glob("*.yml"))
    assert files, "no promtool test files"
    result = run([promtool, "test", "rules", *files], promtool_dir(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_catch_a_broken_threshold(tmp_path: Path) -> None:
    """The unit tests are not vacuous: loosening a threshold makes them fail."""
    promtool = binary_or_skip("promtool")
    directory = promtool_dir(tmp_path)
    text = alert_rules_text()
    assert ") < 0.95" in text
    (directory / "alerts.yml").write_text(text.replace(") < 0.95", ") < 0.5"))
    result = run([promtool, "test", "rules", "alerts_test.yml"], directory)
    assert result.returncode != 0
    assert "FillguardFillDetectionRateLow" in result.stdout + result.stderr


def promtool_cases() -> list[dict[str, Any]]:
    cases = []
    for path in PROMTOOL_TESTS.glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["tests"]:
            cases.extend(group.get("alert_rule_test", []))
    return cases


def test_every_alert_has_a_firing_and_a_silent_promtool_case() -> None:
    cases = promtool_cases()
    for rule in alert_rules():
        name = rule["alert"]
        mine = [c for c in cases if c["alertname"] == name]
        assert any(c.get("exp_alerts") for c in mine), f"{name}: no case where it fires"
        assert any(not c.get("exp_alerts") for c in mine), f"{name}: no case where it stays silent"


# --------------------------------------------------------------------------- the rules' shape


def test_the_required_alerts_are_shipped_with_for_severity_and_runbook() -> None:
    rules = alert_rules()
    assert {r["alert"] for r in rules} >= REQUIRED_ALERTS
    for rule in rules:
        name = rule["alert"]
        assert re.fullmatch(r"Fillguard[A-Z][A-Za-z]+", name), f"{name}: CamelCase with a prefix"
        assert re.fullmatch(r"\d+[smh]", str(rule.get("for", ""))), f"{name}: needs a for: duration"
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        url = rule["annotations"]["runbook_url"]
        assert url == f"{RUNBOOK_PREFIX}#{name.lower()}", f"{name}: runbook_url {url}"
        assert rule["annotations"].get("summary"), name


def test_runbook_base_rewrites_every_link_and_nothing_else() -> None:
    text = alert_rules_text("https://wiki.example/fillguard/ops.html")
    rules = alert_rules(text)
    for rule in rules:
        assert rule["annotations"]["runbook_url"] == (
            f"https://wiki.example/fillguard/ops.html#{rule['alert'].lower()}"
        )
    assert [r["expr"] for r in rules] == [r["expr"] for r in alert_rules()]
    for bad in ("", 'x" injected: "y', "a\nb", "https://x/#y"):
        with pytest.raises(ValueError, match="runbook_base"):
            alert_rules_text(bad)


def test_every_rule_selector_names_an_exported_metric(exported: frozenset[str]) -> None:
    for group in rule_groups():
        for rule in group["rules"]:
            names = promql_metric_names(rule["expr"])
            assert names, f"{rule.get('alert')}: no metric in {rule['expr']}"
            unknown = names - exported
            assert not unknown, f"{rule.get('alert')} selects {unknown}, not exported"


# --------------------------------------------------------------------------- dashboard


def dashboard_queries(dashboard: dict[str, Any]) -> list[str]:
    queries: list[str] = []
    for panel in dashboard["panels"]:
        queries.extend(t["expr"] for t in panel.get("targets", []))
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        queries.append(query["query"] if isinstance(query, dict) else query)
    return queries


def test_every_dashboard_query_names_only_exported_metrics(exported: frozenset[str]) -> None:
    queries = dashboard_queries(dashboard_json())
    assert len(queries) > 20
    seen: set[str] = set()
    for query in queries:
        names = promql_metric_names(query)
        assert names, f"no metric in {query}"
        assert not names - exported, f"{query} selects {names - exported}"
        seen |= names
    # The panels the issue asks for are there.
    for required in (
        "fillguard_fill_detections_total",
        "fillguard_fill_detection_seconds_bucket",
        "fillguard_submit_outcomes_total",
        "fillguard_broker_requests_total",
        "fillguard_position_checks_total",
        "fillguard_unresolved_trades",
        "fillguard_stream_connected",
        "fillguard_budget_wait_seconds_bucket",
        "fillguard_budget_remaining",
    ):
        assert required in seen, f"no panel shows {required}"
    assert any('code="429"' in q for q in queries), "no 429 panel"
    assert any("histogram_quantile(0.99" in q for q in queries), "no latency percentile panel"


def test_dashboard_is_importable_json_with_unique_ids_and_no_overlapping_panels() -> None:
    dashboard = json.loads(dashboard_text())
    assert dashboard["title"] == "fillguard"
    assert dashboard["uid"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}"


# --------------------------------------------------------------------------- the parser itself


def test_promql_metric_names_sees_metrics_and_nothing_else() -> None:
    expr = (
        'sum by (job) (rate(a_total{result=~"x|y", job="$job"}[5m])) / '
        'ignoring(code) histogram_quantile(0.9, sum by (le) (rate(b_bucket[$__rate_interval]))) '
        "and on(instance) c > 0 unless d offset 5m"
    )
    assert promql_metric_names(expr) == {"a_total", "b_bucket", "c", "d"}
    assert promql_metric_names("label_values(m_total, job)") == {"m_total"}
    with pytest.raises(ValueError, match="unknown PromQL function"):
        promql_metric_names("rat(x_total[5m])")


# --------------------------------------------------------------------------- the CLI


def test_cli_prints_the_rules_and_the_dashboard() -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["ops", "alerts"])
    assert result.exit_code == 0
    assert result.output == alert_rules_text()
    result = runner.invoke(main, ["ops", "alerts", "--runbook-base", "https://w.example/ops"])
    assert result.exit_code == 0
    assert "https://w.example/ops#fillguardpositionmismatch" in result.output
    result = runner.invoke(main, ["ops", "alerts", "--runbook-base", "bad#url"])
    assert result.exit_code == 2
    assert "--runbook-base" in result.output
    result = runner.invoke(main, ["ops", "dashboard"])
    assert result.exit_code == 0
    assert json.loads(result.output) == dashboard_json()


def test_promtool_lints_the_exposition_clean() -> None:
    """promtool's metric linter (naming, units, _total) finds nothing in what fillguard serves."""
    promtool = binary_or_skip("promtool")
    metrics = PrometheusMetrics(symbol_labels=True)
    metrics.fill_detection("filled", 0.2)
    metrics.broker_request("get_order", "200", 0.01)
    metrics.slippage(-0.002)
    metrics.budget_wait("submit", 0.1)
    metrics.journal_write("intent", 0.001)
    metrics.stream_event("fill")
    metrics.position_check_by_symbol("AAPL", "mismatch")
    text = generate_latest(metrics.registry).decode()
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""
