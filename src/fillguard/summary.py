"""Human summaries of results, and the exit codes the CLI derives from them.

:func:`trade_rows` and :func:`fill_rows` give the few lines a person wants after ``fillguard
execute`` or ``watch`` (outcome, status, quantity and price, how and how fast the fill was
detected, requests made, slippage, position check); ``--json`` prints the full record instead.
The exit code is chosen from the outcome and status values, never from message text.
"""

from __future__ import annotations

from enum import IntEnum

from fillguard.outcome import TradeOutcome, TradeResult
from fillguard.results import FillResult, FillStatus

__all__ = ["ExitCode", "exit_code_for_fill", "exit_code_for_trade", "fill_rows", "trade_rows"]


class ExitCode(IntEnum):
    """What ``fillguard execute`` and ``watch`` exit with."""

    #: The order filled completely.
    FILLED = 0
    #: It ended without a full fill: partially filled, canceled, expired, rejected, timed out,
    #: or not placed.
    NOT_FILLED = 1
    #: Bad input (arguments, keys): nothing was sent.
    BAD_INPUT = 2
    #: The broker refused: the order (execute), or to tell us its state (watch).
    REFUSED = 3
    #: The outcome is unknown: an order may exist, or its final state could not be learned.
    UNKNOWN = 4


def exit_code_for_trade(result: TradeResult) -> ExitCode:
    """The exit code of ``fillguard execute`` for ``result``."""
    if result.outcome is TradeOutcome.REFUSED:
        return ExitCode.REFUSED
    if result.outcome is TradeOutcome.UNKNOWN or result.status is FillStatus.UNKNOWN:
        return ExitCode.UNKNOWN
    return ExitCode.FILLED if result.filled else ExitCode.NOT_FILLED


def exit_code_for_fill(fill: FillResult) -> ExitCode:
    """The exit code of ``fillguard watch`` for ``fill``."""
    if fill.status is FillStatus.UNKNOWN:
        return ExitCode.REFUSED if fill.refusal is not None else ExitCode.UNKNOWN
    return ExitCode.FILLED if fill.filled else ExitCode.NOT_FILLED


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def fill_rows(fill: FillResult, *, requests: bool = True) -> list[tuple[str, str]]:
    """The summary lines of one order's fill result (``requests``: with its REST calls)."""
    rows = [("status", fill.status.value)]
    order = fill.order_id
    if fill.chain:
        order += f" (replaced; now {fill.final_order_id})"
    rows.append(("order", order))
    if fill.filled_qty > 0:
        asked = f" of {fill.requested_qty}" if fill.requested_qty is not None else ""
        rows.append(("filled", f"{fill.filled_qty}{asked} @ {fill.fill_price}"))
    else:
        rows.append(("filled", "nothing"))
    how = fill.detection_method or "-"
    if fill.verification is not None and fill.verification.methods_confirmed:
        how += f" ({', '.join(fill.verification.methods_confirmed)})"
    rows.append(("detected", f"{how} in {_ms(fill.elapsed_seconds)}"))
    if requests:
        rows.append(("requests", f"{fill.api_calls} REST calls, {fill.retries} retries"))
    if fill.slippage_pct is not None:
        flag = "  (over the threshold)" if fill.slippage_exceeded else ""
        rows.append(("slippage", f"{fill.slippage_pct} %{flag}"))
    if fill.order_open:
        rows.append(("open", "the order may still fill"))
    if fill.refusal is not None:
        rows.append(("refused", f"HTTP {fill.refusal.status_code}: {fill.refusal.message}"))
    if fill.error:
        rows.append(("note", fill.error))
    return rows


def trade_rows(result: TradeResult) -> list[tuple[str, str]]:
    """The summary lines of one trade."""
    rows = [("outcome", result.outcome.value), ("client order id", result.client_order_id)]
    if result.fill is not None:
        rows += fill_rows(result.fill, requests=False)
    rows.append(("requests", f"{result.api_calls} REST calls, {result.submit_attempts} POSTs"))
    c = result.consistency
    if c is not None:
        text = f"{c.verdict}: expected {c.expected_qty}, broker {c.broker_qty}"
        if c.synced:
            text += " (book synced to the broker)"
        rows.append(("position", text))
    if result.refusal is not None:
        rows.append(("refused", f"HTTP {result.refusal.status_code}: {result.refusal.message}"))
    if result.error and (result.fill is None or result.error != result.fill.error):
        rows.append(("note", result.error))
    return rows
