"""The demo's end-of-run checks of fillguard's book and journal against the ledger."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from fillguard.executor import SmartOrderExecutor
from fillguard.snapshot import to_decimal

if TYPE_CHECKING:
    from fillguard.demo import DemoReport

__all__ = ["book_differences", "journal_figures"]


def book_differences(executor: SmartOrderExecutor, ledger: Any, symbols: list[str]) -> list[str]:
    """Each symbol whose book differs from the broker's position, with the orders behind it."""
    out: list[str] = []
    for symbol in symbols:
        expected = executor.expected_position(symbol)
        broker = to_decimal(ledger["positions"].get(symbol, {}).get("qty")) or Decimal(0)
        if expected is None:
            still = [b.order_id[:8] for b in executor.book.open_orders(symbol)] + [
                t.intent.client_order_id[:8]
                for t in executor.unresolved_trades()
                if t.intent.symbol == symbol
            ]
            if still:  # no baseline, and nothing to compare while these may still fill
                out.append(f"{symbol}: no baseline, orders open ({', '.join(still)})")
        elif expected != broker:
            out.append(
                f"{symbol}: book {expected}, broker {broker}"
                + _order_differences(executor, ledger, symbol)
            )
    return out


def _order_differences(executor: SmartOrderExecutor, ledger: Any, symbol: str) -> str:
    """The orders behind a book difference: booked quantity against the ledger's."""
    parts = []
    for row in ledger["orders"]:
        order = row["order"]
        if order["symbol"] != symbol:
            continue
        booked = executor.book.booking(order["id"])
        filled = to_decimal(order["filled_qty"]) or Decimal(0)
        mine = booked.filled_qty if booked is not None else None
        if mine != filled and (booked is not None or filled):
            parts.append(f"{order['id'][:8]} {order['status']} booked {mine} ledger {filled}")
    return f" ({'; '.join(parts)})" if parts else ""


def journal_figures(executor: SmartOrderExecutor, report: DemoReport, ledger: Any) -> None:
    journal = executor.journal
    if journal is None:
        return
    ids = {t.client_order_id for t in journal.trades()}
    report.journal_trades = len(ids)
    report.journal_unfinished = len(journal.unfinished())
    ours = [
        row["order"]["client_order_id"]
        for row in ledger["orders"]
        if all(p.get("source") != "outside" for p in row.get("posts", []))
    ]
    report.journal_missing = sum(1 for coid in ours if coid not in ids)
