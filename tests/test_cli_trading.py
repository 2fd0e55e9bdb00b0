"""``fillguard execute``, ``watch`` and ``demo`` through click's CliRunner (and one subprocess)."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from fillguard.cli import main
from fillguard.sim import SimServer

KEY_VARS = ("APCA_API_KEY_ID", "APCA_API_SECRET_KEY")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """The commands add a stderr handler for -v / --log-json: take it off after each test."""
    logger = logging.getLogger("fillguard")
    handlers, level = list(logger.handlers), logger.level
    yield
    for handler in list(logger.handlers):
        if handler not in handlers:
            logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in KEY_VARS:
        monkeypatch.delenv(name, raising=False)


def run(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def keys(sim: SimServer) -> dict[str, str | None]:
    return {"APCA_API_KEY_ID": sim.key_id, "APCA_API_SECRET_KEY": sim.secret_key}


def output(result: Result) -> str:
    return result.output + (result.stderr if result.stderr_bytes is not None else "")


def test_commands_are_registered() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for name in ("demo", "execute", "watch", "sim"):
        assert re.search(rf"^\s+{name}\b", result.output, re.M), name


# ---------------------------------------------------------------------------------- execute
@pytest.mark.usefixtures("no_keys")
@pytest.mark.parametrize(
    ("present", "missing"),
    [
        ({}, KEY_VARS),
        ({"APCA_API_KEY_ID": "k"}, ("APCA_API_SECRET_KEY",)),
        ({"APCA_API_SECRET_KEY": "s"}, ("APCA_API_KEY_ID",)),
        ({"APCA_API_KEY_ID": "", "APCA_API_SECRET_KEY": ""}, KEY_VARS),
    ],
)
def test_execute_without_keys_names_them_and_fails(
    present: dict[str, str | None], missing: tuple[str, ...]
) -> None:
    result = run("execute", "AAPL", "buy", "1", env=present)
    assert result.exit_code != 0
    text = output(result)
    for name in missing:
        assert name in text
    assert "Traceback" not in text


@pytest.mark.usefixtures("no_keys")
def test_watch_without_keys_names_them_and_fails() -> None:
    result = run("watch", "some-order-id")
    assert result.exit_code != 0
    assert "APCA_API_KEY_ID" in output(result)
    assert "APCA_API_SECRET_KEY" in output(result)


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["AAPL", "buy", "--", "-1"], "qty"),
        (["AAPL", "buy", "-1"], "qty"),
        (["AAPL", "buy", "-0.5"], "qty"),
        (["AAPL", "buy", "0"], "qty"),
        (["AAPL", "buy", "abc"], "qty"),
        (["AAPL", "buy", "nan"], "qty"),
        (["AAPL", "buy", "inf"], "qty"),
        (["AAPL", "buy", "1", "--limit", "abc"], "limit_price"),
        (["AAPL", "buy", "1", "--limit", "-5"], "limit_price"),
        (["AAPL", "hold", "1"], "'hold' is not one of 'buy', 'sell'"),
        (["A$PL", "buy", "1"], "symbol"),
        (["AAPL", "buy", "1", "--timeout", "0"], "timeout"),
        (["AAPL", "buy", "1", "--tif", "week"], "tif"),
        (["AAPL", "buy", "0.5", "--tif", "gtc"], "time_in_force"),
        (["AAPL", "buy", "1", "--client-order-id", "x" * 200], "client_order_id"),
    ],
)
def test_execute_bad_arguments_fail_clearly_and_send_nothing(
    sim: SimServer, args: list[str], hint: str
) -> None:
    before = sim.api.requests_total
    result = run("execute", "--base-url", sim.base_url, *args, env=keys(sim))
    assert result.exit_code == 2, output(result)
    text = output(result)
    assert hint in text
    assert "Traceback" not in text
    assert sim.api.requests_total == before
    assert sim.ledger()["orders"] == []


def test_execute_prints_the_result(sim: SimServer) -> None:
    result = run("execute", "AAPL", "buy", "1", "--base-url", sim.base_url, env=keys(sim))
    assert result.exit_code == 0, output(result)
    [entry] = sim.ledger()["orders"]
    order = entry["order"]
    assert order["status"] == "filled"
    assert order["id"] in result.output
    assert order["client_order_id"] in result.output
    assert "filled" in result.output


def test_execute_json(sim: SimServer) -> None:
    result = run(
        "execute",
        "msft",
        "sell",
        "2",
        "--json",
        "--client-order-id",
        "cli-json-1",
        "--base-url",
        sim.base_url,
        env=keys(sim),
    )
    assert result.exit_code == 0, output(result)
    payload = json.loads(result.output)
    [entry] = sim.ledger()["orders"]
    assert payload["client_order_id"] == "cli-json-1" == entry["order"]["client_order_id"]
    assert payload["order_id"] == entry["order"]["id"]
    assert payload["filled"] is True
    assert payload["status"] == "filled"
    assert Decimal(payload["filled_qty"]) == 2
    assert Decimal(payload["fill_price"]) == Decimal(entry["order"]["filled_avg_price"])
    assert payload["consistency"]["consistent"] is True
    assert Decimal(payload["consistency"]["broker_qty"]) == -2


def test_execute_limit_that_does_not_fill_exits_non_zero(sim: SimServer) -> None:
    price = sim.broker.price("AAPL")
    result = run(
        "execute",
        "AAPL",
        "buy",
        "1",
        "--limit",
        str((price / 2).quantize(Decimal("0.01"))),
        "--timeout",
        "0.5",
        "--json",
        "--base-url",
        sim.base_url,
        env=keys(sim),
    )
    assert result.exit_code == 1
    payload = json.loads(result.output)
    assert payload["filled"] is False
    assert payload["status"] == "timeout"
    [entry] = sim.ledger()["orders"]
    assert entry["order"]["status"] == "canceled"


def test_execute_refused_by_the_broker_exits_3(sim: SimServer) -> None:
    result = run(
        "execute", "AAPL", "buy", "1000000", "--json", "--base-url", sim.base_url, env=keys(sim)
    )
    assert result.exit_code == 3
    payload = json.loads(result.output)
    assert payload["outcome"] == "refused"
    assert payload["order_id"] is None
    assert payload["refusal"]["status_code"] == 403
    assert payload["refusal"]["code"] == 40310000
    assert "insufficient buying power" in payload["refusal"]["message"]


def test_execute_with_wrong_keys_fails_without_showing_them(sim: SimServer) -> None:
    env: dict[str, str | None] = {
        "APCA_API_KEY_ID": sim.key_id,
        "APCA_API_SECRET_KEY": "CLI-SECRET-SHOULD-NOT-LEAK",
    }
    result = run(
        "execute", "AAPL", "buy", "1", "-vv", "--log-json", "--base-url", sim.base_url, env=env
    )
    assert result.exit_code != 0
    text = output(result)
    assert "403" in text
    assert "CLI-SECRET-SHOULD-NOT-LEAK" not in text
    assert sim.ledger()["orders"] == []


# ---------------------------------------------------------------------------------- watch
def submit(sim: SimServer, **kw: Any) -> str:
    from alpaca.trading.enums import OrderSide, TimeInForce
    from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest

    client = sim.trading_client()
    common: dict[str, Any] = {
        "symbol": "AAPL",
        "qty": 1,
        "side": OrderSide.BUY,
        "time_in_force": TimeInForce.DAY,
    }
    if "limit_price" in kw:
        request: Any = LimitOrderRequest(limit_price=kw["limit_price"], **common)
    else:
        request = MarketOrderRequest(**common)
    return str(client.submit_order(request).id)


def test_watch_reports_a_fill(sim: SimServer) -> None:
    order_id = submit(sim)
    result = run(
        "watch", order_id, "--timeout", "3", "--json", "--base-url", sim.base_url, env=keys(sim)
    )
    assert result.exit_code == 0, output(result)
    payload = json.loads(result.output)
    assert payload["order_id"] == order_id
    assert payload["filled"] is True
    [entry] = sim.ledger()["orders"]
    assert Decimal(payload["fill_price"]) == Decimal(entry["order"]["filled_avg_price"])


def test_watch_table_output(sim: SimServer) -> None:
    order_id = submit(sim)
    result = run("watch", order_id, "--timeout", "3", "--base-url", sim.base_url, env=keys(sim))
    assert result.exit_code == 0, output(result)
    assert order_id in result.output


def test_watch_does_not_cancel_unless_asked(sim: SimServer) -> None:
    low = float((sim.broker.price("AAPL") / 2).quantize(Decimal("0.01")))
    order_id = submit(sim, limit_price=low)
    result = run(
        "watch", order_id, "--timeout", "0.3", "--json", "--base-url", sim.base_url, env=keys(sim)
    )
    assert result.exit_code == 1
    assert json.loads(result.output)["filled"] is False
    [entry] = sim.ledger()["orders"]
    assert entry["order"]["status"] == "new"
    result = run(
        "watch",
        order_id,
        "--timeout",
        "0.3",
        "--cancel-on-timeout",
        "--json",
        "--base-url",
        sim.base_url,
        env=keys(sim),
    )
    assert result.exit_code == 1
    [entry] = sim.ledger()["orders"]
    assert entry["order"]["status"] == "canceled"


# ---------------------------------------------------------------------------------- demo
def counts(text: str) -> dict[str, int]:
    """Rows of the demo's ledger table: label -> number (ignoring rows that are not counts)."""
    rows: dict[str, int] = {}
    for line in text.splitlines():
        m = re.match(r"[│|]\s*(.+?)\s*[│|]\s*(\d+)\s*[│|]", line)
        if m:
            rows[m.group(1)] = int(m.group(2))
    return rows


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_demo_small_run_has_no_missed_or_false_fills() -> None:
    result = CliRunner().invoke(
        main,
        ["demo", "--orders", "12", "--faults", "rough", "--no-progress"],
        env={"COLUMNS": "120"},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    rows = counts(result.output)
    assert rows["fills missed (must be 0)"] == 0
    assert rows["fills falsely claimed (must be 0)"] == 0
    assert rows["duplicate orders per client_order_id (must be 0)"] == 0
    assert rows["UNKNOWN still unresolved at the end (must be 0)"] == 0
    assert (
        rows["results that match the ledger"]
        + rows["refused by the broker (e.g. buying power)"]
        + rows["not placed (every attempt unapplied, e.g. 429s)"]
        == 12
    )
    assert "OK: every outcome agrees with the ledger" in result.output


@pytest.mark.usefixtures("no_keys")
def test_demo_rejects_bad_options() -> None:
    result = run("demo", "--orders", "0")
    assert result.exit_code == 2
    result = run("demo", "--faults", "stormy")
    assert result.exit_code == 2
    assert "stormy" in output(result)


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_fillguard_execute_as_a_process(sim: SimServer) -> None:
    env = {**os.environ, **{k: v for k, v in keys(sim).items() if v is not None}}
    proc = subprocess.run(
        [
            str(Path(sys.executable).with_name("fillguard")),
            "execute",
            "AAPL",
            "buy",
            "1",
            "--json",
            "-vv",
            "--log-json",
            "--base-url",
            sim.base_url,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    assert payload["filled"] is True
    lines = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    events = {line["event"] for line in lines}
    assert {"trade_started", "monitoring_started", "fill_confirmed", "trade_finished"} <= events
    stray = [
        line
        for line in lines
        if line.get("client_order_id") != payload["client_order_id"]
        # the account's stream and its gaps are about the account, not a trade
        and not line["logger"].startswith("fillguard.stream")
        and line["event"] != "stream_gap"
    ]
    assert not stray, stray
    assert sim.secret_key not in proc.stdout + proc.stderr


# ---------------------------------------------------------------------------------- journal
def test_execute_journals_by_default_and_recover_reads_it(sim: SimServer, tmp_path: Path) -> None:
    from fillguard.journal import default_journal_path
    from fillguard.journal_sqlite import SqliteJournal

    result = run("execute", "AAPL", "buy", "1", "--base-url", sim.base_url, "--json", env=keys(sim))
    assert result.exit_code == 0, output(result)
    coid = json.loads(result.output)["client_order_id"]
    path = default_journal_path(sim.key_id, sim.base_url)
    assert path.exists()
    assert str(path).startswith(os.environ["XDG_STATE_HOME"])
    with SqliteJournal(path, read_only=True) as journal:
        trade = journal.trade(coid)
        assert trade is not None
        assert trade.finished
        assert trade.attempt_count == 1
    chosen = tmp_path / "mine.sqlite3"
    args = ("--base-url", sim.base_url, "--journal", str(chosen))
    assert run("execute", "MSFT", "buy", "1", *args, env=keys(sim)).exit_code == 0
    recovered = run("recover", *args, "--json", env=keys(sim))
    assert recovered.exit_code == 0, output(recovered)
    report = json.loads(recovered.output)
    assert report["unresolved"] == []
    assert report["position_differences"] == []


def test_no_journal_writes_none_and_excludes_journal(sim: SimServer, tmp_path: Path) -> None:
    from fillguard.journal import default_journal_path

    base = ("--base-url", sim.base_url)
    assert run("execute", "AAPL", "buy", "1", *base, "--no-journal", env=keys(sim)).exit_code == 0
    assert not default_journal_path(sim.key_id, sim.base_url).exists()
    both = run(
        "execute",
        "AAPL",
        "buy",
        "1",
        *base,
        "--no-journal",
        "--journal",
        str(tmp_path / "j"),
        env=keys(sim),
    )
    assert both.exit_code == 2
    assert "exclude" in output(both)


def test_a_corrupt_journal_is_a_clear_error_naming_it(sim: SimServer, tmp_path: Path) -> None:
    bad = tmp_path / "not-a-journal.sqlite3"
    bad.write_bytes(b"this is not sqlite" * 100)
    result = run(
        "execute",
        "AAPL",
        "buy",
        "1",
        "--base-url",
        sim.base_url,
        "--journal",
        str(bad),
        env=keys(sim),
    )
    assert result.exit_code == 1
    assert str(bad) in output(result)
    assert bad.read_bytes().startswith(b"this is not sqlite")  # never reset
    assert sim.broker.list_orders() == []


def test_watch_records_the_fill_of_a_journaled_order(sim: SimServer, tmp_path: Path) -> None:
    """A trade whose process died after the POST answered: ``watch`` of its order books the
    fill and finishes the trade in the journal."""
    import datetime as dt

    from alpaca.trading.enums import OrderSide, TimeInForce
    from alpaca.trading.requests import MarketOrderRequest

    from fillguard.journal import OutcomeKind, SubmitAttempt, SubmitOutcome, TradeIntent
    from fillguard.journal_sqlite import SqliteJournal
    from fillguard.journaling import journal_account

    client = sim.trading_client()
    path = tmp_path / "journal.sqlite3"
    now = dt.datetime.now(dt.UTC)
    order = client.submit_order(
        MarketOrderRequest(
            symbol="AAPL",
            qty=2,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.DAY,
            client_order_id="watched-1",
        )
    )
    with SqliteJournal(path, account=journal_account(client)) as journal:
        journal.record_intent(
            TradeIntent(
                client_order_id="watched-1",
                symbol="AAPL",
                side="buy",
                qty=Decimal(2),
                order_type="market",
                time_in_force="day",
                created_at=now,
            )
        )
        journal.record_attempt(SubmitAttempt(client_order_id="watched-1", attempt=1, at=now))
        journal.record_outcome(
            SubmitOutcome(
                client_order_id="watched-1",
                outcome=OutcomeKind.PLACED,
                at=now,
                order_id=str(order.id),
            )
        )
    result = run(
        "watch",
        str(order.id),
        "--base-url",
        sim.base_url,
        "--journal",
        str(path),
        "--timeout",
        "5",
        env=keys(sim),
    )
    assert result.exit_code == 0, output(result)
    with SqliteJournal(path, read_only=True) as journal:
        trade = journal.trade("watched-1")
        assert trade is not None
        assert trade.finished
        assert [(b.order_id, b.filled_qty) for b in trade.bookings] == [(str(order.id), Decimal(2))]
