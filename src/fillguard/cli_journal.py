"""``fillguard journal list`` and ``fillguard journal show``: what a write-ahead journal holds.

Both open the journal read-only (SQLite ``mode=ro``, no writer lock), so they run safely next to
a trader writing it: they never take the lock away, never create, migrate or change the file.
Without ``--journal``, the path is the account's default (:func:`fillguard.journal.
default_journal_path`) for ``APCA_API_KEY_ID`` and the endpoint (``--base-url``, ``--live`` or
paper). The key id is shown masked; the secret is never read.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from fillguard.journal import (
    LIVE_BASE_URL,
    PAPER_BASE_URL,
    JournalError,
    JournalTrade,
    default_journal_path,
    record_to_dict,
)
from fillguard.journal_sqlite import SqliteJournal

__all__ = ["journal_group"]


def _journal_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        (
            click.option(
                "--journal",
                "journal_path",
                type=click.Path(dir_okay=False, path_type=Path),
                default=None,
                help="The journal file [default: the account's, from APCA_API_KEY_ID].",
            ),
            click.option(
                "--base-url", default=None, help="The endpoint whose default journal to read."
            ),
            click.option(
                "--live", is_flag=True, help="The live endpoint's journal (default paper)."
            ),
            click.option("--json", "as_json", is_flag=True, help="Print JSON."),
        )
    ):
        command = option(command)
    return command


def _open(journal_path: Path | None, base_url: str | None, live: bool) -> SqliteJournal:
    if journal_path is None:
        key_id = os.environ.get("APCA_API_KEY_ID")
        if not key_id:
            raise click.UsageError(
                "no --journal given and APCA_API_KEY_ID is not set: "
                "name the journal file, or set the key id whose default journal to read"
            )
        url = base_url or (LIVE_BASE_URL if live else PAPER_BASE_URL)
        try:
            journal_path = default_journal_path(key_id, url)
        except ValueError as err:
            raise click.BadParameter(str(err), param_hint="--base-url") from None
    try:
        return SqliteJournal(journal_path, read_only=True)
    except JournalError as err:
        raise click.ClickException(str(err)) from None


def _header(journal: SqliteJournal) -> dict[str, Any]:
    account = journal.account
    return {
        "journal": str(journal.path),
        "account": {"key_id": account.masked_key_id(), "base_url": account.base_url},
    }


def _dash(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "-"
    return str(value)


def _summary(trade: JournalTrade) -> list[str]:
    intent, final, last = trade.intent, trade.final, trade.last_outcome
    price = intent.limit_price if intent.limit_price is not None else intent.stop_price
    what = f"{intent.side} {intent.qty:f} {intent.symbol} {intent.order_type}"
    ended = "-"
    if final is not None:
        price_text = "" if final.fill_price is None else f" @ {final.fill_price:f}"
        ended = f"{final.status.value} {final.filled_qty:f}{price_text}"
    return [
        intent.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        trade.client_order_id,
        what + ("" if price is None else f" @ {price:f}"),
        str(trade.attempt_count),
        "-" if last is None else last.outcome.value,
        ", ".join(trade.order_ids) or "-",
        ended,
    ]


@click.group("journal")
def journal_group() -> None:
    """Show what the write-ahead journal holds (read-only; safe while a trader runs)."""


@journal_group.command("list")
@click.option("--unfinished", is_flag=True, help="Only trades with no final status.")
@_journal_options
def list_command(
    unfinished: bool, journal_path: Path | None, base_url: str | None, live: bool, as_json: bool
) -> None:
    """List the journal's trades, oldest first."""
    with _open(journal_path, base_url, live) as journal:
        try:
            trades = journal.unfinished() if unfinished else journal.trades()
        except JournalError as err:
            raise click.ClickException(str(err)) from None
        header = _header(journal)
    if as_json:
        payload = {**header, "trades": [t.to_dict() for t in trades]}
        click.echo(json.dumps(payload, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    which = "unfinished trades" if unfinished else "trades"
    account = header["account"]
    table = Table(
        title=f"{len(trades)} {which} in {header['journal']}",
        caption=f"key id {account['key_id']} at {account['base_url']}",
    )
    for column in (
        "created (UTC)",
        "client_order_id",
        "trade",
        "attempts",
        "last outcome",
        "order ids",
        "final",
    ):
        table.add_column(column, overflow="fold")
    for trade in trades:
        table.add_row(*_summary(trade))
    Console(soft_wrap=True).print(table)


def _rows_table(title: str, records: list[dict[str, Any]], skip: tuple[str, ...]) -> Any:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    columns = [k for k in records[0] if k not in skip] if records else []
    for column in columns:
        table.add_column(column, overflow="fold")
    for record in records:
        table.add_row(*(_dash(record[c]) for c in columns))
    return table


@journal_group.command("show")
@click.argument("client_order_id")
@_journal_options
def show_command(
    client_order_id: str,
    journal_path: Path | None,
    base_url: str | None,
    live: bool,
    as_json: bool,
) -> None:
    """Show everything the journal holds about one trade."""
    with _open(journal_path, base_url, live) as journal:
        try:
            trade = journal.trade(client_order_id)
        except JournalError as err:
            raise click.ClickException(str(err)) from None
        header = _header(journal)
    if trade is None:
        click.echo(
            f"error: no trade with client_order_id {client_order_id!r} in {header['journal']}",
            err=True,
        )
        sys.exit(1)
    if as_json:
        click.echo(json.dumps({**header, "trade": trade.to_dict()}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(soft_wrap=True)
    intent = Table(title=f"trade {client_order_id}", title_justify="left", show_header=False)
    for key, value in record_to_dict(trade.intent).items():
        intent.add_row(key, _dash(value))
    state = "finished" if trade.finished else "unfinished (recovery will look at it)"
    intent.add_row("state", state)
    intent.add_row("order ids", ", ".join(trade.order_ids) or "-")
    console.print(intent)
    skip = ("client_order_id",)
    sections = (
        ("attempts", [record_to_dict(a) for a in trade.attempts]),
        ("outcomes", [record_to_dict(o) for o in trade.outcomes]),
        ("bookings (cumulative filled qty per order)", [record_to_dict(b) for b in trade.bookings]),
        ("final", [] if trade.final is None else [record_to_dict(trade.final)]),
    )
    for title, records in sections:
        if records:
            console.print(_rows_table(title, records, skip))
        else:
            console.print(f"{title}: none")
