"""CLI commands that trade or watch: ``execute`` and ``watch``.

Keys come from ``APCA_API_KEY_ID`` / ``APCA_API_SECRET_KEY``; paper trading unless ``--live``;
``--base-url`` points at a simulator. Secrets are never printed or logged. Both commands print
a short human summary (``--json``: the full record) and exit with a code from
:class:`fillguard.summary.ExitCode`: 0 filled, 1 ended without a full fill, 2 bad input,
3 refused, 4 unknown.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

from fillguard.config import FillDetectionConfig
from fillguard.errors import InvalidInputError
from fillguard.logs import JsonFormatter, register_secret
from fillguard.metrics_cli import metrics_options, metrics_session

__all__ = ["POSITIVE_SECONDS", "execute_command", "watch_command"]


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
    for name, value in (("APCA_API_KEY_ID", key), ("APCA_API_SECRET_KEY", secret)):
        if value is not None and any(ch.isspace() or not ch.isprintable() for ch in value):
            raise click.UsageError(
                f"{name} contains whitespace or control characters (a trailing newline from a "
                "file?); strip it. The value is not shown."
            )
    from alpaca.trading.client import TradingClient

    url = base_url.rstrip("/") if base_url else None
    return TradingClient(key, secret, paper=not live, url_override=url)


POSITIVE_SECONDS = click.FloatRange(min=0, min_open=True)


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


def _journal_options(command: Any) -> Any:
    """``--journal PATH`` and ``--no-journal``."""
    command = click.option(
        "--no-journal",
        is_flag=True,
        help="Write no journal (a crash may then leave an order that nothing remembers).",
    )(command)
    return click.option(
        "--journal",
        "journal_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="The write-ahead journal file (default: one per account, "
        "$XDG_STATE_HOME/fillguard/journal-<hash>.sqlite3, else ~/.local/state/fillguard/).",
    )(command)


def _journal_path(client: Any, journal_path: Path | None, no_journal: bool) -> Path | None:
    """The journal this command writes: the one given, the account's default, or none."""
    if no_journal:
        if journal_path is not None:
            raise click.UsageError("--journal and --no-journal exclude each other")
        return None
    if journal_path is not None:
        return journal_path
    from fillguard.journal import default_journal_path
    from fillguard.journaling import journal_account

    account = journal_account(client)
    return default_journal_path(account.key_id, account.base_url)


def _open_executor(
    client: Any, config: Any, observer: Any = None, *, auto_recover: bool = True
) -> Any:
    """The executor, or a clean usage error when its journal cannot be used."""
    from fillguard.executor import SmartOrderExecutor
    from fillguard.journal import JournalError

    try:
        return SmartOrderExecutor(client, config, observer=observer, auto_recover=auto_recover)
    except JournalError as err:
        raise click.ClickException(str(err)) from None


def _connect(live: bool, base_url: str | None, verbose: int, log_json: bool) -> Any:
    """Set up logging and build the client (a clear usage error for missing keys)."""
    _setup_logging(verbose, log_json)
    return _client(live, base_url)


# ignore_unknown_options: "-1" is a (bad) quantity for our validation, not an unknown flag.
@click.command("execute", context_settings={"ignore_unknown_options": True})
@click.argument("symbol")
@click.argument("side", type=click.Choice(["buy", "sell"], case_sensitive=False))
@click.argument("qty")
@click.option("--limit", "limit_price", default=None, help="Limit price (makes it a limit order).")
@click.option(
    "--timeout",
    type=POSITIVE_SECONDS,
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
@_journal_options
@_broker_options
@metrics_options
def execute_command(
    symbol: str,
    side: str,
    qty: str,
    limit_price: str | None,
    timeout: float,
    time_in_force: str,
    client_order_id: str | None,
    journal_path: Path | None,
    no_journal: bool,
    live: bool,
    base_url: str | None,
    as_json: bool,
    verbose: int,
    log_json: bool,
    metrics_port: int | None,
    metrics_linger: float,
) -> None:
    """Execute one trade and report the broker's truth about it.

    Exit codes: 0 filled, 1 ended without a full fill (or not placed), 2 bad input,
    3 refused by the broker, 4 outcome unknown (the order may exist).
    """
    from fillguard.executor import OrderConfig
    from fillguard.summary import exit_code_for_trade, trade_rows

    client = _connect(live, base_url, verbose, log_json)
    config = OrderConfig(
        fill_detection=FillDetectionConfig(timeout_seconds=timeout),
        journal_path=_journal_path(client, journal_path, no_journal),
    )
    with metrics_session(metrics_port, metrics_linger) as observer:
        try:
            executor = _open_executor(client, config, observer)
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
        finally:
            if "executor" in locals():
                executor.close()
        if as_json:
            click.echo(json.dumps(result.to_log_dict(), indent=2, default=str))
        else:
            _print_rows(f"{side} {qty} {symbol.upper()}", trade_rows(result))
    sys.exit(int(exit_code_for_trade(result)))


@click.command("watch")
@click.argument("order_id")
@click.option(
    "--timeout", type=POSITIVE_SECONDS, default=60.0, show_default=True, help="Seconds to watch."
)
@click.option(
    "--cancel-on-timeout", is_flag=True, help="Cancel the order if it is still open at the end."
)
@_journal_options
@_broker_options
@metrics_options
def watch_command(
    order_id: str,
    timeout: float,
    cancel_on_timeout: bool,
    journal_path: Path | None,
    no_journal: bool,
    live: bool,
    base_url: str | None,
    as_json: bool,
    verbose: int,
    log_json: bool,
    metrics_port: int | None,
    metrics_linger: float,
) -> None:
    """Watch an existing order until it fills, ends or the timeout passes (no cancel by default).

    Exit codes: 0 filled, 1 ended without a full fill, 2 bad input, 3 the broker refused to
    tell (401, 403, an order id it does not know), 4 final state unknown.
    """
    from fillguard.engine import FillDetectionEngine
    from fillguard.summary import exit_code_for_fill, fill_rows

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
    path = _journal_path(client, journal_path, no_journal)
    with metrics_session(metrics_port, metrics_linger) as observer:
        try:
            engine = FillDetectionEngine(client, config, observer=observer)
            result = engine.monitor_order_fill(order_id)
        except InvalidInputError as err:
            raise click.BadParameter(str(err), param_hint=err.field) from None
        if path is not None and path.exists():
            _journal_watched(client, path, result)
        if as_json:
            click.echo(json.dumps(result.to_log_dict(), indent=2, default=str))
        else:
            _print_rows(f"order {order_id}", fill_rows(result))
    sys.exit(int(exit_code_for_fill(result)))


def _journal_watched(client: Any, path: Path, result: Any) -> None:
    """When the watched order is one of the journal's unfinished trades, record what the
    watch learned: the order's filled quantity (the journal keeps the larger) and the end."""
    from fillguard.book import Booking as BookEntry
    from fillguard.clock import SystemClock
    from fillguard.journal import JournalError
    from fillguard.journaling import TradeJournal, open_journal
    from fillguard.outcome import TradeOutcome, TradeResult

    try:
        journal = open_journal(client, path, None, SystemClock())
    except JournalError as err:
        click.echo(f"journal not updated: {err}", err=True)
        return
    assert journal is not None
    try:
        trade = next((t for t in journal.unfinished() if result.order_id in t.order_ids), None)
        if trade is None:
            return
        writer = TradeJournal(journal, SystemClock())
        intent = trade.intent
        entry = BookEntry(
            result.order_id,
            intent.symbol,
            intent.side,
            result.filled_qty,
            True,
            result.order_open,
            trade.client_order_id,
        )
        writer.booked(entry)
        writer.final(
            TradeResult(
                trade.client_order_id, result.order_id, result, None, outcome=TradeOutcome.PLACED
            )
        )
    finally:
        journal.close()


# ------------------------------------------------------------------------------ recover
@click.command("recover")
@click.option(
    "--resubmit",
    is_flag=True,
    help="Send trades that were never sent (no attempt recorded), under their own id.",
)
@_journal_options
@_broker_options
def recover_command(
    resubmit: bool,
    journal_path: Path | None,
    no_journal: bool,
    live: bool,
    base_url: str | None,
    as_json: bool,
    verbose: int,
    log_json: bool,
) -> None:
    """Finish the journal's unfinished trades after a crash, and compare the positions.

    Exit codes: 0 nothing left unknown and positions equal, 1 a position differs,
    4 trades still unresolved.
    """
    from fillguard.executor import OrderConfig

    client = _connect(live, base_url, verbose, log_json)
    path = _journal_path(client, journal_path, no_journal)
    if path is None:
        raise click.UsageError("recover needs a journal")
    if not path.exists():
        raise click.ClickException(f"journal {path}: no such file")
    executor = _open_executor(client, OrderConfig(journal_path=path), auto_recover=False)
    try:
        report = executor.recover(resubmit=resubmit)
    finally:
        executor.close()
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        rows = [
            ("resumed", str(len(report.resumed))),
            ("finished", str(len(report.finished))),
            ("not placed", ", ".join(report.not_placed) or "none"),
            ("resubmitted", str(len(report.resubmitted))),
            ("unresolved", ", ".join(report.unresolved) or "none"),
            ("fills booked", str(len(report.fills_booked))),
            (
                "position differences",
                ", ".join(
                    f"{d.symbol} book {d.expected} broker {d.broker}"
                    for d in report.position_differences
                )
                or "none",
            ),
            ("took", f"{report.elapsed_seconds:.2f} s"),
        ]
        _print_rows(f"recovery of {path}", rows)
    sys.exit(4 if report.unresolved else 1 if report.position_differences else 0)


def _print_rows(title: str, rows: list[tuple[str, str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(key, value)
    Console(soft_wrap=True).print(table)
