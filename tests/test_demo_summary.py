"""The demo's summary: the terminal histogram next to the percentiles, and ``--report FILE.html``
whose figures must be the run's own (checked against its DemoReport)."""

from __future__ import annotations

import re
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from fillguard.cli import main
from fillguard.demo import DemoOptions, DemoReport, TradeCheck, run_demo
from fillguard.demo_summary import (
    PERCENTILES,
    demo_html,
    percentile,
    render_report,
    write_html_report,
)
from tests.test_report import Page, parse


def page_of(path: Path) -> Page:
    text = path.read_text(encoding="utf-8")
    assert "<script" not in text.lower()
    assert not re.search(r"(src|href)\s*=\s*[\"']?https?:", text)  # nothing loaded from afar
    return parse(text)


def table(page: Page, css: str) -> dict[str, list[str]]:
    """A table's body rows by first cell (header and total rows left out)."""
    rows = page.tables[css]
    return {r[0]: r[1:] for r in rows[1:] if r and r[0] != "total"}


def ms(text: str) -> float:
    match = re.fullmatch(r"([0-9.]+) ms", text)
    assert match, text
    return float(match.group(1)) / 1000


def check_page_against(report: DemoReport, path: Path) -> None:
    """Every figure the page shows is the report's."""
    page = page_of(path)
    figures = {row[0]: row[1] for row in page.tables["figures"]}  # no header row
    assert int(figures["trades"]) == len(report.checks)
    assert int(figures["results that match the ledger"]) == report.count("ok")
    assert int(figures["fills missed"]) == report.count("missed")
    assert int(figures["REST requests (at the simulator)"]) == report.requests
    assert int(figures["429s from the rate limit"]) == report.rate_limited
    assert int(figures["stream events received"]) == report.stream_events
    for pct in PERCENTILES:
        expected = percentile(report.latencies, pct)
        assert expected is not None
        assert ms(figures[f"detection latency p{pct}"]) == pytest.approx(expected, abs=6e-5)
    outcomes = {name: int(v[0]) for name, v in table(page, "outcomes").items()}
    assert outcomes == dict(report.outcomes)
    mix = {name: int(v[0]) for name, v in table(page, "requests").items()}
    assert mix == dict(report.request_mix)
    assert sum(mix.values()) == report.requests
    buckets = [int(v[1]) for v in table(page, "latency").values()]
    assert sum(buckets) == len(report.latencies)
    svg_numbers = [t for t in page.svg_texts if t.isdigit()]
    for count in (*outcomes.values(), *mix.values()):
        assert str(count) in svg_numbers  # drawn as well as written


def a_report() -> DemoReport:
    report = DemoReport(DemoOptions(orders=5, faults="calm"))
    report.outcomes = Counter({"filled": 4, "timeout": 1})
    report.checks = [TradeCheck(f"c{i}", "ok") for i in range(5)]
    report.latencies = [0.0021, 0.0034, 0.0125, 0.48]
    report.requests = 11
    report.request_mix = Counter({"submit_order": 5, "get_order": 4, "get_position": 2})
    report.stream_events = 17
    report.slippages = [Decimal("0.01")]
    report.elapsed_seconds = 3.2
    return report


def test_the_html_page_shows_the_reports_own_figures(tmp_path: Path) -> None:
    report = a_report()
    check_page_against(report, write_html_report(report, tmp_path / "r.html"))
    assert "faults=calm" in demo_html(report)


def test_the_terminal_summary_has_the_histogram_next_to_the_percentiles() -> None:
    report = a_report()
    console = Console(record=True, width=120, color_system=None)
    render_report(report, console)
    text = console.export_text()
    lines = [line for line in text.splitlines() if re.search(r"p(50|90|99)\s+[0-9.]+ ms", line)]
    assert len(lines) == 3
    # The percentile and a histogram row share a line: the picture sits next to the numbers.
    assert all(re.search(r"ms\s+-\s+[0-9.]+ [mµ]?s\s*│", line) for line in lines[:2])
    counts = [int(m.group(1)) for m in re.finditer(r"│[ ▏▎▍▌▋▊▉█]*│\s+(\d+)", text)]
    assert sum(counts) == len(report.latencies)
    for label, value in (
        ("stream events received", "17"),
        ("429s from the rate limit (must be 0)", "0"),
        ("REST requests per trade (all, counted at the simulator)", "2.20"),
    ):
        assert re.search(rf"{re.escape(label)}\s*│\s*{re.escape(value)}\s*│", text), label


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_demo_report_file_matches_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``fillguard demo --report``: the page written holds the run's figures."""
    seen: list[DemoReport] = []

    def keep(options: DemoOptions, **kwargs: object) -> DemoReport:
        report = run_demo(options, **kwargs)  # type: ignore[arg-type]
        seen.append(report)
        return report

    monkeypatch.setattr("fillguard.demo.run_demo", keep)
    path = tmp_path / "demo.html"
    result = CliRunner().invoke(
        main,
        ["demo", "--orders", "10", "--faults", "calm", "--no-progress", "--report", str(path)],
        env={"COLUMNS": "120"},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    [report] = seen
    assert report.options.limit == 200  # the limit is on by default
    assert report.rate_limited == 0
    assert report.stream_events > 0  # stream first
    assert f"report written to {path}" in result.output.replace("\n", "")
    check_page_against(report, path)
