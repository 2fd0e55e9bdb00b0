"""``fillguard demo``: trades through SmartOrderExecutor on the embedded simulator."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any

import click

from fillguard.cli_trading import POSITIVE_SECONDS
from fillguard.metrics_cli import metrics_options, metrics_session

__all__ = ["demo_command"]


@click.command("demo")
@click.option(
    "--orders", type=click.IntRange(1, 10_000), default=60, show_default=True, help="Trades to run."
)
@click.option(
    "--faults", default="rough", show_default=True, help="Fault profile: calm, rough or hostile."
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of the simulator and the trade plan.",
)
@click.option(
    "--symbols",
    type=click.IntRange(1, 8),
    default=6,
    show_default=True,
    help="Symbols traded in parallel.",
)
@click.option(
    "--timeout",
    type=POSITIVE_SECONDS,
    default=4.0,
    show_default=True,
    help="Fill timeout per order, seconds.",
)
@click.option(
    "--rate-limit",
    type=click.IntRange(min=0),
    default=200,
    show_default=True,
    help="REST requests per minute: the simulator's limit and fillguard's budget (0: off).",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Also write a self-contained HTML report (histogram, outcomes, request mix) here.",
)
@click.option("--legacy", is_flag=True, help="Use the legacy polling loop instead of the engine.")
@click.option("--no-progress", is_flag=True, help="No progress bar (for logs and CI).")
@metrics_options
def demo_command(
    orders: int,
    faults: str,
    seed: int,
    symbols: int,
    timeout: float,
    rate_limit: int,
    report_path: str | None,
    legacy: bool,
    no_progress: bool,
    metrics_port: int | None,
    metrics_linger: float,
) -> None:
    """Run trades through SmartOrderExecutor on the embedded simulator and check the ledger."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from fillguard.demo import DemoOptions, run_demo
    from fillguard.demo_summary import render_report, write_html_report
    from fillguard.sim.faults import profile_from

    try:
        profile_from(faults)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--faults") from None
    console = Console()
    options = DemoOptions(
        orders=orders,
        faults=faults,
        seed=seed,
        symbols=symbols,
        timeout_seconds=timeout,
        rate_limit=rate_limit or None,
    )
    if legacy:
        options = replace(options, use_fill_detection_engine=False)
    console.print(
        f"fillguard demo: {orders} trades on the embedded simulator, faults={faults}, seed={seed}, "
        f"fill detection={'legacy loop' if legacy else 'engine (stream first)'}, "
        f"rate limit={f'{rate_limit}/min' if rate_limit else 'off'}"
    )
    progress = Progress(
        TextColumn("[bold]trades"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=console,
        disable=no_progress,
    )
    with metrics_session(metrics_port, metrics_linger) as observer:
        with progress:
            task = progress.add_task("", total=orders)

            def on_trade(_result: Any, counts: Any) -> None:
                live = "  ".join(f"{k}={v}" for k, v in sorted(counts.items()))
                progress.update(task, advance=1, description=live)

            report = run_demo(options, on_trade=on_trade, observer=observer)
        render_report(report, console)
        if report_path is not None:
            console.print(f"report written to {write_html_report(report, report_path)}")
    sys.exit(0 if report.ok else 1)
