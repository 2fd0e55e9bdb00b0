"""The demo's summary: rich tables with a latency histogram, and the ``--report`` HTML page.

:func:`render_report` prints the outcome counts, the checks against the ledger, the request
and stream figures, and the detection latency percentiles next to a terminal histogram
(:func:`fillguard.report.terminal_histogram`). :func:`demo_html` turns the same
:class:`~fillguard.demo.DemoReport` into a self-contained page (:func:`fillguard.report.html_report`:
inline SVG, no script, no network) with the histogram, the outcome counts and the request mix;
:func:`summary_figures` is the headline table both share.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fillguard.report import ReportSummary, html_report, terminal_histogram

if TYPE_CHECKING:
    from fillguard.demo import DemoReport

__all__ = [
    "PERCENTILES",
    "demo_html",
    "format_ms",
    "mean",
    "percentile",
    "render_report",
    "summary_figures",
    "write_html_report",
]

#: The latency percentiles the summary shows.
PERCENTILES = (50, 90, 99)
_BAD = frozenset({"missed", "false_fill", "ghost", "unresolved"})


def percentile(values: list[float], pct: float) -> float | None:
    """The ``pct`` percentile (nearest rank), or None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def mean(values: list[Decimal]) -> Decimal | None:
    """Arithmetic mean of Decimals to 4 places, or None for no values."""
    if not values:
        return None
    return (sum(values, Decimal(0)) / len(values)).quantize(Decimal("0.0001"))


def format_ms(seconds: float | None) -> str:
    """Seconds as milliseconds to 0.1 ms (``-`` for none)."""
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def _per_trade(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _rate_limit(report: DemoReport) -> str:
    limit = report.options.limit
    return "off" if limit is None else f"{limit}/min (simulator and budget)"


def summary_figures(report: DemoReport) -> dict[str, object]:
    """The headline figures, in display order (also the HTML page's summary table)."""
    options = report.options
    figures: dict[str, object] = {
        "trades": len(report.checks),
        "fault profile": options.faults_name,
        "seed": options.seed,
        "rate limit": _rate_limit(report),
        "results that match the ledger": report.count("ok"),
        "fills missed": report.count("missed"),
        "fills falsely claimed": report.count("false_fill"),
        "UNKNOWN unresolved at the end": report.count("unresolved"),
    }
    for pct in PERCENTILES:
        figures[f"detection latency p{pct}"] = format_ms(percentile(report.latencies, pct))
    figures.update(
        {
            "REST requests (at the simulator)": report.requests,
            "REST requests per trade": _per_trade(report.requests_per_trade),
            "429s from the rate limit": report.rate_limited,
            "429s injected by the fault profile": report.burst_429s,
            "stream events received": report.stream_events,
            "stream reconnects": report.reconnects,
            "gaps repaired by a sweep": report.gaps_repaired,
            "sweeps": report.sweeps,
            "wall time": f"{report.elapsed_seconds:.1f} s",
            "verdict": "OK" if report.ok else "FAILED",
        }
    )
    return figures


def demo_html(report: DemoReport) -> str:
    """The demo's self-contained HTML page."""
    summary: ReportSummary = {
        "title": f"fillguard demo: {len(report.checks)} trades, faults={report.options.faults_name}",
        "latencies_seconds": list(report.latencies),
        "outcomes": dict(sorted(report.outcomes.items())),
        "request_mix": dict(sorted(report.request_mix.items(), key=lambda kv: (-kv[1], kv[0]))),
        "figures": summary_figures(report),
    }
    return html_report(summary)


def write_html_report(report: DemoReport, path: str | Path) -> Path:
    """Write :func:`demo_html` to ``path`` (UTF-8); returns the path."""
    target = Path(path)
    target.write_text(demo_html(report), encoding="utf-8")
    return target


def _latency_panel(report: DemoReport) -> Any:
    from rich.table import Table
    from rich.text import Text

    pcts = Table(show_header=False, box=None, padding=(0, 1))
    pcts.add_column(style="bold")
    pcts.add_column(justify="right")
    pcts.add_row("fills timed", str(len(report.latencies)))
    for pct in PERCENTILES:
        pcts.add_row(f"p{pct}", format_ms(percentile(report.latencies, pct)))
    pcts.add_row("max", format_ms(max(report.latencies, default=None)))
    grid = Table.grid(padding=(0, 4))
    grid.add_column()
    grid.add_column()
    grid.add_row(pcts, Text(terminal_histogram(report.latencies, width=20)))
    outer = Table(title="Fill detection latency (ledger execution to result)", show_header=False)
    outer.add_column()
    outer.add_row(grid)
    return outer


def _traffic_table(report: DemoReport) -> Any:
    from rich.table import Table

    table = Table(title="Requests and the stream", show_header=True)
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("rate limit", _rate_limit(report))
    table.add_row(
        "REST requests per trade (all, counted at the simulator)",
        _per_trade(report.requests_per_trade),
    )
    mix = ", ".join(
        f"{k} {v}" for k, v in sorted(report.request_mix.items(), key=lambda kv: -kv[1])
    )
    table.add_row("request mix", mix or "-")
    n = report.rate_limited
    table.add_row("429s from the rate limit (must be 0)", f"[red]{n}[/red]" if n else "0")
    table.add_row("429s injected by the fault profile (bursts)", str(report.burst_429s))
    table.add_row("stream events received", str(report.stream_events))
    table.add_row("stream reconnects", str(report.reconnects))
    table.add_row("gaps repaired by a sweep (each connect opens one)", str(report.gaps_repaired))
    table.add_row("sweeps (batched order reads)", str(report.sweeps))
    return table


def render_report(report: DemoReport, console: Any) -> None:
    """Print the summary tables with rich."""
    from rich.table import Table

    outcomes = Table(title="Outcomes", show_header=True)
    outcomes.add_column("status")
    outcomes.add_column("trades", justify="right")
    for name, n in sorted(report.outcomes.items()):
        outcomes.add_row(name, str(n))
    console.print(outcomes)

    truth = Table(title="Against the simulator's ledger", show_header=True)
    truth.add_column("check")
    truth.add_column("value", justify="right")
    for verdict, label in (
        ("ok", "results that match the ledger"),
        ("missed", "fills missed (must be 0)"),
        ("false_fill", "fills falsely claimed (must be 0)"),
        ("ghost", "orders reported not placed that exist (must be 0)"),
        ("unresolved", "UNKNOWN still unresolved at the end (must be 0)"),
        ("refused", "refused by the broker (e.g. buying power)"),
        ("not_placed", "not placed (every attempt unapplied, e.g. 429s)"),
    ):
        n = report.count(verdict)
        truth.add_row(label, f"[red]{n}[/red]" if verdict in _BAD and n else str(n))
    truth.add_row("UNKNOWN at first, resolved by a later look-up", str(report.resolved_later))
    truth.add_row("duplicate orders per client_order_id (must be 0)", str(report.duplicates))
    truth.add_row("orders at the broker we never asked for (must be 0)", str(report.stray_orders))
    if report.outside_orders:
        truth.add_row("orders another client placed (outside_trade)", str(report.outside_orders))
    if report.options.journal:
        missing = report.journal_missing
        truth.add_row(
            "journal: trades recorded / unfinished / our orders it lacks (must be 0)",
            f"{report.journal_trades} / {report.journal_unfinished} / "
            + (f"[red]{missing}[/red]" if missing else "0"),
        )
    truth.add_row("fill detection latency p50", format_ms(percentile(report.latencies, 50)))
    truth.add_row("fill detection latency p99", format_ms(percentile(report.latencies, 99)))
    truth.add_row("retries (total)", str(report.retries))
    avg_slip = mean(report.slippages)
    truth.add_row(
        "slippage mean / max (%)",
        "-" if avg_slip is None else f"{avg_slip} / {max(report.slippages)}",
    )
    truth.add_row(
        "position checks consistent / mismatch (synced) / unverified",
        f"{report.consistency['consistent']} / {report.consistency['mismatch']} / "
        f"{report.consistency['unverified']}",
    )
    if report.final_checks:
        truth.add_row(
            "final position checks",
            ", ".join(f"{k} {v}" for k, v in sorted(report.final_checks.items())),
        )
    truth.add_row(
        "books equal to the broker at the end",
        "yes" if not report.book_differences else "; ".join(report.book_differences),
    )
    truth.add_row("wall time", f"{report.elapsed_seconds:.1f} s")
    console.print(truth)
    console.print(_latency_panel(report))
    console.print(_traffic_table(report))
    for check in report.checks:
        if check.verdict in _BAD:
            console.print(f"[red]{check.verdict}[/red] {check.client_order_id}: {check.detail}")
    for diff in report.book_differences:
        console.print(f"[red]book differs[/red] {diff}")
    console.print(
        "[green]OK: every outcome agrees with the ledger[/green]"
        if report.ok
        else "[red]FAILED: outcomes or books disagree with the ledger[/red]"
    )
