"""Shared pieces of the operations tests: PromQL metric names, the promtool and Prometheus
binaries, and a real Prometheus server on loopback for one test."""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from fillguard.ops import alert_rules_text

REPO = Path(__file__).resolve().parent.parent
PROMTOOL_TESTS = REPO / "tests" / "promtool"

# --------------------------------------------------------------------------- PromQL names

#: PromQL functions and aggregations (Prometheus 2.x), plus Grafana's ``label_values``.
PROMQL_FUNCTIONS = frozenset(
    ["abs", "absent", "absent_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "delta", "deriv", "exp", "floor", "histogram_count", "histogram_sum", "histogram_fraction", "histogram_quantile", "holt_winters", "hour", "idelta", "increase", "irate", "label_join", "label_replace", "ln", "log2", "log10", "minute", "month", "predict_linear", "rate", "resets", "round", "scalar", "sgn", "sort", "sort_desc", "sqrt", "time", "timestamp", "vector", "year", "avg_over_time", "min_over_time", "max_over_time", "sum_over_time", "count_over_time", "quantile_over_time", "stddev_over_time", "stdvar_over_time", "last_over_time", "present_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh", "cos", "cosh", "sin", "sinh", "tan", "tanh", "deg", "pi", "rad", "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk", "quantile", "label_values"]
)
_KEYWORDS = frozenset(
    ["and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "inf", "nan", "atan2"]
)
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"(?<![\w.$])[a-zA-Z_:][\w:]*")
_LABEL_VALUES = re.compile(r"label_values\(\s*([a-zA-Z_:][\w:]*)\s*,[^)]*\)")


def promql_metric_names(expr: str) -> set[str]:
    """The metric names a PromQL (or Grafana ``label_values``) expression selects.

    Raises ValueError for a function name this parser does not know, so a typo in a function
    cannot hide a metric name.
    """
    text = _LABEL_VALUES.sub(r"\1", expr)
    text = _STRINGS.sub('""', text)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = _GROUPING.sub(" ", text)
    names: set[str] = set()
    for match in _IDENT.finditer(text):
        word = match.group(0)
        rest = text[match.end() :].lstrip()
        if rest.startswith("("):
            if word not in PROMQL_FUNCTIONS:
                raise ValueError(f"unknown PromQL function {word!r} in {expr!r}")
            continue
        if word in _KEYWORDS:
            continue
        names.add(word)
    return names


# --------------------------------------------------------------------------- rules


def rule_groups(text: str | None = None) -> list[dict[str, Any]]:
    """The shipped rule file's groups, parsed."""
    data = yaml.safe_load(text if text is not None else alert_rules_text())
    groups: list[dict[str, Any]] = data["groups"]
    return groups


def alert_rules(text: str | None = None) -> list[dict[str, Any]]:
    """Every alerting rule of the shipped rule file."""
    return [rule for group in rule_groups(text) for rule in group["rules"] if "alert" in rule]


# --------------------------------------------------------------------------- binaries


def binary_or_skip(name: str) -> str:
    """The path of ``name``, or skip the test saying why it is missing and how to get it."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(
            f"{name} not found: not on PATH (Debian: `apt-get install prometheus`, or "
            "`python3 dev.py setup` as root on Debian installs it)"
        )
    return path


def free_port() -> int:
    """A port free on 127.0.0.1 now (for a program that must be told its port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --------------------------------------------------------------------------- Prometheus


@dataclass
class PrometheusServer:
    """A running Prometheus: ``url`` and small helpers over its HTTP API."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def api(self, path: str, **params: str) -> Any:
        """``GET /api/v1/<path>``'s ``data``; raises on an error answer."""
        response = requests.get(f"{self.url}/api/v1/{path}", params=params, timeout=5)
        response.raise_for_status()
        body = response.json()
        if body.get("status") != "success":
            raise RuntimeError(f"Prometheus answered {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result vector."""
        result: list[dict[str, Any]] = self.api("query", query=expr)["result"]
        return result

    def alerts(self) -> list[dict[str, Any]]:
        """Active alerts (pending or firing)."""
        alerts: list[dict[str, Any]] = self.api("alerts")["alerts"]
        return alerts

    def log(self) -> str:
        """What the server printed so far (for failure messages)."""
        return self.log_path.read_text(errors="replace")[-4000:]


def wait_until(
    predicate: Callable[[], Any], *, timeout: float, what: str, on_fail: Callable[[], str] = str
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(requests.RequestException):
            value = predicate()
            if value:
                return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}\n{on_fail()}")
        time.sleep(0.25)


@contextlib.contextmanager
def run_prometheus(
    workdir: Path,
    targets: Sequence[str],
    *,
    rules_text: str | None = None,
    job: str = "fillguard",
    interval: str = "1s",
    start_timeout: float = 30.0,
) -> Iterator[PrometheusServer]:
    """Prometheus on 127.0.0.1 (free port, storage under ``workdir``), scraping ``targets``
    (``host:port``) every ``interval`` and evaluating the shipped rules as often.

    The process is stopped (terminate, then kill) on exit.
    """
    binary = binary_or_skip("prometheus")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "alerts.yml").write_text(rules_text if rules_text is not None else alert_rules_text())
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": ["alerts.yml"],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": list(targets)}]},
        ],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log_path = workdir / "prometheus.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    server = PrometheusServer(f"http://127.0.0.1:{port}", process, log_path)
    try:

        def ready() -> bool:
            if process.poll() is not None:
                pytest.fail(f"prometheus exited with {process.returncode}:\n{server.log()}")
            return requests.get(f"{server.url}/-/ready", timeout=2).status_code == 200

        wait_until(ready, timeout=start_timeout, what="Prometheus to be ready", on_fail=server.log)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
