"""``fillguard journal list`` and ``show``, human and ``--json``, on journals the tests fill."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from fillguard.cli import main
from fillguard.journal import (
    LIVE_BASE_URL,
    PAPER_BASE_URL,
    JournalAccount,
    OutcomeKind,
    SubmitOutcome,
    default_journal_path,
)
from fillguard.journal_sqlite import SqliteJournal
from tests.journal_support import ACCOUNT, at, attempt, booking, final, intent, placed


def run(*args: str, env: dict[str, str | None] | None = None) -> Result:
    # A wide "terminal" so rich does not fold the values the tests look for.
    return CliRunner().invoke(
        main, list(args), env={"COLUMNS": "200", **(env or {})}, catch_exceptions=False
    )


def fill(journal: SqliteJournal) -> None:
    """c1 filled, c2 refused and finished, c3 placed and partly booked (unfinished)."""
    journal.record_intent(intent("c1", qty="0.000000001", order_type="limit", limit_price="190.10"))
    journal.record_attempt(attempt("c1", 1))
    journal.record_outcome(placed("c1", "o1"))
    journal.record_booking(booking("o1", "c1", "0.000000001"))
    journal.record_final(final("c1", "filled", "0.000000001", "190.05"))
    journal.record_intent(intent("c2", symbol="MSFT", side="sell", qty="3"))
    journal.record_attempt(attempt("c2", 1))
    journal.record_outcome(
        SubmitOutcome(
            client_order_id="c2",
            outcome=OutcomeKind.REFUSED,
            status_code=403,
            code=40310000,
            message="insufficient qty available",
            at=at(2),
        )
    )
    journal.record_final(final("c2", "rejected", "0", None))
    journal.record_intent(intent("c3", qty="2"))
    journal.record_attempt(attempt("c3", 1))
    journal.record_outcome(placed("c3", "o3"))
    journal.record_booking(booking("o3", "c3", "0.5"))


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    path = tmp_path / "journal.sqlite3"
    with SqliteJournal(path, ACCOUNT) as journal:
        fill(journal)
    return path


def test_list_human(journal_path: Path) -> None:
    """A table of every trade, oldest first, with outcome, orders and final status."""
    result = run("journal", "list", "--journal", str(journal_path))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "3 trades in" in out
    assert out.index("c1") < out.index("c2") < out.index("c3")
    for text in ("0.000000001", "190.10", "placed", "refused", "filled", "rejected", "o3"):
        assert text in out
    assert "PKJO…" in out
    assert ACCOUNT.key_id not in out


def test_list_json_matches_the_read_model(journal_path: Path) -> None:
    """--json: the journal, the masked account and each trade's to_dict()."""
    result = run("journal", "list", "--journal", str(journal_path), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    with SqliteJournal(journal_path, read_only=True) as journal:
        assert data["trades"] == [t.to_dict() for t in journal.trades()]
    assert data["journal"] == str(journal_path)
    assert data["account"] == {"key_id": "PKJO…", "base_url": ACCOUNT.base_url}
    c1 = data["trades"][0]
    assert c1["intent"]["qty"] == "0.000000001"
    assert c1["final"]["fill_price"] == "190.05"
    assert data["trades"][1]["outcomes"][0]["message"] == "insufficient qty available"


def test_list_unfinished(journal_path: Path) -> None:
    """--unfinished: only trades with no final status (what recovery will look at)."""
    result = run("journal", "list", "--journal", str(journal_path), "--unfinished", "--json")
    assert [t["client_order_id"] for t in json.loads(result.output)["trades"]] == ["c3"]
    human = run("journal", "list", "--journal", str(journal_path), "--unfinished")
    assert "1 unfinished trades" in human.output
    assert "c1" not in human.output


def test_show_human_and_json(journal_path: Path) -> None:
    """show: the intent, then attempts, outcomes, bookings and final; --json the whole trade."""
    result = run("journal", "show", "c3", "--journal", str(journal_path))
    assert result.exit_code == 0, result.output
    out = result.output
    for text in ("trade c3", "unfinished", "attempts", "outcomes", "bookings", "final: none"):
        assert text in out
    assert "0.5" in out
    as_json = run("journal", "show", "c2", "--journal", str(journal_path), "--json")
    data = json.loads(as_json.output)
    with SqliteJournal(journal_path, read_only=True) as journal:
        trade = journal.trade("c2")
        assert trade is not None
        assert data["trade"] == trade.to_dict()
    assert data["trade"]["outcomes"][0]["status_code"] == 403
    assert data["trade"]["final"]["status"] == "rejected"


def test_show_unknown_trade(journal_path: Path) -> None:
    """An id the journal does not hold: exit 1, naming the id and the journal."""
    result = run("journal", "show", "nope", "--journal", str(journal_path))
    assert result.exit_code == 1
    assert "no trade with client_order_id 'nope'" in result.output
    assert str(journal_path) in result.output


def test_default_path_comes_from_the_key_id_and_endpoint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No --journal: the default journal of APCA_API_KEY_ID at --base-url, --live or paper."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    key = "PKDEFAULT"
    sim_url = "http://127.0.0.1:8787"
    for url, coid in ((sim_url, "sim"), (LIVE_BASE_URL, "live")):
        account = JournalAccount(key_id=key, base_url=url)
        with SqliteJournal(default_journal_path(key, url), account) as journal:
            journal.record_intent(intent(coid))
    env: dict[str, str | None] = {"APCA_API_KEY_ID": key, "APCA_API_SECRET_KEY": None}
    sim = run("journal", "list", "--json", "--base-url", sim_url + "/", env=env)
    assert [t["client_order_id"] for t in json.loads(sim.output)["trades"]] == ["sim"]
    live = run("journal", "show", "live", "--live", "--json", env=env)
    assert json.loads(live.output)["trade"]["client_order_id"] == "live"
    paper = run("journal", "list", env=env)  # no paper journal for this key yet
    assert paper.exit_code == 1
    assert str(default_journal_path(key, PAPER_BASE_URL)) in paper.output
    assert "no journal at this path" in paper.output
    assert not default_journal_path(key, PAPER_BASE_URL).exists()  # a reader never creates


def test_without_a_journal_or_a_key_id() -> None:
    """Nothing to go on: a usage error saying what to give."""
    result = run("journal", "list", env={"APCA_API_KEY_ID": None})
    assert result.exit_code == 2
    assert "no --journal given and APCA_API_KEY_ID is not set" in result.output


def test_a_file_that_is_not_a_journal(tmp_path: Path) -> None:
    """A bad file: exit 1 with the journal error, and the file is left as it was."""
    path = tmp_path / "notes.txt"
    path.write_text("hello\n" * 200)
    result = run("journal", "list", "--journal", str(path))
    assert result.exit_code == 1
    assert f"journal {path}" in result.output
    assert "file is not a database" in result.output
    assert path.read_text() == "hello\n" * 200


def test_reading_while_a_trader_writes(journal_path: Path) -> None:
    """The writer keeps its lock and keeps writing while the CLI reads, and the CLI sees each
    commit as it happens."""
    with SqliteJournal(journal_path, ACCOUNT) as writer:
        first = run("journal", "list", "--journal", str(journal_path), "--unfinished", "--json")
        assert first.exit_code == 0, first.output
        assert len(json.loads(first.output)["trades"]) == 1
        writer.record_booking(booking("o3", "c3", "2"))
        writer.record_final(final("c3", "filled", "2"))
        writer.record_intent(intent("c4"))
        second = run("journal", "show", "c3", "--journal", str(journal_path), "--json")
        trade = json.loads(second.output)["trade"]
        assert trade["finished"] is True
        assert [b["filled_qty"] for b in trade["bookings"]] == ["2"]
        listed = run("journal", "list", "--journal", str(journal_path), "--unfinished", "--json")
        assert [t["client_order_id"] for t in json.loads(listed.output)["trades"]] == ["c4"]
        assert writer.trade("c4") is not None
    assert Decimal(trade["final"]["filled_qty"]) == 2
