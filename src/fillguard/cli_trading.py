"""CLI commands that trade or watch: ``demo``, ``execute`` and ``watch``.

Keys come from ``APCA_API_KEY_ID`` / ``APCA_API_SECRET_KEY``; paper trading unless ``--live``;
``--base-url`` points at a simulator. Secrets are never printed or logged.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import replace
from typing import Any

import click

from fillguard.config import FillDetectionConfig
from fillguard.errors import FillguardError, InvalidInputError
from fillguard.logs import JsonFormatter, register_secret
from fillguard.results import FillResult

__all__ = ["demo_command", "execute_command", "watch_command"]


def _setup_logging(verbose: int, log_json: bool) -> None:
    if not verbose and not log_json:
        return
    handler = logging.StreamHandler(sys.stderr)
    if log_json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger("fillguard")
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose > 1 else logging.INFO)


def _client(live: bool, base_url: str | None) -> Any:
    key = os.environ.get("APCA_API_KEY_ID")
    secret = os.environ.get("APCA_API_SECRET_KEY")
    missing = [n for n, v in (("APCA_API_KEY_ID", key), ("APCA_API_SECRET_KEY", secret)) if not v]
    if missing:
        raise click.UsageError(
            f"missing {' and '.join(missing)}: set your Alpaca API key pair in the environment "
            "(for the simulator, see `fillguard sim`)"
        )
    register_secret(key)
    register_secret(secret)
    from alpaca.trading.client import TradingClient

    url = base_url.rstrip("/") if base_url else None
    return TradingClient(key, secret, paper=not live, url_override=url)


_POSITIVE_SECONDS = click.FloatRange(min=0, min_open=True)


def _broker_options(command: Any) -> Any:
    """The options every command that talks to Alpaca takes (endpoint, output, logging)."""
    for option in reversed(
        (
            click.option(
                "--live", is_flag=True, help="Use the live endpoint, real money (default: paper)."
            ),
            click.option(
                "--base-url",
                default=None,
                help="Point at another server, e.g. a fillguard simulator.",
            ),
            click.option("--json", "as_json", is_flag=True, help="Print the result as JSON."),
            click.option("-v", "--verbose", count=True, help="Log to stderr (-vv for debug)."),
            click.option("--log-json", is_flag=True, help="Log JSON lines to stderr."),
        )
    ):
        command = option(command)
    return command


def _connect(live: bool, base_url: str | None, verbose: int, log_json: bool) -> Any:
    """Set up logging and build the client (a clear usage error for missing keys)."""
    _setup_logging(verbose, log_json)
    return _client(live, base_url)


def _fill_payload(fill: FillResult | None) -> dict[str, Any] | None:
    return None if fill is None else fill.to_log_dict()


# ignore_unknown_options: "-1" is a (bad) quantity for our validation, not an unknown flag.
@click.command("execute", context_settings={"ignore_unknown_options": True})
@click.argument("symbol")
@click.argument("side", type=click.Choice(["buy", "sell"], case_sensitive=False))
@click.argument("qty")
@click.option("--limit", "limit_price", default=None, help="Limit price (makes it a limit order).")
@click.option(
    "--timeout",
    type=_POSITIVE_SECONDS,
    default=30.0,
    show_default=True,
    help="Seconds to wait for the fill.",
)
@click.option(
    "--tif",
    "time_in_force",
    default="day",
    show_default=True,
    type=click.Choice(["day", "gtc", "ioc", "fok"]),
    help="Time in force.",
)
@click.option("--client-order-id", default=None, help="Your idempotency key (minted if absent).")
@_broker_options
def execute_command(
    symbol: str,
    side: str,
    qty: str,
    limit_price: str | None,
    timeout: float,
    time_in_force: str,
    client_order_id: str | None,
    live: bool,
    base_url: str | None,
    as_json: bool,
    verbose: int,
    log_json: bool,
) -> None:
    """Execute one trade and report the broker's truth about it."""
    from fillguard.executor import OrderConfig, SmartOrderExecutor

    client = _connect(live, base_url, verbose, log_json)
    config = OrderConfig(fill_detection=FillDetectionConfig(timeout_seconds=timeout))
    executor = SmartOrderExecutor(client, config)
    try:
        result = executor.execute_trade(
            symbol,
            side,
            qty,
            order_type="limit" if limit_price is not None else "market",
            limit_price=limit_price,
            time_in_force=time_in_force,
            client_order_id=client_order_id,
        )
    except InvalidInputError as err:
        raise click.BadParameter(str(err), param_hint=err.field) from None
    except FillguardError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(1)
    payload = {
        "client_order_id": result.client_order_id,
        "order_id": result.order_id,
        "status": result.status.value if result.status else None,
        "filled": result.filled,
        "filled_qty": str(result.filled_qty),
        "fill_price": None if result.fill_price is None else str(result.fill_price),
        "error": result.error,
        "fill": _fill_payload(result.fill),
        "consistency": None
        if result.consistency is None
        else {
            "consistent": result.consistency.consistent,
            "expected_qty": str(result.consistency.expected_qty),
            "broker_qty": None
            if result.consistency.broker_qty is None
            else str(result.consistency.broker_qty),
            "discrepancy": result.consistency.discrepancy,
        },
    }
    _print(payload, as_json)
    sys.exit(0 if result.filled else 1)


@click.command("watch")
@click.argument("order_id")
@click.option(
    "--timeout", type=_POSITIVE_SECONDS, default=60.0, show_default=True, help="Seconds to watch."
)
@click.option(
    "--cancel-on-timeout", is_flag=True, help="Cancel the order if it is still open at the end."
)
@_broker_options
def watch_command(
    order_id: str,
    timeout: float,
    cancel_on_timeout: bool,
    live: bool,
    base_url: str | None,
    as_json: bool,
    verbose: int,
    log_json: bool,
) -> None:
    """Watch an existing order until it fills, ends or the timeout passes (no cancel by default)."""
    from fillguard.engine import FillDetectionEngine

    client = _connect(live, base_url, verbose, log_json)
    # Watching someone's order must not cancel its remainder unless asked to.
    # The id is the user's, so it exists: a 404 past a short grace means a wrong id. The final
    # check is bounded by the watch time too, so --timeout bounds the whole command.
    config = FillDetectionConfig(
        timeout_seconds=timeout,
        cancel_on_timeout=cancel_on_timeout,
        partial_fill_policy="wait",
        final_verification_seconds=max(0.5, min(10.0, timeout)),
        not_found_grace_seconds=min(1.0, timeout),
    )
    try:
        result = FillDetectionEngine(client, config).monitor_order_fill(order_id)
    except InvalidInputError as err:
        raise click.BadParameter(str(err), param_hint=err.field) from None
    except (FillguardError, ValueError) as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(1)
    _print(result.to_log_dict(), as_json)
    sys.exit(0 if result.filled else 1)


def _print(payload: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(payload, indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(show_header=False)
    for key, value in payload.items():
        text = (
            ", ".join(f"{k}={v}" for k, v in value.items() if v is not None)
            if isinstance(value, dict)
            else value
        )
        table.add_row(key, "-" if text is None else str(text))
    Console().print(table)


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
    type=_POSITIVE_SECONDS,
    default=4.0,
    show_default=True,
    help="Fill timeout per order, seconds.",
)
@click.option("--legacy", is_flag=True, help="Use the legacy polling loop instead of the engine.")
@click.option("--no-progress", is_flag=True, help="No progress bar (for logs and CI).")
def demo_command(
    orders: int,
    faults: str,
    seed: int,
    symbols: int,
    timeout: float,
    legacy: bool,
    no_progress: bool,
) -> None:
    """Run trades through SmartOrderExecutor on the embedded simulator and check the ledger."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from fillguard.demo import DemoOptions, render_report, run_demo
    from fillguard.sim.faults import profile_from

    try:
        profile_from(faults)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--faults") from None
    console = Console()
    options = DemoOptions(
        orders=orders, faults=faults, seed=seed, symbols=symbols, timeout_seconds=timeout
    )
    if legacy:
        options = replace(options, use_fill_detection_engine=False)
    console.print(
        f"fillguard demo: {orders} trades on the embedded simulator, faults={faults}, seed={seed}, "
        f"fill detection={'legacy loop' if legacy else 'engine'}"
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
    with progress:
        task = progress.add_task("", total=orders)

        def on_trade(_result: Any, counts: Any) -> None:
            live = "  ".join(f"{k}={v}" for k, v in sorted(counts.items()))
            progress.update(task, advance=1, description=live)

        report = run_demo(options, on_trade=on_trade)
    render_report(report, console)
    sys.exit(0 if report.ok else 1)
